"""Conversations and messages: what the consumer and the worker call."""

import logging
import time
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from chatbot.conversations.models import Conversation, Message
from chatbot.conversations.replies import Reply, reply_compose, reply_for_pair
from chatbot.knowledge.models import QAPair
from chatbot.knowledge.text import answer_html, answer_plain, detect_language
from chatbot.metrics import metrics_answer, metrics_message_received
from chatbot.privacy import pii_redact
from chatbot.registry.engine import engine_get

logger = logging.getLogger(__name__)
HISTORY_LIMIT = 100


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


def conversation_open(*, token: str | None) -> tuple[Conversation, bool]:
    """Resume the conversation with this token, or start a new one; returns (conversation, resumed)."""
    if token:
        conversation = Conversation.objects.filter(token=token).first()
        if conversation:
            conversation.save(update_fields=["last_seen_at"])
            return conversation, True
    return Conversation.objects.create(), False


def answer_payload(bot: Message) -> dict[str, Any]:
    """The fields of an `answer` frame for a stored bot message."""
    return {
        "reply_to": bot.reply_to.client_id if bot.reply_to_id else None,
        "message_id": bot.pk,
        "text": answer_plain(bot.text),
        "html": answer_html(bot.text),
        "confidence": None if bot.confidence is None else round(bot.confidence, 4),
        "suggestions": bot.suggestions,
        "handoff": bot.outcome == Message.Outcome.HANDOFF,
        "outcome": bot.outcome,
    }


def conversation_history(conversation: Conversation) -> list[dict[str, Any]]:
    messages = list(conversation.messages.select_related("reply_to").order_by("-created_at", "-id")[:HISTORY_LIMIT])
    items = []
    for message in reversed(messages):
        if message.sender == Message.Sender.CUSTOMER:
            items.append({"role": "customer", "id": message.client_id or None, "text": message.text})
        elif message.sender == Message.Sender.BOT:
            items.append({"role": "bot", **answer_payload(message), "feedback": message.helpful})
    return items


def conversation_undelivered(conversation: Conversation) -> list[dict[str, Any]]:
    bots = conversation.messages.filter(sender=Message.Sender.BOT, delivered_at__isnull=True).select_related("reply_to")
    return [answer_payload(bot) for bot in bots]


def answers_mark_delivered(message_ids: list[int]) -> None:
    Message.objects.filter(pk__in=message_ids, delivered_at__isnull=True).update(delivered_at=timezone.now())


def message_receive(
    *, conversation: Conversation, client_id: str, text: str, suggestion: int | None, enqueue: Any
) -> tuple[Message, bool]:
    """Store a customer message once per client id and have it answered after commit.

    A re-sent message (same client id) that has no answer yet is enqueued again: the first
    enqueue may have failed, and answering is idempotent. One INSERT on the usual path; the
    unique (conversation, client id) constraint catches the re-sent one.
    """
    suggested = QAPair.objects.filter(pk=suggestion, is_active=True).first() if suggestion else None
    try:
        with transaction.atomic():
            message = Message.objects.create(
                conversation=conversation,
                client_id=client_id,
                sender=Message.Sender.CUSTOMER,
                text=pii_redact(text),
                suggested_pair=suggested,
            )
            if not conversation.language:
                conversation.language = detect_language(text)
                conversation.save(update_fields=["language", "last_seen_at"])
            transaction.on_commit(lambda: enqueue(message.pk))
        metrics_message_received()
        return message, True
    except IntegrityError:
        message = Message.objects.select_related("reply").get(conversation=conversation, client_id=client_id)
    if not hasattr(message, "reply"):
        enqueue(message.pk)
    return message, False


def messages_unanswered(*, older_than: float, newer_than: float, limit: int) -> list[int]:
    """Customer messages stored between `newer_than` and `older_than` seconds ago that have no answer yet,
    newest first (whose customer is most likely still waiting): their answer task was lost (see
    chatbot.celery.RecoverySweep) or is still queued."""
    now = timezone.now()
    return list(
        Message.objects.filter(
            sender=Message.Sender.CUSTOMER,
            reply__isnull=True,
            created_at__lt=now - timezone.timedelta(seconds=older_than),
            created_at__gte=now - timezone.timedelta(seconds=newer_than),
        )
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)[:limit]
    )


def answer_for(message: Message) -> dict[str, Any] | None:
    """The `answer` frame of a customer message that has been answered, else None."""
    bot = Message.objects.filter(reply_to=message).select_related("reply_to").first()
    return answer_payload(bot) if bot else None


def conversations_purge(*, days: int) -> int:
    """Delete conversations (with their messages) not seen for `days` days; returns how many."""
    if days <= 0:
        return 0
    cutoff = timezone.now() - timezone.timedelta(days=days)
    deleted, by_model = Conversation.objects.filter(last_seen_at__lt=cutoff).delete()
    return by_model.get(Conversation._meta.label, 0)


def conversation_delete(*, token: str = "", conversation_id: int | None = None) -> int:
    """Delete one customer's conversation and everything in it (by token or id); returns messages deleted."""
    found = Conversation.objects.filter(token=token) if token else Conversation.objects.filter(pk=conversation_id)
    conversation = found.first()
    if conversation is None:
        return -1
    _, by_model = conversation.delete()
    logger.info(
        "conversation %s deleted on request (%s messages)",
        conversation_id or "by token",
        by_model.get(Message._meta.label, 0),
    )
    return by_model.get(Message._meta.label, 0)


def feedback_record(*, conversation: Conversation, message_id: int, helpful: bool) -> bool:
    updated = Message.objects.filter(pk=message_id, conversation=conversation, sender=Message.Sender.BOT).update(
        helpful=helpful, feedback_at=timezone.now()
    )
    return bool(updated)


def message_answer(message_id: int) -> Message | None:
    """Answer a stored customer message with the active model; idempotent (returns the existing answer).

    Two queries besides the model's: the message joined with its answer if any, and the insert.
    The one-to-one `reply_to` refuses a second answer to the same message (a redelivered task racing
    the first), and the first one is returned.
    """
    message = Message.objects.select_related("suggested_pair", "reply").filter(pk=message_id).first()
    if message is None or message.sender != Message.Sender.CUSTOMER:
        return None
    if hasattr(message, "reply"):
        return message.reply
    started = time.perf_counter()
    loaded = None if settings.CHATBOT_NOOP_MODEL else _engine()
    reply = _reply(message, loaded)
    latency_ms = (time.perf_counter() - started) * 1000
    try:
        with transaction.atomic():
            bot = Message.objects.create(
                conversation_id=message.conversation_id,
                sender=Message.Sender.BOT,
                reply_to=message,
                text=reply.text,
                pair=reply.pair,
                outcome=reply.outcome,
                confidence=reply.confidence,
                candidates=reply.candidates,
                suggestions=reply.suggestions,
                model_version_id=loaded.version_id if loaded else None,
                latency_ms=latency_ms,
            )
            if reply.outcome == Message.Outcome.HANDOFF:
                Conversation.objects.filter(pk=message.conversation_id).update(handed_off=True)
    except IntegrityError:
        return Message.objects.filter(reply_to_id=message.pk).first()
    metrics_answer(outcome=reply.outcome, confidence=reply.confidence, inference_seconds=latency_ms / 1000)
    logger.info(
        "message %s answered: %s pair=%s conf=%s",
        message.pk,
        reply.outcome,
        reply.pair and reply.pair.pk,
        reply.confidence,
        extra={
            "conversation_id": message.conversation_id,
            "message_id": message.pk,
            "answer_id": bot.pk,
            "outcome": reply.outcome,
            "latency_ms": round(latency_ms, 2),
        },
    )
    return bot


_engine_checked: list = [float("-inf"), None]


def _engine() -> Any:
    """The engine's model, asking it which version is active at most every CHATBOT_MODEL_CHECK_SECONDS:
    that question is one query, and a worker answers hundreds of messages a second."""
    now = time.monotonic()
    if now - _engine_checked[0] >= settings.CHATBOT_MODEL_CHECK_SECONDS or _engine_checked[1] is None:
        _engine_checked[:] = [now, engine_get()]
    return _engine_checked[1]


def _reply(message: Message, loaded: Any) -> Reply:
    if message.suggested_pair is not None:
        return reply_for_pair(message.suggested_pair, 1.0, [])
    if settings.CHATBOT_NOOP_MODEL:
        return reply_for_pair(_noop_pair(), 1.0, [])
    if loaded is None:
        return reply_compose(text=message.text, ranked=None, decide=None)
    ranked = loaded.model.predict([message.text], k=20)[0]
    return reply_compose(text=message.text, ranked=ranked, decide=loaded.model.decide)


_noop: list[QAPair] = []


def _noop_pair() -> QAPair:
    """The benchmark's floor (CHATBOT_NOOP_MODEL): always the first active pair, read once per process."""
    if not _noop:
        _noop.append(QAPair.objects.filter(is_active=True).order_by("pk").first())
    return _noop[0]
