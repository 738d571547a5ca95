import logging

from celery import shared_task
from celery.signals import worker_process_init
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections

from chatbot.conversations.delivery import group_send
from chatbot.conversations.services import answer_payload, conversation_group, conversations_purge, message_answer

logger = logging.getLogger(__name__)


@worker_process_init.connect
def _worker_process_start(**kwargs: object) -> None:
    """One pool process per core: torch's default (all cores per process) makes them fight. The model is
    loaded now, not on the first customer's message, and the process reports its health from here on."""
    import torch

    from chatbot.health import heartbeat_start

    torch.set_num_threads(settings.CHATBOT_TORCH_THREADS)
    heartbeat_start()


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError, ConnectionError),
    retry_backoff=True,
    retry_backoff_max=30,
    max_retries=10,
)
def answer_message_task(message_id: int) -> None:
    # Celery reuses the worker's connection across tasks (CELERY_DB_REUSE_MAX) and never checks it:
    # after a database restart, a broken connection is replaced here, not retried until it gives up.
    close_old_connections()
    bot = message_answer(message_id)
    if bot is None:
        logger.warning("message %s not found or not a customer message", message_id)
        return
    group_send(conversation_group(bot.conversation_id), {"type": "chat.answer", "answer": answer_payload(bot)})


@shared_task(name="chatbot.conversations.tasks.conversations_purge_task")
def conversations_purge_task() -> int:
    """The retention schedule: delete conversations older than CHATBOT_RETENTION_DAYS."""
    deleted = conversations_purge(days=settings.CHATBOT_RETENTION_DAYS)
    logger.info("retention: %s conversations older than %s days deleted", deleted, settings.CHATBOT_RETENTION_DAYS)
    return deleted
