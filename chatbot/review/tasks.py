import logging

from celery import shared_task
from django.db import close_old_connections

from chatbot.review.queue import review_queue_sync
from chatbot.review.services import REFRESH_TASK

logger = logging.getLogger(__name__)


@shared_task(name=REFRESH_TASK, ignore_result=True)
def review_queue_sync_task() -> None:
    """Requested (debounced) by new answers, feedback, finished trainings and the review page itself."""
    close_old_connections()
    review_queue_sync()
