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
    return " ".join(item.message.text.split())[:TEXT_LIMIT]


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
    pair = QAPair.objects.create(
        question=question, answer=answer, language=language, category=category, updated_by=user
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
    """Reviewed, and teaches nothing."""
    return _decide(items, ReviewItem.Status.IGNORED, user)
