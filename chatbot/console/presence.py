"""Which operators have a console open, and whether they take conversations.

Each open console socket refreshes its operator's `alive` mark every CHATBOT_HANDOFF_GRACE_SECONDS / 3; the
mark expires after the grace period, so a browser that vanished (killed, network gone) times out without
anyone having to notice it closing. The available/away choice is kept without expiry: a reload keeps it.
Production keeps both in Redis (shared by every web and worker process); embedded mode, one process, in memory.
"""

import time

from django.conf import settings

from chatbot.redis_client import redis_client, redis_key

AVAILABLE, AWAY = "available", "away"


def _key(kind: str, user_id: int | str = "") -> str:
    return redis_key(f"console:{kind}:{user_id}")


_redis = redis_client


_alive: dict[int, float] = {}  # embedded mode: user id -> monotonic expiry
_status: dict[int, str] = {}


def presence_touch(*, user_id: int) -> None:
    grace = settings.CHATBOT_HANDOFF_GRACE_SECONDS
    if not settings.REDIS_URL:
        _alive[user_id] = time.monotonic() + grace
        return
    with _redis().pipeline(transaction=False) as pipe:
        pipe.set(_key("alive", user_id), 1, px=max(1, int(grace * 1000)))
        pipe.sadd(_key("members"), user_id)
        pipe.execute()


def presence_members() -> list[int]:
    """Every operator who ever opened a console (alive or not)."""
    if not settings.REDIS_URL:
        return sorted(_alive)
    return sorted(int(uid) for uid in _redis().smembers(_key("members")))


def presence_set_status(*, user_id: int, status: str) -> None:
    if not settings.REDIS_URL:
        _status[user_id] = status
        return
    _redis().set(_key("status", user_id), status)


def presence_status(*, user_id: int) -> str:
    if not settings.REDIS_URL:
        return _status.get(user_id, AWAY)
    return str(_redis().get(_key("status", user_id)) or AWAY)


def presence_alive(*, user_ids: list[int]) -> set[int]:
    """The operators among `user_ids` with a console open now (or gone for less than the grace period)."""
    if not user_ids:
        return set()
    if not settings.REDIS_URL:
        now = time.monotonic()
        return {uid for uid in user_ids if _alive.get(uid, 0.0) > now}
    marks = _redis().mget([_key("alive", uid) for uid in user_ids])
    return {uid for uid, mark in zip(user_ids, marks, strict=True) if mark is not None}


def presence_available(*, user_ids: list[int]) -> set[int]:
    """The operators among `user_ids` who are alive and set themselves available."""
    alive = sorted(presence_alive(user_ids=user_ids))
    if not settings.REDIS_URL:
        return {uid for uid in alive if _status.get(uid) == AVAILABLE}
    statuses = _redis().mget([_key("status", uid) for uid in alive]) if alive else []
    return {uid for uid, status in zip(alive, statuses, strict=True) if status == AVAILABLE}


def presence_forget(*, user_id: int) -> None:
    """For tests and for an operator removed from the team: no longer alive."""
    if not settings.REDIS_URL:
        _alive.pop(user_id, None)
        return
    _redis().delete(_key("alive", user_id))


def sweep_lock(*, seconds: float) -> bool:
    """True for one caller per `seconds` across the cluster: the release sweep need not run on every socket."""
    if not settings.REDIS_URL:
        return True
    return bool(_redis().set(_key("sweep"), 1, nx=True, px=max(1, int(seconds * 1000))))


_waiting: dict[int, int] = {}  # embedded mode: conversation id -> open customer sockets


def waiting_socket(*, conversation_id: int, delta: int) -> int:
    """Count the open sockets of a customer waiting for a person (+1 / -1); returns the count now."""
    if not settings.REDIS_URL:
        _waiting[conversation_id] = _waiting.get(conversation_id, 0) + delta
        return _waiting[conversation_id]
    key = _key("waiting", conversation_id)
    with _redis().pipeline(transaction=False) as pipe:
        pipe.incrby(key, delta)
        pipe.expire(key, 86400)
        count, _ = pipe.execute()
    return int(count)


def waiting_sockets(*, conversation_id: int) -> int:
    if not settings.REDIS_URL:
        return _waiting.get(conversation_id, 0)
    return int(_redis().get(_key("waiting", conversation_id)) or 0)
