"""The data of a training run: what the candidate learns from and what the gate holds out.

Held out, so that no version ever trains on them and candidate and active model compete fairly:
- the most recent share of reviewed log messages (by review time; new traffic is the truest test),
- a stable share of the curated alternate questions and out-of-scope examples, chosen by a hash of
  the text so that the same rows are held out at every training.
A pair's own question is always learned, so every pair keeps at least one training example, and so is its
answer in each language (as plain text): the words of an answer ("we accept Visa, Mastercard and WeChat Pay")
are often the customer's, and on the demo knowledge base learning them was worth 2.7 points on held-out questions
(BENCHMARKS.md, "Answers learned, a richer demo knowledge base, and the classify rule at 50").
Out-of-scope examples are held out at a larger share (settings.CHATBOT_GATE_OOS_HOLDOUT_SHARE): they are few (often ~100) and the
held-out set calibrates the out-of-scope operating point and measures out-of-scope F1, which a dozen rows
cannot do.
"""

import hashlib
import json
import zlib
from dataclasses import dataclass, field

from django.conf import settings

from chatbot.knowledge.models import AlternateQuestion, OutOfScopeExample, PairAnswer, QAPair
from chatbot.knowledge.text import answer_plain
from training.data import OUT_OF_SCOPE, Example
from training.text import normalise


@dataclass
class Dataset:
    train: list[Example] = field(default_factory=list)
    holdout: list[Example] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def fingerprint(self, config: dict) -> str:
        document = {"train": sorted(self.train), "holdout": sorted(self.holdout), "config": config}
        return hashlib.sha256(json.dumps(document, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def is_stable_holdout(text: str, share: float) -> bool:
    """The same texts are held out at every training (crc32 is stable across processes)."""
    return zlib.crc32(normalise(text).encode()) % 1000 < share * 1000


def _split_recent(rows: list[Example], share: float) -> tuple[list[Example], list[Example]]:
    """rows oldest first -> (train, the most recent share); fewer than 1/share rows: nothing held out."""
    n_recent = int(len(rows) * share)
    cut = len(rows) - n_recent
    return rows[:cut], rows[cut:]


def _split_stable(rows: list[Example], share: float) -> tuple[list[Example], list[Example]]:
    held = [row for row in rows if is_stable_holdout(row[0], share)]
    return [row for row in rows if not is_stable_holdout(row[0], share)], held


def dataset_build(*, share: float | None = None) -> Dataset:
    share = settings.CHATBOT_GATE_HOLDOUT_SHARE if share is None else share
    oos_share = max(share, settings.CHATBOT_GATE_OOS_HOLDOUT_SHARE)
    pairs = [(q, str(pk)) for pk, q in QAPair.objects.filter(is_active=True).values_list("id", "question")]
    answers = [
        (answer_plain(t), str(p))
        for p, t in PairAnswer.objects.filter(pair__is_active=True).order_by("id").values_list("pair_id", "text")
    ]
    alternates = AlternateQuestion.objects.filter(pair__is_active=True).order_by("created_at", "id")
    curated = [
        (t, str(p))
        for p, t in alternates.filter(source=AlternateQuestion.Source.CURATED).values_list("pair_id", "text")
    ]
    logged = [
        (t, str(p)) for p, t in alternates.filter(source=AlternateQuestion.Source.LOG).values_list("pair_id", "text")
    ]
    oos = OutOfScopeExample.objects.order_by("created_at", "id")
    oos_curated = [
        (t, OUT_OF_SCOPE) for t in oos.exclude(source=OutOfScopeExample.Source.LOG).values_list("text", flat=True)
    ]
    oos_logged = [
        (t, OUT_OF_SCOPE) for t in oos.filter(source=OutOfScopeExample.Source.LOG).values_list("text", flat=True)
    ]

    parts = [
        _split_stable(curated, share),
        _split_recent(logged, share),
        _split_stable(oos_curated, oos_share),
        _split_recent(oos_logged, oos_share),
    ]
    train = pairs + answers + [row for part, _ in parts for row in part]
    holdout = [row for _, held in parts for row in held]
    counts = {
        "pairs": len(pairs),
        "answers": len(answers),
        "alternates": len(curated),
        "reviewed_messages": len(logged),
        "out_of_scope": len(oos_curated) + len(oos_logged),
        "examples": len(train) + len(holdout),
        "train": len(train),
        "held_out": len(holdout),
        "held_out_reviewed": len(parts[1][1]) + len(parts[3][1]),
        "held_out_oos": len(parts[2][1]) + len(parts[3][1]),
    }
    return Dataset(train=train, holdout=holdout, counts=counts)
