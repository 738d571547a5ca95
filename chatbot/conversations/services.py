"""Conversations and messages: what the web process does with them (receive, store, enqueue, resume, feedback).

Answering with the model is the worker's (`answering`); nothing here loads it.
"""

import functools
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Q
from django.utils import timezone

from chatbot.celery import app as celery_app
from chatbot.connections import single_statement
from chatbot.console.selectors import operator_name
from chatbot.console.services import Route
from chatbot.conversations.frames import AgentFrame, AnswerFrame, Turn
from chatbot.conversations.models import Conversation, Message
from chatbot.knowledge.models import QAPair
from chatbot.knowledge.text import answer_html, answer_plain, detect_language
from chatbot.metrics import metrics_message_received
from chatbot.privacy import pii_redact
from chatbot.retention import conversations_erase
from chatbot.review.services import review_queue_refresh

logger = logging.getLogger(__name__)
HISTORY_LIMIT = 100
ANSWER_TASK = "chatbot.conversations.tasks.answer_message_task"


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


def conversation_resume(*, token: str) -> Conversation | None:
    """The conversation with this token, marked as seen now; None when there is none (never written, deleted)."""
    conversation = Conversation.objects.filter(token=token).first()
    if conversation:
        conversation.save(update_fields=["last_seen_at"])
    return conversation


def conversation_start(*, token: str, text: str, site_id: int | None = None) -> Conversation:
    """The conversation of a token reserved at connect, written when its first message (`text`) arrives;
    `site_id`: the widget's site it was opened from (None on the product's own page)."""
    defaults = {"language": detect_language(text), "site_id": site_id}
    return Conversation.objects.get_or_create(token=token, defaults=defaults)[0]


def answer_payload(bot: Message) -> AnswerFrame:
    """The fields of an `answer` frame for a stored bot message."""
    return {
        "reply_to": bot.reply_to.client_id if bot.reply_to else None,
        "message_id": bot.pk,
        "text": answer_plain(bot.text),
        "html": answer_html(bot.text),
        "confidence": None if bot.confidence is None else round(bot.confidence, 4),
        # `suggestions` holds the buttons a bot message offers: closest questions when not sure, else follow-ups
        "suggestions": bot.suggestions if bot.outcome == Message.Outcome.UNSURE else [],
        "followups": [] if bot.outcome == Message.Outcome.UNSURE else bot.suggestions,
        "handoff": bot.outcome == Message.Outcome.HANDOFF,
        "outcome": bot.outcome,
    }


def agent_payload(message: Message) -> AgentFrame:
    """The fields of an `agent_message` frame for an operator's message."""
    return {
        "id": message.pk,
        "text": message.text,
        "agent": operator_name(message.operator),
        "at": message.created_at.isoformat(),
    }


def conversation_history(conversation: Conversation) -> list[Turn]:
    messages = list(
        conversation.messages.select_related("reply_to", "operator").order_by("-created_at", "-id")[:HISTORY_LIMIT]
    )
    items: list[Turn] = []
    for message in reversed(messages):
        if message.sender == Message.Sender.CUSTOMER:
            items.append({"role": "customer", "id": message.client_id or None, "text": message.text})
        elif message.sender == Message.Sender.BOT:
            items.append({"role": "bot", **answer_payload(message), "feedback": message.helpful})
        else:  # an operator's words (chatbot.console)
            items.append({"role": "agent", **agent_payload(message)})
    return items


def conversation_undelivered(conversation: Conversation) -> list[AnswerFrame]:
    bots = conversation.messages.filter(sender=Message.Sender.BOT, delivered_at__isnull=True).select_related("reply_to")
    return [answer_payload(bot) for bot in bots]


def answers_mark_delivered(message_ids: list[int]) -> None:
    Message.objects.filter(pk__in=message_ids, delivered_at__isnull=True).update(delivered_at=timezone.now())


def message_receive(
    *, conversation: Conversation, client_id: str, text: str, suggestion: int | None, enqueue: Callable[[int], None]
) -> tuple[Message, bool]:
    """Store a customer message once per client id and have it answered after commit.

    A re-sent message (same client id) that has no answer yet is enqueued again: the first
    enqueue may have failed, and answering is idempotent. The conversation's owner is read under a row lock by the
    statement that stores the message (`_store_routed`), so a claim by an operator cannot slip between routing and
    storing; the unique (conversation, client id) constraint catches the re-sent one.
    """
    suggested = suggestion_offered(conversation=conversation, pair_id=suggestion) if suggestion else None
    message = Message(
        conversation=conversation,
        client_id=client_id,
        sender=Message.Sender.CUSTOMER,
        text=pii_redact(text),
        suggested_pair=suggested,
    )
    try:
        with single_statement():
            route = _store_routed(message)
        transaction.on_commit(lambda: route.dispatch(message, enqueue))  # at once, unless in a caller's transaction
        metrics_message_received()
        return message, True
    except IntegrityError:
        message = Message.objects.select_related("reply").get(conversation=conversation, client_id=client_id)
    if not hasattr(message, "reply") and not message.for_person:
        enqueue(message.pk)
    return message, False


def _fields() -> tuple[models.Field, ...]:
    return tuple(field for field in Message._meta.concrete_fields if not field.primary_key)


def _values(message: Message, fields: tuple[models.Field, ...]) -> list[Any]:
    """The values the ORM's save would write for these fields of an unsaved message (defaults, `auto_now_add`)."""
    return [field.get_db_prep_save(field.pre_save(message, True), connection) for field in fields]


def _saved(message: Message, pk: int) -> None:
    message.pk = pk
    message._state.adding, message._state.db = False, connection.alias


@functools.cache
def _store_routed_sql(vendor: str) -> tuple[str, tuple[models.Field, ...]]:
    """The statement of `_store_routed`, and the message fields whose values it takes, in order."""
    quote, fields = connection.ops.quote_name, _fields()
    computed = {"conversation_id": "owner.id", "for_person": "owner.owner <> %s"}
    columns = ", ".join(quote(field.column) for field in fields)
    values = ", ".join(computed.get(field.attname, "%s") for field in fields)
    return (
        f"WITH owner AS (SELECT id, owner, operator_id FROM {quote(Conversation._meta.db_table)}"
        " WHERE id = %s FOR UPDATE),"
        f" stored AS (INSERT INTO {quote(Message._meta.db_table)} ({columns}) SELECT {values} FROM owner RETURNING id)"
        " SELECT owner.owner, owner.operator_id, stored.id FROM owner, stored",
        tuple(field for field in fields if field.attname != "conversation_id"),
    )


def _store_routed(message: Message) -> Route:
    """INSERT the (unsaved) customer message, routed by its conversation's owner, read under a row lock, in one
    statement and one round trip: the lock and the row are one statement's, so nothing changes the owner between
    the two. Same values as the ORM's save; written in SQL because this is every message's statement, and the
    ORM's BEGIN, SELECT ... FOR UPDATE, INSERT and COMMIT were four round trips and most of the web process's
    database CPU (see the serving section of BENCHMARKS.md). Raises IntegrityError for a client id already stored.
    Embedded mode's SQLite (one writer at a time, no FOR UPDATE, no INSERT in a CTE) takes the ORM's way."""
    if connection.vendor != "postgresql":
        return _store_routed_orm(message)
    sql, fields = _store_routed_sql(connection.vendor)
    message.for_person = False  # a placeholder: the statement computes it from the owner
    params = [message.conversation_id, *_values(message, fields)]
    params[1 + fields.index(Message._meta.get_field("for_person"))] = Conversation.Owner.BOT
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        raise Conversation.DoesNotExist(f"conversation {message.conversation_id} not found")
    route = Route(owner=row[0], operator_id=row[1])
    _saved(message, row[2])
    message.for_person = route.person
    return route


def _store_routed_orm(message: Message) -> Route:
    with transaction.atomic():
        owner, operator_id = (
            Conversation.objects.select_for_update()
            .filter(pk=message.conversation_id)
            .values_list("owner", "operator_id")
            .get()
        )
        route = Route(owner=owner, operator_id=operator_id)
        message.for_person = route.person
        message.save(force_insert=True)
    return route


@functools.cache
def _insert_sql(vendor: str) -> str:
    quote, fields = connection.ops.quote_name, _fields()
    columns, values = ", ".join(quote(field.column) for field in fields), ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {quote(Message._meta.db_table)} ({columns}) VALUES ({values}) RETURNING id"


def message_insert(message: Message) -> Message:
    """`message.save()` of a new message as one INSERT: the same row, without the ORM's compilation of the
    statement (most of the worker's CPU for the answer's INSERT; Message has no save signals). Raises IntegrityError
    as save would."""
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(connection.vendor), _values(message, _fields()))
        _saved(message, cursor.fetchone()[0])
    return message


def answer_enqueue(message_id: int) -> None:
    """Have a stored customer message answered: queued for a worker by task name, so that the web process never
    imports the model. Embedded mode has no worker on the inference queue and answers here, in-process: the one
    place where a web process loads the model."""
    if settings.CHATBOT_INLINE_INFERENCE:
        from chatbot.conversations.tasks import answer_message_task

        answer_message_task.apply(args=[message_id])
    else:
        celery_app.send_task(ANSWER_TASK, args=[message_id])


def suggestion_offered(*, conversation: Conversation, pair_id: int) -> QAPair | None:
    """The active pair a customer clicked, when the conversation's last bot message offered it; else None
    (the text is answered by the model): a frame cannot pick an arbitrary pair as its answer."""
    offered = (
        Message.objects.filter(conversation=conversation, sender=Message.Sender.BOT)
        .order_by("-created_at", "-id")
        .values_list("suggestions", flat=True)
        .first()
    )
    if not any(isinstance(item, dict) and item.get("id") == pair_id for item in offered or []):
        return None
    # a pair merged into another since it was offered: the one it was merged into
    return QAPair.objects.filter(Q(pk=pair_id) | Q(merged_from__pk=pair_id), is_active=True).first()


def messages_unanswered(*, older_than: float, newer_than: float, limit: int) -> list[int]:
    """Customer messages stored between `newer_than` and `older_than` seconds ago that have no answer yet,
    newest first (whose customer is most likely still waiting): their answer task was lost (see
    chatbot.celery.RecoverySweep) or is still queued."""
    now = timezone.now()
    return list(
        Message.objects.filter(
            sender=Message.Sender.CUSTOMER,
            for_person=False,
            reply__isnull=True,
            created_at__lt=now - timedelta(seconds=older_than),
            created_at__gte=now - timedelta(seconds=newer_than),
        )
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)[:limit]
    )


def answer_for(message: Message) -> AnswerFrame | None:
    """The `answer` frame of a customer message that has been answered, else None."""
    bot = Message.objects.filter(reply_to=message).select_related("reply_to").first()
    return answer_payload(bot) if bot else None


def conversations_purge(*, days: int) -> int:
    """Delete conversations (with their messages) not seen for `days` days; returns how many."""
    if days <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    by_model = conversations_erase(conversations=Conversation.objects.filter(last_seen_at__lt=cutoff))
    return by_model.get(Conversation._meta.label, 0)


def conversation_delete(*, token: str = "", conversation_id: int | None = None) -> int:
    """Delete one customer's conversation and everything in it (by token or id); returns messages deleted."""
    if token:
        conversation = Conversation.objects.filter(token=token).first()
    else:
        conversation = None if conversation_id is None else Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        return -1
    by_model = conversations_erase(conversations=Conversation.objects.filter(pk=conversation.pk))
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
    if updated and not helpful:  # a thumbs down sends the message to the review queue
        review_queue_refresh()
    return bool(updated)
