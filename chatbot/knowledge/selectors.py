"""Reads of the knowledge base that several processes share."""

import time
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.db import transaction

from chatbot.knowledge.models import AlternateQuestion, FollowUp, QAPair, languages
from chatbot.knowledge.text import detect_language
from chatbot.redis_client import redis_client, redis_key

# The active pairs, kept per process: reading them is the model path's biggest cost after the model
# (one query a message). A saved or deleted pair bumps a stamp in Redis after commit, and every process
# reloads on its next message; bulk updates (which send no signal) show within CHATBOT_PAIRS_CACHE_SECONDS.
_cache: dict[str, Any] = {
    "stamp": None,
    "loaded_at": float("-inf"),
    "pairs": {},
    "followups": {},
    "questions": {},
    "redirects": {},
}
STAMP = "pairs-stamp"


def pairs_changed(**kwargs: Any) -> None:
    """post_save / post_delete of a QAPair, its answers, alternates or follow-ups."""
    if settings.REDIS_URL:
        transaction.on_commit(_bump)


def _bump() -> None:
    try:
        redis_client().incr(redis_key(STAMP))
    except redis.RedisError:
        _cache["loaded_at"] = float("-inf")  # this process at least reloads; the others within the period


def active_pairs() -> dict[int, QAPair]:
    """The active pairs by id, their answers prefetched (`pair_answer` reads them without a query)."""
    return _snapshot()["pairs"]


@dataclass(frozen=True)
class PairsView:
    """One reading of the cache (one stamp check), for everything a reply needs."""

    pairs: dict[int, QAPair]
    followups: dict[int, list[int]]
    questions: dict[int, dict[str, str]]
    redirects: dict[int, int]

    def resolve(self, pair_id: int) -> int:
        """The pair that answers for `pair_id`: itself, or the pair it was merged into (a model trained before
        the merge still predicts the old id)."""
        return self.redirects.get(pair_id, pair_id)

    def question(self, pair: QAPair, language: str) -> str:
        """The pair's question as a customer writing `language` reads it on a button: the main question when it
        is in that language, else its first curated alternate in that language, else the main question."""
        if detect_language(pair.question) == language:
            return pair.question
        return self.questions.get(pair.pk, {}).get(language, pair.question)

    def followups_of(self, pair_id: int) -> list[QAPair]:
        """A pair's active follow-ups, in order."""
        return [self.pairs[pk] for pk in self.followups.get(pair_id, []) if pk in self.pairs]


def ranked_redirected(ranked: list[tuple[str, float]], redirects: dict[int, int]) -> list[tuple[str, float]]:
    """A model's ranking with each merged-away pair's label counted as the pair it was merged into (a model trained
    before the merge still names the old pair; their scores add up), best first. Other labels are kept as they are."""
    scores: dict[str, float] = {}
    for label, score in ranked:
        if label.isdigit():
            label = str(redirects.get(int(label), int(label)))
        scores[label] = scores.get(label, 0.0) + score
    return sorted(scores.items(), key=lambda item: -item[1])


def pairs_view() -> PairsView:
    snapshot = _snapshot()
    return PairsView(
        pairs=snapshot["pairs"],
        followups=snapshot["followups"],
        questions=snapshot["questions"],
        redirects=snapshot["redirects"],
    )


def pair_answer(pair: QAPair, language: str) -> tuple[str, str]:
    """(answer text, its language): the answer in `language`, else the first of CHATBOT_LANGUAGES the pair has
    (else any). No query for a pair of the cache (`active_pairs`, `pairs_view`); ("", language) for a pair without answers."""
    answers = pair.answer_texts()
    for code in (language, *languages(), *sorted(answers)):
        if code in answers:
            return answers[code], code
    return "", language


def _load() -> dict[str, Any]:
    followups: dict[int, list[int]] = {}
    for pair_id, followup_id in FollowUp.objects.values_list("pair_id", "followup_id"):  # in Meta order
        followups.setdefault(pair_id, []).append(followup_id)
    pairs = QAPair.objects.filter(is_active=True).prefetch_related("translations").in_bulk()
    questions: dict[int, dict[str, str]] = {}
    curated = AlternateQuestion.objects.filter(pair__is_active=True, source=AlternateQuestion.Source.CURATED)
    for pair_id, text in curated.order_by("id").values_list("pair_id", "text"):
        questions.setdefault(pair_id, {}).setdefault(detect_language(text), text)
    redirects = dict(QAPair.objects.filter(merged_into__isnull=False).values_list("pk", "merged_into_id"))
    return {"pairs": pairs, "followups": followups, "questions": questions, "redirects": redirects}


def _snapshot() -> dict[str, Any]:
    if not settings.REDIS_URL or settings.CHATBOT_PAIRS_CACHE_SECONDS <= 0:
        return _load()
    stamp: object
    try:
        stamp = redis_client().get(redis_key(STAMP))
    except redis.RedisError:
        stamp = object()  # unknown: reload
    now = time.monotonic()
    if stamp != _cache["stamp"] or now - _cache["loaded_at"] > settings.CHATBOT_PAIRS_CACHE_SECONDS:
        _cache.update(stamp=stamp, loaded_at=now, **_load())
    return _cache
