"""Build a small bilingual "demo knowledge base" benchmark from the two public sets (deterministic).

Train: 100 CLINC150 intents x 5 questions (English) + 11 KUAKE-QIC intents x 20 (Chinese) + 20 oos.
Test: those intents' CLINC test rows (6 each), 300 KUAKE-QIC val rows, 200 CLINC oos test rows.
python bench/quality/demo_kb.py ../shared/datasets bench/quality/out
"""

import csv
import random
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from anywhere
from training.data import OUT_OF_SCOPE, Example, read_csv  # noqa: E402


def take(rows: list[Example], labels: list[str], per_label: int, rng: random.Random) -> list[Example]:
    by_label: dict[str, list[Example]] = defaultdict(list)
    for row in rows:
        by_label[row[1]].append(row)
    return [row for label in labels for row in rng.sample(by_label[label], min(per_label, len(by_label[label])))]


def main(datasets: Path, out: Path) -> None:
    rng = random.Random(0)
    clinc_train, clinc_test = read_csv(datasets / "clinc150/train.csv"), read_csv(datasets / "clinc150/test.csv")
    kuake_train, kuake_val = read_csv(datasets / "kuake_qic/train.csv"), read_csv(datasets / "kuake_qic/val.csv")
    intents = sorted(rng.sample(sorted({label for _, label in clinc_train if label != OUT_OF_SCOPE}), 100))
    kuake_labels = sorted({label for _, label in kuake_train})
    train = take(clinc_train, intents, 5, rng) + take(kuake_train, kuake_labels, 20, rng)
    train += take(clinc_train, [OUT_OF_SCOPE], 20, rng)
    test = take(clinc_test, intents, 6, rng) + rng.sample(kuake_val, 300) + take(clinc_test, [OUT_OF_SCOPE], 200, rng)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("demo_kb_train.csv", train), ("demo_kb_test.csv", test)):
        with open(out / name, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
    print(f"train {len(train)} rows, test {len(test)} rows -> {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
