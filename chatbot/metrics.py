"""Product metrics for Prometheus, shared by every web and worker process through Redis.

Workers and web processes add to counters and histogram buckets in one Redis hash: each process sums its
events in memory and adds them with one pipelined round trip at most every FLUSH_SECONDS (a round trip per
message was a measurable share of serving); GET /metrics renders them with the HTTP and process metrics of django-prometheus,
the depth of the Celery queues, the training runs by status, and what model each worker serves.
A Redis restart resets the counters, which Prometheus treats as a counter reset.
"""

import atexit
import collections
import logging
import os
import threading
import time
from collections.abc import Iterator

import redis
from django.conf import settings
from django.db.models import Count
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from chatbot.redis_client import redis_client, redis_key

logger = logging.getLogger(__name__)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
WAIT_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


def _key() -> str:
    return redis_key("metrics")


FLUSH_SECONDS = 1.0
_pending: collections.Counter = collections.Counter()
_pending_lock = threading.Lock()
_flusher_pid: list[int] = []


def _add(counts: dict[str, float]) -> None:
    if not settings.REDIS_URL:
        return
    with _pending_lock:
        _pending.update(counts)
    if _flusher_pid != [os.getpid()]:  # first event of this process (a forked pool process starts its own)
        _flusher_start()


def _flusher_start() -> None:
    with _pending_lock:
        if _flusher_pid == [os.getpid()]:
            return
        _flusher_pid[:] = [os.getpid()]

    def flush_forever() -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            metrics_flush()

    threading.Thread(target=flush_forever, name="metrics-flush", daemon=True).start()
    atexit.register(metrics_flush)


def metrics_flush() -> None:
    """Add this process's pending counts to Redis. Best effort: a metric is never worth failing a customer's
    message, and counts that Redis refused are dropped rather than piled up."""
    with _pending_lock:
        counts = dict(_pending)
        _pending.clear()
    if not counts:
        return
    try:
        pipe = redis_client().pipeline(transaction=False)
        for field, amount in counts.items():
            pipe.hincrbyfloat(_key(), field, amount)
        pipe.execute()
    except redis.RedisError:
        logger.debug("metrics not recorded", exc_info=True)


def _bucket(prefix: str, value: float, bounds: tuple[float, ...]) -> dict[str, float]:
    le = next((bound for bound in bounds if value <= bound), "+Inf")
    return {f"{prefix}:{le}": 1, f"{prefix}:sum": value, f"{prefix}:count": 1}


def metrics_message_received() -> None:
    _add({"messages_received": 1})


def metrics_answer(*, outcome: str, confidence: float | None, inference_seconds: float) -> None:
    counts = {f"answers:{outcome}": 1, **_bucket("inference_seconds", inference_seconds, LATENCY_BUCKETS)}
    if confidence is not None:
        counts.update(_bucket("confidence", confidence, CONFIDENCE_BUCKETS))
    _add(counts)


def metrics_handoff(*, reason: str) -> None:
    _add({f"handoffs:{reason}": 1})


def metrics_wait(*, seconds: float) -> None:
    _add(_bucket("handoff_wait_seconds", seconds, WAIT_BUCKETS))


def metrics_first_response(*, seconds: float) -> None:
    _add(_bucket("handoff_first_response_seconds", seconds, WAIT_BUCKETS))


def metrics_rating(*, score: int) -> None:
    _add({f"ratings:{score}": 1})


def _handoff_metrics(raw: dict[str, float]) -> Iterator:
    from chatbot.console.models import Handoff
    from chatbot.conversations.models import Conversation

    waiting = Conversation.objects.filter(owner=Conversation.Owner.QUEUE).count()
    yield GaugeMetricFamily("chatbot_handoff_waiting", "Conversations waiting for a person.", value=waiting)
    handoffs = CounterMetricFamily("chatbot_handoffs", "Requests for a person by reason.", labels=["reason"])
    for reason in Handoff.Reason.values:
        handoffs.add_metric([reason], raw.get(f"handoffs:{reason}", 0.0))
    yield handoffs
    yield _histogram(
        "chatbot_handoff_wait_seconds",
        "Wait for a person, request to claim.",
        raw,
        "handoff_wait_seconds",
        WAIT_BUCKETS,
    )
    yield _histogram(
        "chatbot_handoff_first_response_seconds",
        "Request to the operator's first message.",
        raw,
        "handoff_first_response_seconds",
        WAIT_BUCKETS,
    )
    ratings = CounterMetricFamily("chatbot_satisfaction", "Customers' ratings of people (1-5).", labels=["score"])
    for score in range(1, 6):
        ratings.add_metric([str(score)], raw.get(f"ratings:{score}", 0.0))
    yield ratings


def _histogram(
    name: str, doc: str, raw: dict[str, float], prefix: str, bounds: tuple[float, ...]
) -> HistogramMetricFamily:
    cumulative, buckets = 0.0, []
    for bound in (*map(repr, bounds), "+Inf"):
        cumulative += raw.get(f"{prefix}:{bound}", 0.0)
        buckets.append((bound, cumulative))
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=raw.get(f"{prefix}:sum", 0.0))


class ProductCollector(Collector):
    def collect(self) -> Iterator:
        from chatbot.health import workers_status
        from chatbot.registry.models import TrainingRun

        metrics_flush()  # this process's own pending counts, so a scrape never lags behind them
        raw: dict[str, float] = {}
        queues = GaugeMetricFamily("chatbot_queue_depth", "Tasks waiting in a Celery queue.", labels=["queue"])
        if settings.REDIS_URL:
            try:
                client = redis_client()
                raw = {str(key): float(value) for key, value in client.hgetall(_key()).items()}
                for queue in ("inference", "training"):
                    queues.add_metric([queue], client.llen(f"{settings.REDIS_PREFIX}{queue}"))
            except redis.RedisError:
                logger.warning("metrics: Redis unavailable")
        yield CounterMetricFamily(
            "chatbot_messages_received", "Customer messages stored.", value=raw.get("messages_received", 0.0)
        )
        answers = CounterMetricFamily("chatbot_answers", "Bot answers by outcome.", labels=["outcome"])
        for outcome in ("answer", "unsure", "handoff"):
            answers.add_metric([outcome], raw.get(f"answers:{outcome}", 0.0))
        yield answers
        yield _histogram(
            "chatbot_answer_confidence", "Confidence of the model's best answer.", raw, "confidence", CONFIDENCE_BUCKETS
        )
        yield _histogram(
            "chatbot_inference_seconds",
            "Time to choose an answer in a worker (model and reply).",
            raw,
            "inference_seconds",
            LATENCY_BUCKETS,
        )
        yield queues
        yield from _handoff_metrics(raw)
        runs = CounterMetricFamily("chatbot_training_runs", "Training runs by status.", labels=["status"])
        counted = dict(TrainingRun.objects.order_by().values_list("status").annotate(n=Count("id")))
        for status in TrainingRun.Status.values:
            runs.add_metric([status], counted.get(status, 0))
        yield runs
        served = GaugeMetricFamily(
            "chatbot_worker_model_version", "Model version each inference process serves.", labels=["worker"]
        )
        for worker in workers_status():
            served.add_metric([worker["worker"]], worker.get("loaded_version") or 0)
        yield served
        yield GaugeMetricFamily("chatbot_metrics_scraped", "Unix time of this scrape.", value=time.time())


_registered: list[ProductCollector] = []


def metrics_register() -> None:
    if not _registered:
        _registered.append(ProductCollector())
        REGISTRY.register(_registered[0])
