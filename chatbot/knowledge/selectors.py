"""Reads of the knowledge base that several processes share."""

import time
from typing import Any

import redis
from django.conf import settings
from django.db import transaction

from chatbot.knowledge.models import QAPair
from chatbot.redis_client import redis_client, redis_key

# The active pairs, kept per process: reading them is the model path's biggest cost after the model
# (one query a message). A saved or deleted pair bumps a stamp in Redis after commit, and every process
# reloads on its next message; bulk updates (which send no signal) show within CHATBOT_PAIRS_CACHE_SECONDS.
_cache: dict[str, Any] = {"stamp": None, "loaded_at": float("-inf"), "pairs": {}}
STAMP = "pairs-stamp"


def pairs_changed(**kwargs: Any) -> None:
    """post_save / post_delete of a QAPair."""
    if settings.REDIS_URL:
        transaction.on_commit(_bump)


def _bump() -> None:
    try:
        redis_client().incr(redis_key(STAMP))
    except redis.RedisError:
        _cache["loaded_at"] = float("-inf")  # this process at least reloads; the others within the period


def active_pairs() -> dict[int, QAPair]:
    if not settings.REDIS_URL or settings.CHATBOT_PAIRS_CACHE_SECONDS <= 0:
        return QAPair.objects.filter(is_active=True).in_bulk()
    stamp: object
    try:
        stamp = redis_client().get(redis_key(STAMP))
    except redis.RedisError:
        stamp = object()  # unknown: reload
    now = time.monotonic()
    if stamp != _cache["stamp"] or now - _cache["loaded_at"] > settings.CHATBOT_PAIRS_CACHE_SECONDS:
        pairs = QAPair.objects.filter(is_active=True).in_bulk()
        _cache.update(stamp=stamp, loaded_at=now, pairs=pairs)
    return _cache["pairs"]
