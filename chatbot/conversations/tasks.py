import logging
import time
from typing import Any

from celery import shared_task
from celery.concurrency import get_implementation
from celery.signals import worker_init, worker_process_init
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections

from chatbot.connections import with_connection
from chatbot.conversations.answering import message_answer
from chatbot.conversations.delivery import group_send
from chatbot.conversations.services import (
    ANSWER_TASK,
    answer_payload,
    conversation_group,
    conversations_purge,
    messages_unanswered,
)
from chatbot.redis_client import redis_client, redis_key
from chatbot.retention import retention_nightly
from chatbot.review.services import review_queue_refresh

logger = logging.getLogger(__name__)


@worker_process_init.connect
def _worker_process_start(**kwargs: object) -> None:
    """One pool process per core: torch's default (all cores per process) makes them fight. The model is
    loaded now, not on the first customer's message, and the process reports its health from here on."""
    import torch

    from chatbot.health import heartbeat_start

    torch.set_num_threads(settings.CHATBOT_TORCH_THREADS)
    heartbeat_start()


@worker_init.connect
def _worker_start(sender: Any, **kwargs: object) -> None:
    """A threads (or solo) pool answers in the worker's own process, where no pool process starts."""
    if get_implementation(sender.pool_cls).__module__ != "celery.concurrency.prefork":
        _worker_process_start()


@shared_task(
    name=ANSWER_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError, ConnectionError),
    retry_backoff=True,
    retry_backoff_max=30,
    max_retries=10,
)
def answer_message_task(message_id: int) -> None:
    _answer_and_send(message_id)


# Celery reuses the worker's connection across tasks (CELERY_DB_REUSE_MAX) and never checks it: after a database
# restart, a broken connection is replaced before the next task or the retry, not retried until it gives up.
@with_connection
def _answer_and_send(message_id: int) -> None:
    bot = message_answer(message_id)
    if bot is None:
        logger.warning("message %s not found or not a customer message", message_id)
        return
    _review_refresh_soon()
    if bot.delivered_at is not None:  # a task queued again (redelivered or recovered) for a delivered answer
        return
    group_send(conversation_group(bot.conversation_id), {"type": "chat.answer", "answer": answer_payload(bot)})


_review_asked_at: list[float] = [float("-inf")]


def _review_refresh_soon() -> None:
    """New answers ask for a review-queue refresh at most once a second per process: the request is a Redis
    round trip, the refresh itself waits CHATBOT_REVIEW_REFRESH_SECONDS, and a worker answers hundreds a second."""
    if time.monotonic() - _review_asked_at[0] >= 1.0:
        _review_asked_at[0] = time.monotonic()
        review_queue_refresh()


@shared_task(name="chatbot.conversations.tasks.conversations_purge_task")
def conversations_purge_task() -> int:
    """The retention schedule: delete conversations older than CHATBOT_RETENTION_DAYS (and what was made from
    them), unconfirmed import previews and the artifacts of old model versions (chatbot.retention)."""
    deleted = conversations_purge(days=settings.CHATBOT_RETENTION_DAYS)
    logger.info("retention: %s conversations older than %s days deleted", deleted, settings.CHATBOT_RETENTION_DAYS)
    retention_nightly()
    return deleted


@shared_task(name="chatbot.conversations.tasks.recover_unanswered_task", ignore_result=True)
def recover_unanswered_task() -> int:
    """Queue again the answer of every customer message still unanswered CHATBOT_RECOVERY_AFTER_SECONDS after
    it was stored (up to CHATBOT_RECOVERY_HORIZON_SECONDS back): PostgreSQL is the durable record, and a task
    can be lost on its way from Redis to a worker that is killed (see chatbot.celery.RecoverySweep).

    Answering is idempotent, so a message that was only slow gets a second task that does nothing. One sweep
    per interval for the whole cluster (a Redis lock); each message at most once per CHATBOT_RECOVERY_AFTER_SECONDS
    and CHATBOT_RECOVERY_ATTEMPTS times in all, so that a message that fails every time is not retried forever.
    Returns how many were queued again.
    """
    close_old_connections()
    client, prefix = redis_client(), redis_key("recover")
    interval_ms = max(100, int(settings.CHATBOT_RECOVERY_SECONDS * 900))
    if not client.set(f"{prefix}:lock", 1, nx=True, px=interval_ms):
        return 0
    after, horizon = settings.CHATBOT_RECOVERY_AFTER_SECONDS, settings.CHATBOT_RECOVERY_HORIZON_SECONDS
    queued = []
    for message_id in messages_unanswered(older_than=after, newer_than=horizon, limit=settings.CHATBOT_RECOVERY_LIMIT):
        if not client.set(f"{prefix}:recent:{message_id}", 1, nx=True, px=max(1, int(after * 1000))):
            continue  # queued again less than `after` seconds ago: still on its way
        with client.pipeline() as pipe:
            pipe.incr(f"{prefix}:attempts:{message_id}")
            pipe.expire(f"{prefix}:attempts:{message_id}", max(1, int(horizon)))
            attempts, _ = pipe.execute()
        if attempts > settings.CHATBOT_RECOVERY_ATTEMPTS:
            continue
        answer_message_task.apply_async(args=[message_id])
        queued.append(message_id)
    if queued:
        logger.warning(
            "recovery: %s customer messages unanswered after %s s queued again: %s",
            len(queued),
            after,
            queued[:20],
            extra={"message_ids": queued[:100]},
        )
    return len(queued)
