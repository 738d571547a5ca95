"""What the console shows: the queue, a conversation's transcript, tickets, canned answers."""

from typing import Any

from django.conf import settings
from django.db.models import Case, F, Q, Value, When, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from chatbot.console.models import Handoff, Note, Ticket
from chatbot.conversations.models import Conversation, Message
from chatbot.knowledge.models import PairAnswer, QAPair
from chatbot.knowledge.text import answer_plain, detect_language

QUEUE_PREVIEW = 3  # last messages shown with a waiting conversation
TRANSCRIPT_LIMIT = 200
CANNED_LIMIT = 8


def operator_name(user: Any) -> str:
    """What customers see of an operator: the first name, else the user name."""
    if user is None:
        return ""
    return (user.first_name or user.username)[:60]


def message_item(message: Message) -> dict[str, Any]:
    item = {
        "id": message.pk,
        "role": {"customer": "customer", "bot": "bot", "operator": "agent"}[message.sender],
        "text": answer_plain(message.text) if message.sender == Message.Sender.BOT else message.text,
        "at": message.created_at.isoformat(),
    }
    if message.sender == Message.Sender.BOT:
        item.update(confidence=message.confidence, outcome=message.outcome, helpful=message.helpful)
    if message.sender == Message.Sender.OPERATOR:
        item["agent"] = operator_name(message.operator)
    return item


def _previews(conversation_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The last QUEUE_PREVIEW messages of each conversation, in one query."""
    rows = (
        Message.objects.filter(conversation_id__in=conversation_ids)
        .annotate(rank=Window(RowNumber(), partition_by=F("conversation_id"), order_by=[F("id").desc()]))
        .filter(rank__lte=QUEUE_PREVIEW)
        .select_related("operator")
        .order_by("conversation_id", "id")
    )
    previews: dict[int, list[dict[str, Any]]] = {cid: [] for cid in conversation_ids}
    for message in rows:
        previews[message.conversation_id].append(message_item(message))
    return previews


def queue_list() -> list[dict[str, Any]]:
    """Conversations waiting for a person, oldest request first."""
    waiting = list(
        Handoff.objects.filter(outcome=Handoff.Outcome.WAITING, conversation__owner=Conversation.Owner.QUEUE)
        .select_related("conversation")
        .order_by("requested_at", "id")
    )
    previews = _previews([h.conversation_id for h in waiting])
    now = timezone.now()
    return [
        {
            "conversation": h.conversation_id,
            "position": position,
            "language": h.conversation.language,
            "reason": h.reason,
            "requested_at": h.requested_at.isoformat(),
            "waited_s": round((now - h.requested_at).total_seconds(), 1),
            "last": previews[h.conversation_id],
        }
        for position, h in enumerate(waiting, start=1)
    ]


def conversation_payload(conversation: Conversation) -> dict[str, Any]:
    """Everything an operator sees of one conversation: transcript with the bot's confidence, notes, state."""
    messages = list(conversation.messages.select_related("operator").order_by("-created_at", "-id")[:TRANSCRIPT_LIMIT])[
        ::-1
    ]
    handoff = conversation.handoffs.order_by("-requested_at", "-id").first()
    notes = Note.objects.filter(conversation=conversation).select_related("author")
    return {
        "conversation": conversation.pk,
        "language": conversation.language,
        "owner": conversation.owner,
        "operator": conversation.operator_id,
        "agent": operator_name(conversation.operator),
        "reason": handoff.reason if handoff else "",
        "requested_at": handoff.requested_at.isoformat() if handoff else None,
        "transcript": [message_item(m) for m in messages],
        "notes": [note_item(n) for n in notes],
    }


def note_item(note: Note) -> dict[str, Any]:
    return {"id": note.pk, "text": note.text, "author": operator_name(note.author), "at": note.created_at.isoformat()}


def operator_conversations(*, user_id: int) -> list[dict[str, Any]]:
    held = Conversation.objects.filter(owner=Conversation.Owner.OPERATOR, operator_id=user_id).select_related(
        "operator"
    )
    return [conversation_payload(c) for c in held]


def ticket_item(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.pk,
        "conversation": ticket.conversation_id,
        "contact": ticket.contact,
        "text": ticket.text,
        "language": ticket.language,
        "status": ticket.status,
        "at": ticket.created_at.isoformat(),
    }


def tickets_list(*, limit: int = 100) -> list[dict[str, Any]]:
    return [ticket_item(t) for t in Ticket.objects.order_by("status", "-created_at")[:limit]]


def canned_search(*, query: str) -> list[dict[str, Any]]:
    """Answers of active Q&A pairs whose question, alternates or answers contain the words, one result per
    answer (a pair answered in English and Chinese gives two), those in the language of the words first."""
    words = query.split()[:8]
    if not words:
        return []
    found = QAPair.objects.filter(is_active=True, handoff=False)
    for word in words:
        found = found.filter(
            Q(question__icontains=word) | Q(translations__text__icontains=word) | Q(alternates__text__icontains=word)
        )
    first = detect_language(query)  # answers in the language of the words searched first
    answers = (
        PairAnswer.objects.filter(pair__in=found.values("pk"))
        .select_related("pair")
        .annotate(other=Case(When(language=first, then=Value(0)), default=Value(1)))
        .order_by("other", "language", "pair__question")[:CANNED_LIMIT]
    )
    return [
        {"id": a.pair_id, "question": a.pair.question, "answer": answer_plain(a.text), "language": a.language}
        for a in answers
    ]


def max_text() -> int:
    return settings.CHATBOT_MAX_MESSAGE_CHARS
