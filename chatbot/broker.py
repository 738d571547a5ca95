"""The Celery broker transport: kombu's Redis transport, with one client object per channel.

kombu's Redis channel builds a new `redis.Redis` object for every publish, every delivery's bookkeeping and every
acknowledgement (`Channel.conn_or_acquire`): three a customer message, each 0.08 ms of CPU, twice what the LPUSH
itself costs (the serving section of BENCHMARKS.md). A client object is only a thread-safe handle on the channel's
connection pool, holding no connection of its own, so one per channel does the same work; connections still come
from, and go back to, the pool, which replaces broken ones after a Redis restart.

Selected by `CELERY_BROKER_TRANSPORT = "chatbot.broker:Transport"`; the broker URL stays `redis://...`.
"""

from typing import Any

from kombu.transport import redis


class Channel(redis.Channel):
    _sync_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:  # the consumer's BRPOP client: kombu caches it already (`Channel.client`)
            return super()._create_client(asynchronous=True)
        if self._sync_client is None:
            self._sync_client = super()._create_client()
        return self._sync_client


class Transport(redis.Transport):
    Channel = Channel
