"""Which language rule labels texts right: "any Chinese character" (the product's, training.text.language) against
"a third of the characters Chinese" (the rule the model's fusion used before).

The truth: a demo pair's `language` for its question and alternate questions (bench/data/demo_qa_pairs.json, the demo
before its twins became one topic each); English for CLINC150, Chinese for
KUAKE-QIC (every split in ../shared/datasets).

    .venv/bin/python bench/language.py [--datasets ../shared/datasets]
"""

import argparse
import csv
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.text import language  # noqa: E402

# the demo before its twins were merged into topics: one language per pair, the truth for its questions
DEMO = ROOT / "bench" / "data" / "demo_qa_pairs.json"
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def a_third(text: str) -> str:
    letters = [c for c in text if not c.isspace()]
    return "zh" if letters and len(_CJK.findall(text)) * 3 >= len(letters) else "en"


def labelled(datasets: Path) -> Iterator[tuple[str, str, str]]:
    """(source, text, language)"""
    for pair in json.loads(DEMO.read_text(encoding="utf-8")):
        for text in (pair["question"], *pair["alternates"]):
            yield "demo", text, pair["language"]
    for name, truth in (("clinc150", "en"), ("kuake_qic", "zh")):
        for split in sorted((datasets / name).glob("*.csv")):
            if split.name != "labels.csv":
                for row in csv.DictReader(split.open(encoding="utf-8")):
                    yield name, row["text"], truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    rows = list(labelled(parser.parse_args().datasets))
    rules: dict[str, Callable[[str], str]] = {"any Chinese character": language, "a third Chinese": a_third}
    print("| source | texts | " + " | ".join(f"{name}: wrong (accuracy)" for name in rules) + " |")
    print("|---|---|" + "---|" * len(rules))
    for source in dict.fromkeys(source for source, _, _ in rows):
        mine = [(text, truth) for name, text, truth in rows if name == source]
        cells = []
        for rule in rules.values():
            wrong = sum(rule(text) != truth for text, truth in mine)
            cells.append(f"{wrong} ({100 * (1 - wrong / len(mine)):.3f} %)")
        print(f"| {source} | {len(mine)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
