"""Abuse limits of the chat socket: per connection (in memory) and per client address (shared).

Per address: open connections, new connections a second, and frames a second across all of them. In
production these live in Redis, so that every web process counts against the same limits; embedded (one
process, no Redis) they live in memory. Redis evaluates each check as one script, atomically, with its own
clock, and every key expires, so a web process that dies leaks nothing for longer than a lease.
"""

import logging
import time
import weakref
from collections.abc import Awaitable
from typing import Protocol

from django.conf import settings

logger = logging.getLogger(__name__)


class TokenBucket:
    """`burst` frames at once, refilled at `rate` per second."""

    def __init__(self, *, burst: int, rate: float) -> None:
        self.burst, self.rate = burst, rate
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class AddressLimits(Protocol):
    async def open(self, address: str, connection: str, limit: int) -> bool: ...
    async def renew(self, address: str, connection: str) -> None: ...
    async def close(self, address: str, connection: str) -> None: ...
    async def take(self, address: str, kind: str, *, burst: int, rate: float) -> bool: ...


class MemoryAddressLimits:
    """One process's limits (embedded mode)."""

    def __init__(self) -> None:
        self.connections: dict[str, set[str]] = {}
        self.buckets: dict[tuple[str, str], TokenBucket] = {}

    async def open(self, address: str, connection: str, limit: int) -> bool:
        open_here = self.connections.setdefault(address, set())
        if len(open_here) >= limit:
            return False
        open_here.add(connection)
        return True

    async def renew(self, address: str, connection: str) -> None:
        return None

    async def close(self, address: str, connection: str) -> None:
        open_here = self.connections.get(address, set())
        open_here.discard(connection)
        if not open_here:
            self.connections.pop(address, None)

    async def take(self, address: str, kind: str, *, burst: int, rate: float) -> bool:
        bucket = self.buckets.get((address, kind))
        if bucket is None:
            if len(self.buckets) > 10_000:  # forget addresses that are quiet again
                self.buckets = {key: b for key, b in self.buckets.items() if key[0] in self.connections}
            bucket = self.buckets[(address, kind)] = TokenBucket(burst=burst, rate=rate)
        return bucket.take()


# Open connections: a sorted set of connection names scored by when their lease ends.
_OPEN = """
local now = redis.call('TIME')
now = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[4] == '1' and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
# A token bucket: `tokens` left at time `at` (seconds, Redis' clock).
_TAKE = """
local now = redis.call('TIME')
now = now[1] + now[2] / 1000000
local burst, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
tokens = math.min(burst, tokens + math.max(0, now - (tonumber(state[2]) or now)) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(1000 * burst / math.max(rate, 0.001)) + 1000)
return allowed
"""


_scripts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # per client: its loop's connections


class RedisAddressLimits:
    """Limits shared by all web processes, on the event loop's Redis client (see chatbot.redis_client)."""

    def __init__(self) -> None:
        self.prefix = f"{settings.REDIS_PREFIX}chatbot:ip:"

    def _lease_ms(self) -> int:
        """How long an open connection counts without news from it: longer than the idle timeout, after
        which the consumer closes it anyway; renewed by its frames (see renew)."""
        idle = settings.CHATBOT_IDLE_SECONDS if settings.CHATBOT_IDLE_SECONDS > 0 else 3600
        return int((idle + 60) * 1000)

    async def _eval(self, script: str, keys: list[str], args: list) -> int:
        """EVALSHA of the script (sent in full only when Redis does not know it yet)."""
        from chatbot.redis_client import redis_async

        client = redis_async()
        registered = _scripts.setdefault(client, {})
        if script not in registered:
            registered[script] = client.register_script(script)
        return int(await registered[script](keys=keys, args=args))

    async def open(self, address: str, connection: str, limit: int) -> bool:
        args = [connection, limit, self._lease_ms(), 1]
        return await self._fail_open(self._eval(_OPEN, [f"{self.prefix}open:{address}"], args))

    async def renew(self, address: str, connection: str) -> None:
        args = [connection, 0, self._lease_ms(), 0]
        await self._fail_open(self._eval(_OPEN, [f"{self.prefix}open:{address}"], args))

    async def close(self, address: str, connection: str) -> None:
        from chatbot.redis_client import redis_async

        try:
            await redis_async().zrem(f"{self.prefix}open:{address}", connection)
        except Exception:  # the lease expires on its own
            logger.warning("connection limit of an address not released (Redis unavailable)")

    async def take(self, address: str, kind: str, *, burst: int, rate: float) -> bool:
        return await self._fail_open(self._eval(_TAKE, [f"{self.prefix}{kind}:{address}"], [burst, rate]))

    async def _fail_open(self, check: Awaitable[int]) -> bool:
        """A Redis outage stops answers anyway (it is the broker); the limits let customers through meanwhile
        instead of locking everyone out."""
        try:
            return bool(await check)
        except Exception:
            logger.warning("address limits unavailable (Redis); allowed", exc_info=True)
            return True


def address_limits() -> AddressLimits:
    return RedisAddressLimits() if settings.REDIS_URL else MemoryAddressLimits()
