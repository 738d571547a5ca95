"""Shared set-up of the learning benchmarks: a PostgreSQL database of their own, Django, CLINC150 as a knowledge base."""

import csv
import os
import random
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLINC = ROOT.parent / "shared" / "datasets" / "clinc150"
DATABASE = os.environ.get("BENCH_LEARNING_DB", "chatbot_learning_bench")


def django_start(*, fresh: bool = True) -> None:
    """Production settings against database `chatbot_learning_bench` (recreated), training in this process."""
    if fresh:
        subprocess.run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-q",
                "-c",
                f"DROP DATABASE IF EXISTS {DATABASE}",
                "-c",
                f"CREATE DATABASE {DATABASE}",
            ],
            check=True,
            capture_output=True,
        )
    os.environ.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
        SECRET_KEY="bench-" + "x" * 50,
        ALLOWED_HOSTS="127.0.0.1",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="chatbot.settings",
    )
    os.environ.setdefault("CHATBOT_VAR_DIR", f"/tmp/{DATABASE}")
    os.environ.setdefault("CHATBOT_ENCODER", "ngram")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def clinc_rows(split: str) -> list[tuple[str, str]]:
    with open(CLINC / f"{split}.csv", encoding="utf-8", newline="") as handle:
        return [(row["text"], row["label"]) for row in csv.DictReader(handle)]


def clinc_by_intent(seed: int = 0) -> tuple[dict[str, list[str]], list[str]]:
    """Training texts per intent (shuffled with `seed`) and the out-of-scope texts."""
    by_intent: dict[str, list[str]] = defaultdict(list)
    oos = []
    for text, label in clinc_rows("train"):
        (oos if label == "oos" else by_intent[label]).append(text)
    rng = random.Random(seed)
    for texts in by_intent.values():
        rng.shuffle(texts)
    return dict(sorted(by_intent.items())), oos


def knowledge_base_load(by_intent: dict[str, list[str]], oos: list[str], *, per_intent: int) -> dict[str, int]:
    """One pair per intent (its first text is the question), `per_intent - 1` curated alternates, the oos examples.
    Returns intent -> pair id."""
    from chatbot.knowledge.models import AlternateQuestion, OutOfScopeExample, QAPair

    ids = {}
    for intent, texts in by_intent.items():
        pair = QAPair.objects.create_topic(question=texts[0], answers={"en": f"Intent {intent}"}, category=intent[:64])
        AlternateQuestion.objects.bulk_create(
            [AlternateQuestion(pair=pair, text=t) for t in dict.fromkeys(texts[1:per_intent]) if t != texts[0]],
            ignore_conflicts=True,
        )
        ids[intent] = pair.pk
    OutOfScopeExample.objects.bulk_create(
        [OutOfScopeExample(text=t) for t in dict.fromkeys(oos)], ignore_conflicts=True
    )
    return ids
