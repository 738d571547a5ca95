"""The review queue as operators work it: the decisions on logged messages, and asking a worker to bring the queue
up to date (`queue` does that with the model; the admin page only reads what it stored)."""

import logging
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chatbot.celery import app as celery_app
from chatbot.conversations.models import Message
from chatbot.knowledge.models import AlternateQuestion, OutOfScopeExample, QAPair
from chatbot.knowledge.text import detect_language
from chatbot.redis_client import redis_client, redis_key
from chatbot.review.models import ReviewItem

logger = logging.getLogger(__name__)
REFRESH_TASK = "chatbot.review.tasks.review_queue_sync_task"
TEXT_LIMIT = 500  # a question's length in the knowledge base
_refresh_due: dict[str, float] = {}


def review_queue_refresh() -> None:
    """Have a worker bring the queue up to date within CHATBOT_REVIEW_REFRESH_SECONDS: one task for each such
    period however many messages, feedbacks, trainings and page views ask. Best effort: the next request, or
    the next period's, catches up."""
    delay = settings.CHATBOT_REVIEW_REFRESH_SECONDS
    try:
        if _refresh_claim(delay):
            celery_app.send_task(REFRESH_TASK, countdown=delay)
    except Exception:
        logger.warning("review queue refresh not requested (Redis or the broker unavailable)", exc_info=True)


def _refresh_claim(delay: float) -> bool:
    """True for the first request of a period: across processes in Redis, within the process in embedded mode."""
    if settings.REDIS_URL:
        return bool(redis_client().set(redis_key("review-refresh"), 1, nx=True, px=max(1, int(delay * 1000))))
    now = time.monotonic()
    if _refresh_due.get("due", float("-inf")) > now:
        return False
    _refresh_due["due"] = now + delay
    return True


def _decide(items: Iterable[ReviewItem], status: str, user: Any, pair: QAPair | None = None) -> int:
    ids = [item.pk for item in items]
    return ReviewItem.objects.filter(pk__in=ids).update(
        status=status, pair=pair, reviewed_by=user, reviewed_at=timezone.now()
    )


def _question(item: ReviewItem) -> str:
    return " ".join(item.text.split())[:TEXT_LIMIT]


def review_suggestion_add(*, operator_message_id: int) -> ReviewItem | None:
    """An operator's reply becomes a suggested pair: the customer's messages since the operator last spoke, with
    the reply, queued for review on the last of those messages (grouped with similar questions by the next sync).

    None when the reply answers no customer message, or when that message was already decided on in review."""
    answer = Message.objects.get(pk=operator_message_id, sender=Message.Sender.OPERATOR)
    asked = _answered_by(answer)
    if not asked:
        return None
    question = " ".join(" ".join(m.text for m in asked).split())[:TEXT_LIMIT]
    fields = {
        "kind": ReviewItem.Kind.SUGGESTED,
        "question": question,
        "operator_answer": answer,
        "needs_review": True,
        "status": ReviewItem.Status.PENDING,
    }
    with transaction.atomic():
        # The question may already be an item (the bot answered it before the hand-off): a person's answer to
        # it is the better label, unless a reviewer has already decided.
        item, created = ReviewItem.objects.select_for_update().get_or_create(message=asked[-1], defaults=fields)
        if not created:
            if item.status != ReviewItem.Status.PENDING:
                return None
            for name, value in fields.items():
                setattr(item, name, value)
            item.save(update_fields=list(fields))
    transaction.on_commit(review_queue_refresh)
    return item


def _answered_by(answer: Message) -> list[Message]:
    previous = (
        Message.objects.filter(conversation_id=answer.conversation_id, sender=Message.Sender.OPERATOR, id__lt=answer.pk)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    ) or 0
    return list(
        Message.objects.filter(
            conversation_id=answer.conversation_id, sender=Message.Sender.CUSTOMER, id__gt=previous, id__lt=answer.pk
        ).order_by("id")
    )


@transaction.atomic
def review_attach(*, items: list[ReviewItem], pair: QAPair, user: Any) -> int:
    """Each message becomes an alternate question of `pair` (source: log), learned at the next training."""
    for item in items:
        text = _question(item)
        if text.casefold() != pair.question.casefold():
            AlternateQuestion.objects.get_or_create(
                pair=pair, text=text, defaults={"source": AlternateQuestion.Source.LOG, "source_message": item.message}
            )
    return _decide(items, ReviewItem.Status.ATTACHED, user, pair)


@transaction.atomic
def review_new_pair(
    *, items: list[ReviewItem], question: str, answer: str, language: str, category: str, user: Any
) -> QAPair:
    """A new pair answering these messages; they become its alternate questions (source: log)."""
    pair = QAPair.objects.create_topic(
        question=question, answers={language: answer}, category=category, updated_by=user
    )
    review_attach(items=items, pair=pair, user=user)
    _decide(items, ReviewItem.Status.NEW_PAIR, user, pair)
    return pair


@transaction.atomic
def review_out_of_scope(*, items: list[ReviewItem], user: Any) -> int:
    """The messages become out-of-scope examples (source: log): the bot learns to say it is not sure."""
    for item in items:
        text = _question(item)
        OutOfScopeExample.objects.get_or_create(
            text=text,
            defaults={
                "language": detect_language(text),
                "source": OutOfScopeExample.Source.LOG,
                "source_message": item.message,
            },
        )
    return _decide(items, ReviewItem.Status.OUT_OF_SCOPE, user)


def review_ignore(*, items: list[ReviewItem], user: Any) -> int:
    """Reviewed (or a suggested pair dismissed), and teaches nothing."""
    return _decide(items, ReviewItem.Status.IGNORED, user)
