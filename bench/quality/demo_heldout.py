"""The demo knowledge base's held-out measure, per language and per candidate encoder (issue 15).

Test rows: two alternate questions of every pair (per language, chosen by a seeded draw), never trained on.
The rest is split as the registry splits it (chatbot/registry/dataset.py): a stable 15 % of the alternates and
40 % of the out-of-scope examples are the gate's held-out set (early stopping, calibration, the candidates'
scores); the pairs' questions, their answers (plain text, each language; --no-answers: as before the product
learned them) and the other rows train. Each candidate is trained by `training.auto.choose`
(the product's code), `auto` runs the product's whole choice. Also scored: the paraphrase set
bench/data/demo_paraphrases.csv (in-scope accuracy and the off-topic false-answer rate, per language).

Labels: the demo file as it is (one label per entry; an entry with `answers` per language is one topic), or with
--merge-twins an English pair and the Chinese pair right after it in the same category become one label.

--keep-alternates N trains on at most N alternates per topic and language (the same test and gate rows): a
learning curve.

    .venv/bin/python bench/quality/demo_heldout.py [--merge-twins] [--no-answers] [--keep-alternates N]
        [--candidate NAME ...] [--recipe FIELD=JSON] [--threads N] [--set FIELD=JSON]
"""

import argparse
import json
import random
import sys
import time
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from chatbot.knowledge.text import answer_plain  # noqa: E402
from training import auto  # noqa: E402
from training.config import ModelConfig  # noqa: E402
from training.data import OUT_OF_SCOPE, Example, read_csv  # noqa: E402
from training.evaluate import overrides_from  # noqa: E402
from training.gate import operating_point  # noqa: E402
from training.text import language, normalise  # noqa: E402

DEMO = ROOT / "chatbot" / "knowledge" / "demo"
PARAPHRASES = ROOT / "bench" / "data" / "demo_paraphrases.csv"
HOLDOUT_SHARE, OOS_HOLDOUT_SHARE, OOS_SHARE = 0.15, 0.4, 0.2  # the registry's defaults (chatbot/settings.py)


def stable(text: str, share: float) -> bool:
    """chatbot/registry/dataset.py is_stable_holdout."""
    return zlib.crc32(normalise(text).encode()) % 1000 < share * 1000


def entry_language(entry: dict[str, Any]) -> str:
    return entry.get("language") or language(entry["question"])


def topics(entries: list[dict[str, Any]], merge_twins: bool) -> tuple[list[str], dict[str, str]]:
    """A label per entry, and each label's name (its first question). Merged-format entries are one topic each;
    --merge-twins gives an English entry and the Chinese entry after it in the same category one label."""
    labels, names = [], {}
    for i, entry in enumerate(entries):
        previous = entries[i - 1] if i else None
        twin = (
            merge_twins
            and previous is not None
            and "answers" not in entry
            and entry_language(previous) == "en"
            and entry_language(entry) == "zh"
            and previous.get("category") == entry.get("category")
            and labels[-1] == previous["question"]
        )
        labels.append(labels[-1] if twin else entry["question"])
        names.setdefault(labels[-1], entry["question"])
    return labels, names


def build(merge_twins: bool, seed: int = 0, answers: bool = True, keep: int | None = None) -> dict[str, Any]:
    entries = json.loads((DEMO / "demo_qa.json").read_text(encoding="utf-8"))
    oos = json.loads((DEMO / "out_of_scope.json").read_text(encoding="utf-8"))
    labels, _ = topics(entries, merge_twins)
    train: list[Example] = []
    gate: list[Example] = []
    test: list[Example] = []
    for entry, label in zip(entries, labels, strict=True):
        train.append((entry["question"], label))
        if answers:
            train += [(answer_plain(text), label) for text in entry.get("answers", {}).values()]
        by_language: dict[str, list[str]] = defaultdict(list)
        for text in entry.get("alternates", []):
            by_language[language(text)].append(text)
        for texts in by_language.values():
            rng = random.Random(seed * 1_000_003 + zlib.crc32(texts[0].encode()))
            held = set(rng.sample(range(len(texts)), min(2, max(0, len(texts) - 1))))
            kept = 0
            for i, text in enumerate(texts):
                row = (text, label)
                if i in held or stable(text, HOLDOUT_SHARE):
                    (test if i in held else gate).append(row)
                elif keep is None or kept < keep:  # --keep-alternates: the learning curve
                    train.append(row)
                    kept += 1
    for text in oos:
        (gate if stable(text, OOS_HOLDOUT_SHARE) else train).append((text, OUT_OF_SCOPE))
    paraphrases = read_csv(PARAPHRASES)
    label_of = {entry["question"]: label for entry, label in zip(entries, labels, strict=True)}
    for entry, label in zip(entries, labels, strict=True):  # merged files: each language's question names a topic
        for answer_question in entry.get("questions", []):
            label_of[answer_question] = label
    para = [(text, gold if gold == OUT_OF_SCOPE else label_of.get(gold, gold)) for text, gold in paraphrases]
    return {"train": train, "gate": gate, "test": test, "paraphrases": para, "n_labels": len(set(labels))}


def scores(model: Any, rows: list[Example]) -> dict[str, Any]:
    """Per language: closed-set (top-1) and in-scope accuracy at the operating point; the share of out-of-scope
    rows answered (the false-answer rate)."""
    ranked = model.predict([t for t, _ in rows], k=2)
    out: dict[str, Any] = {}
    for lang in ("en", "zh", "all"):
        picked = [(r, g, language(t)) for (t, g), r in zip(rows, ranked, strict=True) if lang in ("all", language(t))]
        ins = [(r, g, t) for r, g, t in picked if g != OUT_OF_SCOPE]
        oos = [(r, t) for r, g, t in picked if g == OUT_OF_SCOPE]
        out[lang] = {
            "n_in_scope": len(ins),
            "closed_set": _share(r[0][0] == g for r, g, _ in ins),
            "in_scope": _share(r[0][0] == g and model.decide(r, t) for r, g, t in ins),
            "n_oos": len(oos),
            "oos_false_answer_rate": _share(model.decide(r, t) for r, t in oos) if oos else None,
        }
    return out


def _share(flags: Any) -> float | None:
    flags = list(flags)
    return round(sum(flags) / len(flags), 4) if flags else None


def run(data: dict[str, Any], names: list[str] | None, budget: float, overrides: dict[str, Any]) -> dict[str, Any]:
    base = ModelConfig(**{"oos_prior": OOS_SHARE, **overrides})
    started, cpu = time.perf_counter(), time.process_time()
    outcome = auto.choose(data["train"], data["gate"], base, budget_seconds=budget, share=OOS_SHARE, names=names)
    model = outcome.model
    assert model is not None
    point = operating_point(model, data["gate"], share=OOS_SHARE, scored=outcome.scored)
    if point is not None:
        model.rejection = point  # with the per-language rules where the gate's rows allow them
    return {
        "candidates": names or "auto",
        "chosen": outcome.chosen,
        "reason": outcome.reason,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
        "held_out": scores(model, data["test"]),
        "paraphrases": scores(model, data["paraphrases"]),
        "gate_figures": [c.get("held_out") for c in outcome.candidates],
        "rule": {"threshold": model.threshold, "margin": model.margin, "languages": dict(model.rejection.languages)},
        "plan": outcome.plan,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--merge-twins", action="store_true")
    p.add_argument("--no-answers", action="store_true", help="do not learn the answers (the product did not before)")
    p.add_argument("--keep-alternates", type=int, help="train on at most N alternates per topic and language")
    p.add_argument("--candidate", action="append", help="one run per candidate (default: auto only)")
    p.add_argument("--budget", type=float, default=auto.DEFAULT_BUDGET_SECONDS)
    p.add_argument("--threads", type=int)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=JSON", help="a ModelConfig field (base)")
    p.add_argument(
        "--recipe", action="append", default=[], metavar="FIELD=JSON", help="a field of each --candidate's recipe"
    )
    args = p.parse_args()
    if args.recipe and not args.candidate:
        p.error("--recipe changes the recipe of each --candidate: name at least one")
    for name in args.candidate or []:  # a recipe's fields override the base (--set): training/auto.py candidate_config
        auto.RECIPES[name].update(overrides_from(args.recipe))
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    data = build(args.merge_twins, answers=not args.no_answers, keep=args.keep_alternates)
    sizes = {k: len(v) for k, v in data.items() if isinstance(v, list)}
    for names in [[c] for c in args.candidate] if args.candidate else [None]:
        result = run(data, names, args.budget, overrides_from(args.set))
        print(
            json.dumps(
                {
                    "merge_twins": args.merge_twins,
                    "answers": not args.no_answers,
                    "keep_alternates": args.keep_alternates,
                    "set": args.set,
                    "recipe": args.recipe,
                    "n_labels": data["n_labels"],
                    **sizes,
                    **result,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
