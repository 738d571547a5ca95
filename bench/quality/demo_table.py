"""Markdown tables from bench/quality/demo_heldout.py's JSON lines: the held-out measure per language and the
paraphrase set's off-topic false-answer rate, one row per run. "labels": merged by --merge-twins, or as in the demo
file (its number of topics: 128 before the demo's twins were merged in the file, 64 after).

    .venv/bin/python bench/quality/demo_table.py bench/quality/out/issue15-demo-*.jsonl
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
    settings = " ".join(run.get("set") or [])
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


def main(paths: list[str]) -> None:
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
