"""Reads of the knowledge base that several processes share."""

import time
from typing import Any

import redis
from django.conf import settings
from django.db import transaction

from chatbot.knowledge.models import FollowUp, QAPair
from chatbot.redis_client import redis_client, redis_key

# The active pairs, kept per process: reading them is the model path's biggest cost after the model
# (one query a message). A saved or deleted pair bumps a stamp in Redis after commit, and every process
# reloads on its next message; bulk updates (which send no signal) show within CHATBOT_PAIRS_CACHE_SECONDS.
_cache: dict[str, Any] = {"stamp": None, "loaded_at": float("-inf"), "pairs": {}, "followups": {}}
STAMP = "pairs-stamp"


def pairs_changed(**kwargs: Any) -> None:
    """post_save / post_delete of a QAPair or a FollowUp."""
    if settings.REDIS_URL:
        transaction.on_commit(_bump)


def _bump() -> None:
    try:
        redis_client().incr(redis_key(STAMP))
    except redis.RedisError:
        _cache["loaded_at"] = float("-inf")  # this process at least reloads; the others within the period


def active_pairs() -> dict[int, QAPair]:
    return _snapshot()["pairs"]


def pair_followups(pair_id: int) -> list[int]:
    """The ids of a pair's follow-ups, in order (inactive ones included: callers keep the active)."""
    return _snapshot()["followups"].get(pair_id, [])


def _load() -> dict[str, Any]:
    followups: dict[int, list[int]] = {}
    for pair_id, followup_id in FollowUp.objects.values_list("pair_id", "followup_id"):  # in Meta order
        followups.setdefault(pair_id, []).append(followup_id)
    return {"pairs": QAPair.objects.filter(is_active=True).in_bulk(), "followups": followups}


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
