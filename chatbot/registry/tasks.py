import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db import connection

from chatbot.registry.models import TrainingRun
from chatbot.registry.pipeline import training_run_execute
from chatbot.registry.services import TRAIN_TASK, training_run_create, training_runs_reconcile
from chatbot.review.services import review_queue_refresh

logger = logging.getLogger(__name__)
LOCKED_RETRY_SECONDS = 15


@shared_task(name=TRAIN_TASK, bind=True, acks_late=True, reject_on_worker_lost=False, max_retries=None)
def train_model_task(self: Any, run_id: int) -> str:
    run = TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED).first()
    if run is None:
        return "not queued"
    with _training_threads():
        run = training_run_execute(run)
    if run.status == TrainingRun.Status.QUEUED:  # another run holds the lock: this one goes next
        raise self.retry(countdown=LOCKED_RETRY_SECONDS)
    review_queue_refresh()  # a new model groups and ranks the queue anew
    return run.status


@contextmanager
def _training_threads() -> Iterator[None]:
    """Inference processes run torch on one thread each; a training uses the cores it is given."""
    before = torch.get_num_threads()
    torch.set_num_threads(settings.CHATBOT_TRAIN_THREADS or os.cpu_count() or 1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@shared_task
def scheduled_retrain_task() -> int:
    return training_run_create(trigger=TrainingRun.Trigger.SCHEDULE).pk


@worker_ready.connect
def fail_stale_runs(**kwargs: Any) -> None:
    """A worker that starts after a killed one: runs left 'running' without the lock are marked failed."""
    try:
        training_runs_reconcile()
    except Exception:
        logger.exception("stale training runs not checked")
    finally:
        connection.close()  # the parent process does not keep a connection its pool children would share
