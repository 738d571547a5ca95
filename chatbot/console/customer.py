"""The customer socket's hand-off frames: asking for a person, leaving a message, rating, typing.

The chat consumer (chatbot.conversations.consumers) hands these frame types here after its own parsing and
rate limits; errors go back on the same socket, which stays open.
"""

import asyncio
import logging
import re
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone

from chatbot.console import presence, services
from chatbot.console.models import Handoff
from chatbot.conversations.models import Message
from chatbot.conversations.protocol import ErrorCode

logger = logging.getLogger(__name__)
FRAMES = {"handoff_request", "leave_message", "rating", "typing"}
# Those that begin something new: after an operator closed the conversation, they start a new one.
STARTING = {"handoff_request", "leave_message"}
# Operators' frames: a customer socket sending one is refused (and logged), never obeyed.
CONSOLE_FRAMES = {"claim", "open", "reply", "end", "transfer", "status", "note", "search", "tickets", "ticket_done"}
PHONE = re.compile(r"\+?[0-9][0-9 ().\-]{4,22}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
COMMENT_LIMIT = 1000


class Refused(Exception):
    def __init__(self, code: str, detail: str, field: str = "") -> None:
        super().__init__(detail)
        self.code, self.detail, self.field = code, detail, field


def _run(function: Any, **kwargs: Any) -> Any:
    return database_sync_to_async(function, thread_sensitive=False)(**kwargs)


async def customer_frame(consumer: Any, frame: dict[str, Any]) -> None:
    kind, reply_to = frame.get("type"), frame.get("id") if isinstance(frame.get("id"), str) else None
    try:
        if kind in CONSOLE_FRAMES:
            logger.warning(
                "conversation %s: console frame %r on a customer socket refused", consumer.conversation.pk, kind
            )
            raise Refused(ErrorCode.BAD_REQUEST, "This frame type is for operators' consoles.")
        handler = {"handoff_request": _request, "leave_message": _leave, "rating": _rating, "typing": _typing}[
            str(kind)
        ]
        await handler(consumer, frame, reply_to)
    except Refused as refused:
        error = {"type": "error", "code": refused.code, "detail": refused.detail, "reply_to": reply_to}
        await consumer.send_json({**error, "field": refused.field} if refused.field else error)
    except services.ConsoleError as error:
        await consumer.send_json({"type": "error", "code": error.code, "detail": error.detail, "reply_to": reply_to})
    except Exception:
        logger.exception("conversation %s: %s frame failed", consumer.conversation.pk, kind)
        await consumer.send_json(
            {
                "type": "error",
                "code": ErrorCode.UNAVAILABLE,
                "detail": "Please try again shortly.",
                "reply_to": reply_to,
            }
        )


async def _request(consumer: Any, frame: dict[str, Any], reply_to: str | None) -> None:
    status = await _run(services.handoff_begin, conversation_id=consumer.conversation.pk, reason=Handoff.Reason.BUTTON)
    if status["status"] == "waiting":
        await _track_waiting(consumer)


async def _track_waiting(consumer: Any) -> None:
    """Count this socket as the waiting customer's, so that a customer who leaves the queue is noticed."""
    if not getattr(consumer, "waiting_tracked", False):
        consumer.waiting_tracked = True
        await _run(presence.waiting_socket, conversation_id=consumer.conversation.pk, delta=1)


async def customer_gone(consumer: Any) -> None:
    """The socket closed: if it was the last of a waiting customer, they are gone from the queue unless they are
    back within the grace period (a reload is)."""
    if not getattr(consumer, "waiting_tracked", False):
        return
    consumer.waiting_tracked = False
    conversation_id = consumer.conversation.pk
    try:
        left = await _run(presence.waiting_socket, conversation_id=conversation_id, delta=-1)
    except Exception:  # Redis is down: the customer simply stays in the queue
        logger.warning("conversation %s: waiting socket not counted out", conversation_id)
        return
    if left <= 0:
        asyncio.get_running_loop().call_later(
            settings.CHATBOT_HANDOFF_GRACE_SECONDS,
            lambda: asyncio.ensure_future(_run(services.handoff_abandon, conversation_id=conversation_id)),
        )


def contact_clean(value: Any) -> str:
    """An e-mail address or a phone number, as typed (trimmed)."""
    if not isinstance(value, str) or not value.strip():
        raise Refused(ErrorCode.INVALID, "Give an e-mail address or a phone number.", "contact")
    contact = _CONTROL.sub("", value).strip()
    if len(contact) > 254:
        raise Refused(ErrorCode.INVALID, "That contact is too long.", "contact")
    if "@" in contact:
        try:
            validate_email(contact)
        except ValidationError:
            raise Refused(ErrorCode.INVALID, "That e-mail address is not valid.", "contact") from None
        return contact
    digits = sum(char.isdigit() for char in contact)
    if not PHONE.fullmatch(contact) or not 6 <= digits <= 15:
        raise Refused(ErrorCode.INVALID, "Give a valid e-mail address or phone number.", "contact")
    return contact


def text_clean(value: Any, *, field: str = "text") -> str:
    if not isinstance(value, str):
        raise Refused(ErrorCode.INVALID, "Write your message.", field)
    text = _CONTROL.sub("", value).strip()
    if not text:
        raise Refused(ErrorCode.INVALID, "Write your message.", field)
    if len(text) > settings.CHATBOT_MAX_MESSAGE_CHARS:
        raise Refused(
            ErrorCode.TOO_LONG, f"Messages are limited to {settings.CHATBOT_MAX_MESSAGE_CHARS} characters.", field
        )
    return text


async def _leave(consumer: Any, frame: dict[str, Any], reply_to: str | None) -> None:
    contact, text = contact_clean(frame.get("contact")), text_clean(frame.get("text"))
    ticket = await _run(services.ticket_create, conversation_id=consumer.conversation.pk, contact=contact, text=text)
    await consumer.send_json({"type": "ticket", "status": "received", "ticket": ticket.pk, "reply_to": reply_to})


async def _rating(consumer: Any, frame: dict[str, Any], reply_to: str | None) -> None:
    score, comment = frame.get("score"), frame.get("comment", "")
    if type(score) is not int or not 1 <= score <= 5:
        raise Refused(ErrorCode.INVALID, "'score' must be a whole number from 1 to 5.", "score")
    if not isinstance(comment, str) or len(comment) > COMMENT_LIMIT:
        raise Refused(ErrorCode.INVALID, f"A comment is text of at most {COMMENT_LIMIT} characters.", "comment")
    comment = _CONTROL.sub("", comment).strip()
    await _run(services.rating_record, conversation_id=consumer.conversation.pk, score=score, comment=comment)
    await consumer.send_json({"type": "rating", "status": "received", "reply_to": reply_to})


async def _typing(consumer: Any, frame: dict[str, Any], reply_to: str | None) -> None:
    if type(frame.get("typing")) is not bool:
        raise Refused(ErrorCode.BAD_REQUEST, "'typing' must be true or false.")
    await _run(services.typing_to_operator, conversation_id=consumer.conversation.pk, typing=frame["typing"])


def _status_on_connect(conversation_id: int) -> dict[str, Any] | None:
    """A returning customer's hand-off status; operator messages they had not received are in the history.
    A conversation an operator closed: `{"closed": True}` (nothing to show; the next message starts anew)."""
    from chatbot.conversations.models import Conversation

    conversation = Conversation.objects.select_related("operator").get(pk=conversation_id)
    if conversation.owner == Conversation.Owner.OPERATOR and services.operators_sweep():
        conversation.refresh_from_db()
    Message.objects.filter(
        conversation_id=conversation_id, sender=Message.Sender.OPERATOR, delivered_at__isnull=True
    ).update(delivered_at=timezone.now())
    if conversation.owner == Conversation.Owner.BOT:
        return {"closed": True} if services.conversation_closed(conversation_id=conversation_id) else None
    return services.customer_status(conversation=conversation)


async def customer_welcome(consumer: Any) -> None:
    """After the welcome frame: where the conversation stands (waiting, with a person)."""
    frame = await _run(_status_on_connect, conversation_id=consumer.conversation.pk)
    if frame and frame.get("closed"):
        consumer.closed = True
    elif frame:
        await consumer.send_json(frame)
        if frame["status"] == "waiting":
            await _track_waiting(consumer)


async def customer_deliver(consumer: Any, event: dict[str, Any]) -> None:
    """A frame for the customer from the console side (status, an operator's words, typing)."""
    frame = event["frame"]
    await consumer.send_json(frame)
    if frame.get("type") == "handoff" and frame.get("status") == "ended" and frame.get("to") == "closed":
        consumer.closed = True
    if event.get("deliver"):
        from chatbot.conversations.services import answers_mark_delivered

        await _run(answers_mark_delivered, message_ids=[event["deliver"]])
