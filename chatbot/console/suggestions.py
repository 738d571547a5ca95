"""Operators' answers teach the bot, through review: each reply becomes a suggested pair (the customer's question,
the operator's words) that an operator accepts as a new Q&A pair, attaches to an existing pair, or dismisses."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from chatbot.console.models import SuggestedPair
from chatbot.conversations.models import Message
from chatbot.knowledge.models import AlternateQuestion, QAPair
from chatbot.knowledge.text import detect_language

QUESTION_LIMIT = 500


def suggestion_from_reply(*, operator_message_id: int) -> SuggestedPair | None:
    """The customer messages since the operator last spoke form the question; None when there are none."""
    answer = Message.objects.get(pk=operator_message_id, sender=Message.Sender.OPERATOR)
    previous = (
        Message.objects.filter(conversation_id=answer.conversation_id, sender=Message.Sender.OPERATOR, id__lt=answer.pk)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    ) or 0
    asked = list(
        Message.objects.filter(
            conversation_id=answer.conversation_id, sender=Message.Sender.CUSTOMER, id__gt=previous, id__lt=answer.pk
        ).order_by("id")
    )
    if not asked:
        return None
    question = " ".join(" ".join(m.text for m in asked).split())[:QUESTION_LIMIT]
    suggestion, _ = SuggestedPair.objects.get_or_create(
        answer_message=answer,
        defaults={
            "question_message": asked[-1],
            "question": question,
            "answer": answer.text,
            "language": detect_language(question),
        },
    )
    return suggestion


def _decide(items: list[SuggestedPair], status: str, user: Any, pair: QAPair | None) -> int:
    return SuggestedPair.objects.filter(pk__in=[s.pk for s in items]).update(
        status=status, pair=pair, reviewed_by=user, reviewed_at=timezone.now()
    )


@transaction.atomic
def suggestion_accept(
    *, items: list[SuggestedPair], question: str, answer: str, language: str, category: str, user: Any
) -> QAPair:
    """A new pair (as edited by the reviewer); the other questions of the group become its alternates."""
    pair = QAPair.objects.create(
        question=question, answer=answer, language=language, category=category, updated_by=user
    )
    _alternates(items, pair)
    _decide(items, SuggestedPair.Status.ACCEPTED, user, pair)
    return pair


@transaction.atomic
def suggestion_attach(*, items: list[SuggestedPair], pair: QAPair, user: Any) -> int:
    """The customers' questions become alternate questions of an existing pair (source: log)."""
    _alternates(items, pair)
    return _decide(items, SuggestedPair.Status.ATTACHED, user, pair)


def suggestion_dismiss(*, items: list[SuggestedPair], user: Any) -> int:
    return _decide(items, SuggestedPair.Status.DISMISSED, user, None)


def _alternates(items: list[SuggestedPair], pair: QAPair) -> None:
    for item in items:
        if item.question.casefold() != pair.question.casefold():
            AlternateQuestion.objects.get_or_create(
                pair=pair, text=item.question, defaults={"source": AlternateQuestion.Source.LOG}
            )
