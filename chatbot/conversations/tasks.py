import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from chatbot.conversations.delivery import group_send
from chatbot.conversations.services import answer_payload, conversation_group, message_answer

logger = logging.getLogger(__name__)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError, ConnectionError),
    retry_backoff=True,
    retry_backoff_max=30,
    max_retries=10,
)
def answer_message_task(message_id: int) -> None:
    bot = message_answer(message_id)
    if bot is None:
        logger.warning("message %s not found or not a customer message", message_id)
        return
    group_send(conversation_group(bot.conversation_id), {"type": "chat.answer", "answer": answer_payload(bot)})
