"""Learning curve on CLINC150 through the product's own loop: reviewed messages in, retrain, gate, measure.

    python bench/learning/learning_curve.py [--rounds 6] [--start 10] [--step 5] [--json] [--svg docs/learning-curve.svg]
        [--out results.jsonl]

Round 0: one pair per intent with `start` curated questions, and the 100 out-of-scope training examples.
Each next round: `step` more questions per intent arrive as reviewed log messages (AlternateQuestion, source
log), then a training run through the gate (the most recent reviewed share is held out). After each round the
model in service is scored on CLINC150's test split (4,500 in-scope, 1,000 out-of-scope questions).
"""

import argparse
import json
import os
import time
from pathlib import Path

from common import ROOT, clinc_by_intent, clinc_rows, django_start, knowledge_base_load


def evaluate_active(ids: dict[str, int]) -> dict:
    from chatbot.registry.models import ModelVersion
    from chatbot.registry.pipeline import model_version_load
    from training.gate import decisions, metrics

    version = ModelVersion.objects.get(is_active=True)
    test = [(text, "oos" if label == "oos" else str(ids[label])) for text, label in clinc_rows("test")]
    scores = metrics([label for _, label in test], decisions(model_version_load(version), test))
    return {
        "version": version.pk,
        "threshold": round(version.threshold, 3),
        "margin": round(version.margin, 3),
        **scores,
    }


def reviewed_add(by_intent: dict[str, list[str]], ids: dict[str, int], start: int, stop: int) -> int:
    from chatbot.knowledge.models import AlternateQuestion

    rows = [
        AlternateQuestion(pair_id=ids[intent], text=text, source=AlternateQuestion.Source.LOG)
        for intent, texts in by_intent.items()
        for text in texts[start:stop]
    ]
    return len(AlternateQuestion.objects.bulk_create(rows, ignore_conflicts=True))


def train_round() -> dict:
    from chatbot.registry.models import TrainingRun
    from chatbot.registry.pipeline import training_run_execute

    started = time.monotonic()
    run = training_run_execute(TrainingRun.objects.create(trigger=TrainingRun.Trigger.COMMAND))
    checks = {
        c["metric"]: {k: c.get(k) for k in ("candidate", "active", "z", "passed")} for c in run.gate.get("checks", [])
    }
    candidate = run.model_version
    return {
        "run": run.status,
        "seconds": round(time.monotonic() - started, 1),
        "gate": checks,
        "candidate_point": candidate
        and {"threshold": round(candidate.threshold, 3), "margin": round(candidate.margin, 3)},
        "train": run.counts.get("train"),
        "held_out": run.counts.get("held_out"),
        "held_out_oos": run.counts.get("held_out_oos"),
    }


def svg_write(rounds: list[dict], path: Path) -> None:
    from chatbot.registry.charts import Series, line_chart

    accuracy = [(r["per_intent"], r["test"]["accuracy"]) for r in rounds]
    f1 = [(r["per_intent"], r["test"]["oos_f1"]) for r in rounds]
    svg = line_chart(
        [Series("in-scope accuracy", accuracy), Series("out-of-scope F1", f1)],
        x_label="questions per intent (curated + reviewed)",
        y_label="CLINC150 test",
        y_range=(0.0, 1.0),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(svg) + "\n", encoding="utf-8")


def markdown_table(rounds: list[dict]) -> str:
    """The per-round table of BENCHMARKS.md, from the JSON lines of a run."""
    lines = [
        "| round | questions per intent | gate: held-out accuracy, candidate vs active | gate: held-out oos F1 "
        "| run | model in service | threshold / margin | test in-scope accuracy | test oos F1 (precision / recall) "
        "| seconds | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rounds:
        gate, test = r.get("gate") or {}, r["test"]
        cells = [
            f"{gate[m]['candidate']:.3f} vs {gate[m]['active']:.3f} (z {gate[m]['z']})" if m in gate else "first model"
            for m in ("accuracy", "oos_f1")
        ]
        lines.append(
            f"| {r['round']} | {r['per_intent']} | {cells[0]} | {cells[1]} | {r['run']} | v{test['version']} "
            f"| {test['threshold']:.3f} / {test.get('margin', 0):.3f} | {test['accuracy']:.3f} "
            f"| {test['oos_f1']:.3f} ({test['oos_precision']:.3f} / {test['oos_recall']:.3f}) | {r['seconds']:.0f} "
            f"| {r['load'][0] if r.get('load') else ''} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--start", type=int, default=10)
    parser.add_argument("--step", type=int, default=5)
    parser.add_argument("--svg", default=str(ROOT / "docs" / "learning-curve.svg"))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", metavar="JSONL", help="also append each round's JSON line to this file")
    parser.add_argument("--plot", metavar="JSONL", help="only draw the chart from the JSON lines of an earlier run")
    parser.add_argument("--markdown", action="store_true", help="with --plot: also print the BENCHMARKS.md table")
    args = parser.parse_args()
    if args.plot:
        import sys

        sys.path.insert(0, str(ROOT))
        rounds = [json.loads(line) for line in Path(args.plot).read_text().splitlines() if line.startswith("{")]
        svg_write(rounds, Path(args.svg))
        if args.markdown:
            print(markdown_table(rounds))
        return
    django_start()
    by_intent, oos = clinc_by_intent()
    ids = knowledge_base_load(by_intent, oos, per_intent=args.start)
    rounds = []
    for number in range(args.rounds + 1):
        per_intent = args.start + number * args.step
        added = reviewed_add(by_intent, ids, per_intent - args.step, per_intent) if number else 0
        result = {"round": number, "per_intent": per_intent, "reviewed_added": added, **train_round()}
        result["test"] = evaluate_active(ids)
        result["load"] = [round(value, 2) for value in os.getloadavg()]
        rounds.append(result)
        if args.out:
            with open(args.out, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(result) + "\n")
        print(
            json.dumps(result)
            if args.json
            else f"round {number}: {per_intent}/intent {result['run']} in {result['seconds']} s, "
            f"accuracy {result['test']['accuracy']:.3f} oos F1 {result['test']['oos_f1']:.3f}",
            flush=True,
        )
        svg_write(rounds, Path(args.svg))  # after each round: the chart always shows what was measured


if __name__ == "__main__":
    main()
