"""Markdown tables from bench/quality/demo_heldout.py's JSON lines: the held-out measure per language and the
paraphrase set's off-topic false-answer rate, one row per run. "labels": merged by --merge-twins, or as in the demo
file (its number of topics: 128 before the demo's twins were merged in the file, 64 after).

    .venv/bin/python bench/quality/demo_table.py bench/quality/out/issue15-demo-*.jsonl
    .venv/bin/python bench/quality/demo_table.py --rejection bench/quality/out/issue15-lang-*.jsonl

--rejection: the not-sure rule per language instead: per run its rule (global, and per language where the gate's
held-out rows allowed one), the off-topic false-answer rate and the in-scope accuracy with rejection per language,
and the best-scoring candidate's cross-fitted figures on the gate's held-out rows (each fold decided at the rule
chosen on the other folds; the candidate chosen, unless a faster one came within 0.005).
"""

import json
import sys
from pathlib import Path
from typing import Any


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def row(source: str, run: dict[str, Any]) -> str:
    held, para = run["held_out"], run["paraphrases"]
    tried = "auto" if run["candidates"] == "auto" else ", ".join(run["candidates"])
    extra = [f"keep-alternates={run['keep_alternates']}"] if run.get("keep_alternates") is not None else []
    recipe = [f"recipe {r}" for r in run.get("recipe") or []]
    settings = " ".join(
        [*(run.get("set") or []), *recipe, *extra, *(["no-answers"] if run.get("answers") is False else [])]
    )
    cells = [
        source,
        "merged" if run["merge_twins"] else f"as in the file ({run['n_labels']})",
        f"{tried} {settings}".strip(),
        run["chosen"],
        *(percent(held[lang]["closed_set"]) for lang in ("en", "zh", "all")),
        percent(held["all"]["in_scope"]),
        *(percent(para[lang]["closed_set"]) for lang in ("en", "zh")),
        *(percent(para[lang]["oos_false_answer_rate"]) for lang in ("en", "zh")),
        f"{run['wall_seconds']:.0f} / {run['cpu_seconds']:.0f}",
    ]
    return "| " + " | ".join(cells) + " |"


def rejection_row(source: str, run: dict[str, Any]) -> str:
    held, para = run["held_out"], run["paraphrases"]
    rule = run.get("rule")
    said = "-" if rule is None else f"{rule['threshold']:.2f}/{rule['margin']:.2f}"
    for lang, (threshold, margin) in sorted((rule or {}).get("languages", {}).items()):
        said += f", {lang} {threshold:.2f}/{margin:.2f}"
    gate = max((c for c in run["gate_figures"] if c), key=lambda c: c["score"])  # the best-scoring candidate's
    cells = [
        source,
        " ".join(run.get("set") or []) or "seed=0",
        said,
        *(percent(para[lang]["oos_false_answer_rate"]) for lang in ("en", "zh", "all")),
        *(percent(held[lang]["in_scope"]) for lang in ("en", "zh")),
        *(percent(para[lang]["in_scope"]) for lang in ("en", "zh")),
        *(percent(gate[key]) for key in ("accuracy", "oos_recall", "oos_f1")),
    ]
    return "| " + " | ".join(cells) + " |"


def main(paths: list[str]) -> None:
    if paths and paths[0] == "--rejection":
        print(
            "| file | seed | threshold/margin (global, per language) | off-topic answered en % | zh % | all % "
            "| held-out right and sure en % | zh % | paraphrases right and sure en % | zh % "
            "| gate rows: accuracy % | not-sure recall % | not-sure F1 % |"
        )
        print("|---" * 13 + "|")
        for path in paths[1:]:
            for line in Path(path).read_text(encoding="utf-8").splitlines():
                if line.startswith("{"):
                    print(rejection_row(Path(path).stem.removeprefix("issue15-lang-"), json.loads(line)))
        return
    print(
        "| file | labels | candidates | chosen | held-out en % | zh % | all % | all, with rejection % "
        "| paraphrases en % | zh % | off-topic answered en % | zh % | wall / CPU s |"
    )
    print("|---" * 13 + "|")
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.startswith("{"):
                print(row(Path(path).stem.removeprefix("issue15-demo-"), json.loads(line)))


if __name__ == "__main__":
    main(sys.argv[1:])
