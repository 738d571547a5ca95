"""Hand-off to people: every change of a conversation's owner, and what operators and customers do meanwhile.

A conversation's owner (bot, queue, or one operator) changes only here, under a row lock on the conversation
(`select_for_update`), so that two operators claiming at once cannot both win, and a customer message stored
at the same moment is routed by the owner it was stored under. Frames go out after commit (chatbot.console.notify).
"""

import datetime as dt
import functools
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from chatbot import metrics
from chatbot.console import presence
from chatbot.console.hours import hours_next_open, hours_open
from chatbot.console.models import Handoff, Note, Ticket
from chatbot.console.notify import STAFF, console_send, customer_send, operator_group
from chatbot.console.selectors import (
    conversation_payload,
    message_item,
    note_item,
    operator_name,
    queue_list,
    ticket_item,
)
from chatbot.conversations.models import Conversation, Message
from chatbot.privacy import pii_redact

logger = logging.getLogger(__name__)

UNAVAILABLE_TEXT = {
    "busy": {
        "en": "Nobody from our team is available right now. Leave us a message below and we will get back to you.",
        "zh": "目前没有客服人员在线。请在下方留言，我们会尽快联系您。",
    },
    "closed": {
        "en": "Our team is away right now{back}. Leave us a message below and we will get back to you.",
        "zh": "我们的客服人员现在不在线{back}。请在下方留言，我们会尽快联系您。",
    },
}
EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
BACK_AT = {"en": "; people are back {when}", "zh": "，服务时间将于 {when} 恢复"}


class ConsoleError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


def _lock(conversation_id: int) -> Conversation:
    conversation = Conversation.objects.select_for_update().filter(pk=conversation_id).first()
    if conversation is None:
        raise ConsoleError("not_found", "No such conversation.")
    return conversation


def _current_ids(conversation_id: int) -> list[int]:
    current = _current(conversation_id)
    return [current.pk] if current else []


def _current(conversation_id: int) -> Handoff | None:
    """The hand-off in progress (waiting or with a person), locked."""
    return (
        Handoff.objects.select_for_update()
        .filter(conversation_id=conversation_id, outcome__in=[Handoff.Outcome.WAITING, Handoff.Outcome.WITH_PERSON])
        .order_by("-requested_at", "-id")
        .first()
    )


# --- availability ------------------------------------------------------------------


def availability() -> tuple[bool, str, Any]:
    """(someone can take a conversation now, why not: "closed" | "busy", when the next opening period starts)."""
    if not hours_open():
        return False, "closed", hours_next_open()
    if not presence.presence_available(user_ids=presence.presence_members()):
        return False, "busy", None
    return True, "", None


def unavailable_frame(*, why: str, back_at: Any, language: str) -> dict[str, Any]:
    language = language if language in ("en", "zh") else "en"
    when = back_at.strftime("%a %H:%M %Z") if back_at else ""
    back = BACK_AT[language].format(when=when) if back_at else ""
    return {
        "type": "handoff",
        "status": "unavailable",
        "reason": why,
        "back_at": back_at.isoformat() if back_at else None,
        "text": UNAVAILABLE_TEXT[why][language].format(back=back),
    }


# --- customer side -----------------------------------------------------------------


def handoff_begin(*, conversation_id: int, reason: str) -> dict[str, Any]:
    """Ask for a person: queue the conversation if someone can take it, else say honestly that nobody can.

    Runs inside the caller's transaction when there is one (the answer task's). Returns the customer's frame.
    """
    with transaction.atomic():
        conversation = _lock(conversation_id)
        if conversation.owner != Conversation.Owner.BOT:
            return customer_status(conversation=conversation)
        language = conversation.language or "en"
        ok, why, back_at = availability()
        if not ok:
            Handoff.objects.create(
                conversation=conversation, reason=reason, outcome=Handoff.Outcome.UNAVAILABLE, ended_at=timezone.now()
            )
            frame = unavailable_frame(why=why, back_at=back_at, language=language)
            customer_send(conversation.pk, frame)
            return frame
        conversation.owner, conversation.handed_off = Conversation.Owner.QUEUE, True
        conversation.save(update_fields=["owner", "handed_off", "last_seen_at"])
        Handoff.objects.create(conversation=conversation, reason=reason, outcome=Handoff.Outcome.WAITING)
        transaction.on_commit(lambda: metrics.metrics_handoff(reason=reason))
        transaction.on_commit(queue_broadcast)
        logger.info("conversation %s waits for a person (%s)", conversation.pk, reason)
        return {"type": "handoff", "status": "waiting"}


def customer_status(*, conversation: Conversation) -> dict[str, Any]:
    """The customer's current hand-off status, for a (re)connecting page."""
    if conversation.owner == Conversation.Owner.OPERATOR:
        return {"type": "handoff", "status": "joined", "agent": operator_name(conversation.operator)}
    if conversation.owner == Conversation.Owner.QUEUE:
        for item in queue_list():
            if item["conversation"] == conversation.pk:
                return _waiting_frame(item)
        return {"type": "handoff", "status": "waiting"}
    return {"type": "handoff", "status": "bot"}


def _waiting_frame(item: dict[str, Any]) -> dict[str, Any]:
    limit = settings.CHATBOT_HANDOFF_WAIT_LIMIT_SECONDS
    return {
        "type": "handoff",
        "status": "waiting",
        "position": item["position"],
        "leave_message": bool(limit) and item["waited_s"] >= limit,
    }


@dataclass(frozen=True)
class Route:
    """Who answers a customer message, read under the conversation's row lock by the statement that stores the
    message (chatbot.conversations.services.message_receive)."""

    owner: str
    operator_id: int | None

    @property
    def person(self) -> bool:
        return self.owner != Conversation.Owner.BOT

    def dispatch(self, message: Message, enqueue: Any) -> None:
        """After commit: the bot's answer task, or the frame to the operator (or the queue's consoles)."""
        if not self.person:
            enqueue(message.pk)
            return
        # The page stops waiting for a bot answer: a person has the message.
        customer_send(
            message.conversation_id, {"type": "received", "reply_to": message.client_id, "message_id": message.pk}
        )
        if self.owner == Conversation.Owner.OPERATOR and self.operator_id:
            frame = {
                "type": "customer_message",
                "conversation": message.conversation_id,
                "message": message_item(message),
            }
            console_send(operator_group(self.operator_id), frame)
        else:
            queue_broadcast()


def handoff_reason(*, conversation_id: int, outcome: str) -> str | None:
    """Whether the reply about to be stored asks for a person, and why: a hand-off pair does; a streak of
    not-sure answers, or a thumbs-down followed by a not-sure answer, does too. Read before the reply's
    transaction, so that an answer that asks for nobody is stored with one INSERT (no BEGIN and COMMIT)."""
    if outcome == Message.Outcome.HANDOFF:
        return Handoff.Reason.ASKED
    if outcome == Message.Outcome.UNSURE:
        return _auto_reason(conversation_id)
    return None


def handoff_after_reply(*, conversation_id: int, reason: str, text: str) -> str:
    """Called by the answer task, in its transaction, before the bot's reply is stored, with the `handoff_reason`
    of the reply; returns the reply text.

    A hand-off pair queues the conversation, but when nobody can take it the reply says so instead of promising
    a person; a not-sure streak queues it and the reply stays as it is.
    """
    frame = handoff_begin(conversation_id=conversation_id, reason=reason)
    if reason == Handoff.Reason.ASKED and frame["status"] == "unavailable":
        return frame["text"]
    return text


@functools.cache
def _previous_sql() -> str:
    """The outcome and feedback of a conversation's latest bot messages, newest first, each with whether it came
    after the conversation's last request for a person. In SQL: it runs for every not-sure answer, and the ORM's
    compilation of it cost more CPU than the database's work on it (the serving section of BENCHMARKS.md).

    The conversation's messages are read first, by the (conversation, created_at) index, in a materialised CTE, and
    filtered by sender outside it: with the sender inside, a plan made without table statistics (autovacuum off)
    ANDed in the dashboard's partial index of every bot message (`WHERE sender = 'bot'`) and read all of them."""
    quote = connection.ops.quote_name
    message, handoff = quote(Message._meta.db_table), quote(Handoff._meta.db_table)
    return (
        f"WITH recent AS MATERIALIZED (SELECT sender, outcome, helpful, created_at, id FROM {message}"
        " WHERE conversation_id = %s)"
        f" SELECT outcome, helpful, created_at > COALESCE((SELECT requested_at FROM {handoff} WHERE conversation_id = %s"
        " ORDER BY requested_at DESC LIMIT 1), %s) FROM recent WHERE sender = %s ORDER BY created_at DESC, id DESC"
        " LIMIT %s"
    )


def _auto_reason(conversation_id: int) -> str | None:
    """Whether this not-sure answer (not stored yet) completes a streak. Answers before the last request for a
    person do not count: a customer who was offered one is not offered again at the next not-sure answer."""
    streak = settings.CHATBOT_HANDOFF_AFTER_UNSURE
    with connection.cursor() as cursor:
        since = connection.ops.adapt_datetimefield_value(EPOCH)  # as the ORM binds it (SQLite: text in UTC)
        bot, limit = Message.Sender.BOT.value, max(streak - 1, 1)
        cursor.execute(_previous_sql(), [conversation_id, conversation_id, since, bot, limit])
        previous = [(outcome, helpful) for outcome, helpful, after in cursor.fetchall() if after]
    if settings.CHATBOT_HANDOFF_AFTER_THUMBS_DOWN and previous and previous[0][1] is False:
        return Handoff.Reason.THUMBS_DOWN
    if streak and len(previous) >= streak - 1 and all(o == Message.Outcome.UNSURE for o, _ in previous[: streak - 1]):
        return Handoff.Reason.UNSURE
    return None


def ticket_create(*, conversation_id: int, contact: str, text: str) -> Ticket:
    """A message left for the team. The text is redacted like any customer message; the contact is what the
    customer asked us to use, so it is kept as given, in its own field."""
    with transaction.atomic():
        conversation = _lock(conversation_id)
        ticket = Ticket.objects.create(
            conversation=conversation, contact=contact, text=pii_redact(text), language=conversation.language
        )
        Handoff.objects.filter(
            conversation=conversation, outcome__in=[Handoff.Outcome.UNAVAILABLE, Handoff.Outcome.WAITING]
        ).update(outcome=Handoff.Outcome.LEFT_MESSAGE, ended_at=timezone.now())
        if conversation.owner == Conversation.Owner.QUEUE:
            _to_bot(conversation)
            transaction.on_commit(queue_broadcast)
        console_send(STAFF, {"type": "ticket", "ticket": ticket_item(ticket)})
    logger.info("ticket %s left in conversation %s", ticket.pk, conversation_id)
    return ticket


def handoff_abandon(*, conversation_id: int) -> bool:
    """The customer left while waiting (no socket for the grace period): out of the queue, back to the bot."""
    if presence.waiting_sockets(conversation_id=conversation_id) > 0:
        return False
    with transaction.atomic():
        conversation = _lock(conversation_id)
        if conversation.owner != Conversation.Owner.QUEUE:
            return False
        _to_bot(conversation)
        Handoff.objects.filter(conversation=conversation, outcome=Handoff.Outcome.WAITING).update(
            outcome=Handoff.Outcome.ABANDONED, ended_at=timezone.now()
        )
        transaction.on_commit(queue_broadcast)
    logger.info("conversation %s: the customer left the queue", conversation_id)
    return True


def rating_record(*, conversation_id: int, score: int, comment: str) -> Handoff:
    """The customer's 1-5 rating of the last conversation with a person, once."""
    with transaction.atomic():
        handoff = (
            Handoff.objects.select_for_update()
            .filter(conversation_id=conversation_id, outcome=Handoff.Outcome.RESOLVED, rating__isnull=True)
            .order_by("-ended_at")
            .first()
        )
        if handoff is None:
            raise ConsoleError("bad_request", "Nothing to rate in this conversation.")
        last_operator = (
            Message.objects.filter(conversation_id=conversation_id, sender=Message.Sender.OPERATOR)
            .order_by("-id")
            .values_list("operator_id", flat=True)
            .first()
        )
        handoff.rating, handoff.rating_comment, handoff.rated_operator_id = score, comment, last_operator
        handoff.save(update_fields=["rating", "rating_comment", "rated_operator"])
        transaction.on_commit(lambda: metrics.metrics_rating(score=score))
    return handoff


# --- operator side -----------------------------------------------------------------


def queue_broadcast() -> None:
    """The queue to every console, and each waiting customer their place in it."""
    items = queue_list()
    console_send(STAFF, {"type": "queue", "conversations": items})
    for item in items:
        customer_send(item["conversation"], _waiting_frame(item))


def conversation_claim(*, conversation_id: int, user: Any) -> Conversation:
    """The operator takes a waiting conversation; exactly one of two operators claiming at once succeeds."""
    with transaction.atomic():
        conversation = _lock(conversation_id)
        if conversation.owner != Conversation.Owner.QUEUE:
            raise ConsoleError("taken", "This conversation is no longer waiting: another operator took it.")
        _hold(conversation, user)
        handoff = _current(conversation_id)
        if handoff and handoff.claimed_at is None:
            handoff.claimed_at = timezone.now()
            waited = (handoff.claimed_at - handoff.requested_at).total_seconds()
            transaction.on_commit(lambda: metrics.metrics_wait(seconds=waited))
        if handoff:
            handoff.outcome = Handoff.Outcome.WITH_PERSON
            handoff.save(update_fields=["claimed_at", "outcome"])
            handoff.operators.add(user)
        transaction.on_commit(queue_broadcast)
    logger.info("conversation %s claimed by operator %s", conversation_id, user.pk)
    return conversation


def _hold(conversation: Conversation, user: Any) -> None:
    conversation.owner, conversation.operator = Conversation.Owner.OPERATOR, user
    conversation.save(update_fields=["owner", "operator", "last_seen_at"])
    customer_send(conversation.pk, {"type": "handoff", "status": "joined", "agent": operator_name(user)})
    console_send(operator_group(user.pk), {"type": "conversation", **conversation_payload(conversation)})


def _held(conversation_id: int, user: Any) -> Conversation:
    conversation = _lock(conversation_id)
    if conversation.owner != Conversation.Owner.OPERATOR or conversation.operator_id != user.pk:
        raise ConsoleError("not_yours", "You do not hold this conversation.")
    return conversation


def operator_reply(*, conversation_id: int, user: Any, text: str) -> Message:
    with transaction.atomic():
        conversation = _held(conversation_id, user)
        message = Message.objects.create(
            conversation=conversation, sender=Message.Sender.OPERATOR, operator=user, text=text
        )
        handoff = _current(conversation_id)
        if handoff and handoff.first_response_at is None:
            handoff.first_response_at = message.created_at
            handoff.save(update_fields=["first_response_at"])
            seconds = (message.created_at - handoff.requested_at).total_seconds()
            transaction.on_commit(lambda: metrics.metrics_first_response(seconds=seconds))
        item = message_item(message)
        frame = {"type": "agent_message", "id": message.pk, "text": text, "agent": item["agent"], "at": item["at"]}
        customer_send(conversation_id, frame, deliver=message.pk)
        console_send(
            operator_group(user.pk), {"type": "agent_message", "conversation": conversation_id, "message": item}
        )
        transaction.on_commit(lambda: _suggest(message.pk))
    return message


def _suggest(message_id: int) -> None:
    from chatbot.review.services import review_suggestion_add

    try:
        review_suggestion_add(operator_message_id=message_id)
    except Exception:  # a suggestion is never worth losing the reply over
        logger.exception("operator reply %s: no suggested pair", message_id)


def conversation_end(*, conversation_id: int, user: Any, to: str) -> Conversation:
    """The operator hands the conversation back to the bot (`to: bot`: the thread goes on with the bot) or
    closes it (`to: closed`: the customer's next message starts a new conversation, answered by the bot, and
    this one keeps its transcript). Either way the customer is asked for a rating and the hand-off is resolved."""
    if to not in ("bot", "closed"):
        raise ConsoleError("bad_request", "'to' must be 'bot' or 'closed'.")
    with transaction.atomic():
        conversation = _held(conversation_id, user)
        agent = operator_name(user)
        _to_bot(conversation)
        Handoff.objects.filter(pk__in=_current_ids(conversation_id)).update(
            outcome=Handoff.Outcome.RESOLVED, ended_at=timezone.now(), ended_to=to
        )
        customer_send(conversation_id, {"type": "handoff", "status": "ended", "to": to, "agent": agent, "rate": True})
        console_send(operator_group(user.pk), {"type": "ended", "conversation": conversation_id, "to": to})
    logger.info("conversation %s ended by operator %s (%s)", conversation_id, user.pk, to)
    return conversation


def conversation_closed(*, conversation_id: int) -> bool:
    """Whether the last hand-off of this conversation ended with the operator closing it (not handing back)."""
    last = Handoff.objects.filter(conversation_id=conversation_id).order_by("-requested_at", "-pk").first()
    return last is not None and last.ended_to == "closed"


def _to_bot(conversation: Conversation) -> None:
    conversation.owner, conversation.operator = Conversation.Owner.BOT, None
    conversation.save(update_fields=["owner", "operator", "last_seen_at"])


def conversation_transfer(*, conversation_id: int, user: Any, to_user_id: int) -> Conversation:
    """Give a held conversation to another operator who is available now."""
    target = get_user_model().objects.filter(pk=to_user_id, is_active=True, is_staff=True).first()
    if target is None or target.pk == user.pk or not target.has_perm("console.use_console"):
        raise ConsoleError("bad_request", "Transfer to another operator of the console.")
    if target.pk not in presence.presence_available(user_ids=[target.pk]):
        raise ConsoleError("unavailable", f"{operator_name(target)} is not available now.")
    with transaction.atomic():
        conversation = _held(conversation_id, user)
        _hold(conversation, target)
        handoff = _current(conversation_id)
        if handoff:
            handoff.operators.add(target)
        console_send(operator_group(user.pk), {"type": "transferred", "conversation": conversation_id, "to": target.pk})
    logger.info("conversation %s transferred from operator %s to %s", conversation_id, user.pk, target.pk)
    return conversation


def conversation_release(*, conversation_id: int) -> bool:
    """The holder's console has been gone longer than the grace period: back to the queue, the customer told."""
    with transaction.atomic():
        conversation = _lock(conversation_id)
        if conversation.owner != Conversation.Owner.OPERATOR:
            return False
        previous = conversation.operator_id
        conversation.owner, conversation.operator = Conversation.Owner.QUEUE, None
        conversation.save(update_fields=["owner", "operator", "last_seen_at"])
        Handoff.objects.filter(pk__in=_current_ids(conversation_id)).update(outcome=Handoff.Outcome.WAITING)
        customer_send(conversation_id, {"type": "handoff", "status": "waiting", "agent_left": True})
        if previous:
            console_send(operator_group(previous), {"type": "released", "conversation": conversation_id})
        transaction.on_commit(queue_broadcast)
    logger.warning("conversation %s back in the queue: operator %s gone", conversation_id, previous)
    return True


def operators_sweep() -> int:
    """Release the conversations of every operator whose consoles are all gone; returns how many."""
    held = dict(
        Conversation.objects.filter(owner=Conversation.Owner.OPERATOR).values_list("pk", "operator_id").order_by("pk")
    )
    alive = presence.presence_alive(user_ids=sorted({uid for uid in held.values() if uid}))
    return sum(conversation_release(conversation_id=cid) for cid, uid in held.items() if uid not in alive)


def typing_to_customer(*, conversation_id: int, user: Any, typing: bool) -> None:
    with transaction.atomic():
        _held(conversation_id, user)
        customer_send(conversation_id, {"type": "typing", "typing": typing, "agent": operator_name(user)})


def typing_to_operator(*, conversation_id: int, typing: bool) -> None:
    operator_id = (
        Conversation.objects.filter(pk=conversation_id, owner=Conversation.Owner.OPERATOR)
        .values_list("operator_id", flat=True)
        .first()
    )
    if operator_id:
        console_send(operator_group(operator_id), {"type": "typing", "conversation": conversation_id, "typing": typing})


def note_add(*, conversation_id: int, user: Any, text: str) -> Note:
    note = Note.objects.create(conversation_id=conversation_id, author=user, text=text)
    console_send(STAFF, {"type": "note", "conversation": conversation_id, "note": note_item(note)})
    return note


def ticket_done(*, ticket_id: int, user: Any) -> Ticket:
    ticket = Ticket.objects.filter(pk=ticket_id).first()
    if ticket is None:
        raise ConsoleError("not_found", "No such ticket.")
    Ticket.objects.filter(pk=ticket_id).update(status=Ticket.Status.DONE, done_by=user, done_at=timezone.now())
    ticket.refresh_from_db()
    console_send(STAFF, {"type": "ticket", "ticket": ticket_item(ticket)})
    return ticket
