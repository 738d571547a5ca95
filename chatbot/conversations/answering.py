"""The worker's side of a message: answer it with the model in service and store the reply.

Only worker processes import this module (through `tasks`): it loads the model, and PyTorch with it.
"""

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from chatbot.connections import single_statement
from chatbot.console.services import handoff_after_reply, handoff_reason
from chatbot.conversations.models import Message
from chatbot.conversations.replies import Reply, reply_compose, reply_for_pair, reply_language
from chatbot.conversations.services import message_insert
from chatbot.knowledge.models import QAPair
from chatbot.knowledge.selectors import pairs_view
from chatbot.metrics import metrics_answer
from chatbot.registry.engine import Loaded, engine_get

logger = logging.getLogger(__name__)


def message_answer(message_id: int) -> Message | None:
    """Answer a stored customer message with the active model; idempotent (returns the existing answer).

    Two queries besides the model's: the message with the id of its answer if any, and the insert (a not-sure
    answer also reads the conversation's streak first).
    The one-to-one `reply_to` refuses a second answer to the same message (a redelivered task racing
    the first), and the first one is returned.
    """
    message, reply_id = _message_to_answer(message_id)
    if message is None or message.sender != Message.Sender.CUSTOMER:
        return None
    if reply_id is not None:
        return Message.objects.select_related("reply_to").get(pk=reply_id)
    started = time.perf_counter()
    loaded = None if settings.CHATBOT_NOOP_MODEL else _engine.get()
    reply = _reply(message, loaded)
    latency_ms = (time.perf_counter() - started) * 1000
    # A reply is one INSERT; one that asks for a person (a hand-off pair, a not-sure streak) begins the hand-off in
    # one transaction with it, and the reply then says honestly whether anybody can come.
    reason = handoff_reason(conversation_id=message.conversation_id, outcome=reply.outcome)
    try:
        with transaction.atomic() if reason else single_statement():
            text = reply.text
            if reason:
                text = handoff_after_reply(conversation_id=message.conversation_id, reason=reason, text=text)
            bot = message_insert(
                Message(
                    conversation_id=message.conversation_id,
                    sender=Message.Sender.BOT,
                    reply_to=message,
                    text=text,
                    pair=reply.pair,
                    outcome=reply.outcome,
                    confidence=reply.confidence,
                    candidates=reply.candidates,
                    suggestions=reply.suggestions,
                    model_version_id=loaded.version_id if loaded else None,
                    latency_ms=latency_ms,
                )
            )
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


_SELECT = (
    "SELECT m.id, m.conversation_id, m.sender, m.client_id, m.text, m.suggested_pair_id, r.id"
    " FROM {table} m LEFT JOIN {table} r ON r.reply_to_id = m.id WHERE m.id = %s"
)


def _message_to_answer(message_id: int) -> tuple[Message | None, int | None]:
    """The customer message (the fields answering reads) and the id of its answer, in one round trip.

    Written in SQL because this is every message's query: the ORM's compilation of the same SELECT cost
    several times the database's work on it (see the serving section of BENCHMARKS.md)."""
    with connection.cursor() as cursor:
        cursor.execute(_SELECT.format(table=Message._meta.db_table), [message_id])
        row = cursor.fetchone()
    if row is None:
        return None, None
    pk, conversation_id, sender, client_id, text, suggested_pair_id, reply_id = row
    message = Message(
        pk=pk,
        conversation_id=conversation_id,
        sender=sender,
        client_id=client_id,
        text=text,
        suggested_pair_id=suggested_pair_id,
    )
    message._state.adding, message._state.db = False, connection.alias
    return message, reply_id


@dataclass
class _EngineCheck:
    """The engine's model, asking it which version is active at most every CHATBOT_MODEL_CHECK_SECONDS:
    that question is one query, and a worker answers hundreds of messages a second."""

    checked_at: float = float("-inf")
    loaded: Loaded | None = None

    def get(self) -> Loaded | None:
        now = time.monotonic()
        if self.loaded is None or now - self.checked_at >= settings.CHATBOT_MODEL_CHECK_SECONDS:
            self.checked_at, self.loaded = now, engine_get()
        return self.loaded


_engine = _EngineCheck()


def _reply(message: Message, loaded: Loaded | None) -> Reply:
    if message.suggested_pair_id is not None:  # a clicked suggestion: an active pair is in the pairs cache
        view = pairs_view()
        pk = view.resolve(message.suggested_pair_id)
        suggested = view.pairs.get(pk) or QAPair.objects.filter(pk=pk).first()
        if suggested is not None:
            return reply_for_pair(suggested, 1.0, [], language=reply_language(message.text), view=view)
    if settings.CHATBOT_NOOP_MODEL:
        return reply_for_pair(_noop_pair(), 1.0, [], language=reply_language(message.text))
    if loaded is None:
        return reply_compose(text=message.text, ranked=None, decide=None)
    ranked = loaded.model.predict([message.text], k=20)[0]
    return reply_compose(text=message.text, ranked=ranked, decide=loaded.model.decide)


_noop: list[QAPair] = []


def _noop_pair() -> QAPair:
    """The benchmark's floor (CHATBOT_NOOP_MODEL): always the first active pair, read once per process."""
    if not _noop:
        pair = QAPair.objects.filter(is_active=True).prefetch_related("translations").order_by("pk").first()
        if pair is None:
            raise LookupError("CHATBOT_NOOP_MODEL needs at least one active Q&A pair")
        _noop.append(pair)
    return _noop[0]
