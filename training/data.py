"""Plain-Python data helpers (no torch): the example type, CSV reading and a stratified hold-out split."""

import csv
import random
from collections import defaultdict
from pathlib import Path

OUT_OF_SCOPE = "oos"  # the label of a question the knowledge base does not answer; never a class of the model
Example = tuple[str, str]  # (text, label): a label is an answer's id or OUT_OF_SCOPE


def read_csv(path: str | Path) -> list[Example]:
    with open(path, newline="", encoding="utf-8") as f:
        return [(row["text"], row["label"]) for row in csv.DictReader(f)]


def label_list(examples: list[Example]) -> list[str]:
    return sorted({label for _, label in examples if label != OUT_OF_SCOPE})


def holdout_split(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Stratified split; every label keeps at least one training example, singletons stay in train."""
    by_label: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        by_label[example[1]].append(example)
    rng = random.Random(seed)
    train, val = [], []
    for label in sorted(by_label):
        group = by_label[label][:]
        rng.shuffle(group)
        n_val = 0 if len(group) < 2 else min(len(group) - 1, max(1, round(len(group) * fraction)))
        val += group[:n_val]
        train += group[n_val:]
    return train, val
