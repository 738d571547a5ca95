"""The Redis client of a process, for everything but Celery's broker and the channel layer (which keep their own
pools): product metrics, worker heartbeats, the pairs cache stamp, the recovery sweep's locks, debounces."""

import asyncio
import functools

import redis
import redis.asyncio
from django.conf import settings


@functools.cache
def redis_client() -> redis.Redis:
    """One pool per process (redis-py opens a new pool in a forked child); replies come as str. Short timeouts:
    every caller treats a Redis that does not answer at once as down and carries on without it."""
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1, decode_responses=True)


def redis_key(name: str) -> str:
    """A key of this deployment (CHATBOT_REDIS_PREFIX)."""
    return f"{settings.REDIS_PREFIX}chatbot:{name}"


_async_clients: dict[asyncio.AbstractEventLoop, redis.asyncio.Redis] = {}


def redis_async() -> redis.asyncio.Redis:
    """The asyncio client of the running event loop (the web process's consumers): its connections belong to
    that loop. Same short timeouts as above."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        for stale in [other for other in _async_clients if other.is_closed()]:
            del _async_clients[stale]
        client = _async_clients[loop] = redis.asyncio.Redis.from_url(
            settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1
        )
    return client
