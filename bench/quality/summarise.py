"""Print a Markdown table from training.evaluate --json outputs: python bench/quality/summarise.py out/*.json"""

import json
import sys
from pathlib import Path

KEYS = [
    "closed_set_accuracy",
    "in_scope_accuracy",
    "oos_precision",
    "oos_recall",
    "accuracy",
    "macro_f1",
    "train_seconds",
    "train_cpu_seconds",
    "latency_ms_p50",
    "batch64_msgs_per_s",
]


def cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if value <= 1 else f"{value:.1f}"
    return "-" if value is None else str(value)


def main(paths: list[str]) -> None:
    print("| run | " + " | ".join(KEYS) + " |")
    print("|---" * (len(KEYS) + 1) + "|")
    for path in paths:
        text = Path(path).read_text().strip()
        if not text:
            continue
        result = json.loads(text.splitlines()[-1])
        print(f"| {Path(path).stem} | " + " | ".join(cell(result.get(k)) for k in KEYS) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
