"""Training runs and model versions as the web process and the workers share them: queue a run, put a version
in service, move its operating point. Training itself is the training worker's (`pipeline`)."""

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from chatbot.celery import app as celery_app
from chatbot.registry.lock import serialise_in_transaction, training_lock
from chatbot.registry.models import ModelVersion, TrainingRun

logger = logging.getLogger(__name__)

TRAIN_TASK = "chatbot.registry.tasks.train_model_task"
QUEUED_EXPIRY = timedelta(hours=6)
NEVER_PICKED_UP = "No training worker picked this run up within 6 hours (is one serving the training queue?)."
STALE_REASON = (
    "The training worker stopped before the run finished (killed, out of memory or crashed). "
    "The active model was not changed."
)


def training_run_create(*, trigger: str, user: Any = None) -> TrainingRun:
    """A queued run, enqueued on the training queue after commit; an already waiting run is reused."""
    with transaction.atomic():
        serialise_in_transaction()
        queued = TrainingRun.objects.select_for_update().filter(status=TrainingRun.Status.QUEUED)
        queued.filter(created_at__lt=timezone.now() - QUEUED_EXPIRY).update(
            status=TrainingRun.Status.FAILED, finished_at=timezone.now(), error=NEVER_PICKED_UP
        )
        waiting = queued.first()
        if waiting:
            return waiting
        run = TrainingRun.objects.create(trigger=trigger, requested_by=user)
        transaction.on_commit(lambda: celery_app.send_task(TRAIN_TASK, args=[run.pk]))
    return run


def training_runs_fail_stale(*, keep: int | None = None) -> int:
    """Runs marked running while nobody holds the training lock: their worker died. Call with the lock held."""
    stale = TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING)
    if keep is not None:
        stale = stale.exclude(pk=keep)
    count = stale.update(status=TrainingRun.Status.FAILED, finished_at=timezone.now(), error=STALE_REASON)
    if count:
        logger.warning("%s stale training run(s) marked failed", count)
    return count


def training_runs_reconcile() -> int:
    """Mark runs whose worker died failed, unless a training is in progress right now."""
    with training_lock() as held:
        return training_runs_fail_stale() if held else 0


def model_version_activate(version: ModelVersion) -> None:
    """Make `version` the one in service, atomically; workers pick it up on their next message."""
    if version.pruned_at is not None:
        raise ValueError(f"{version} cannot serve: its artifact was deleted (CHATBOT_KEEP_VERSIONS)")
    with transaction.atomic():
        previous = list(ModelVersion.objects.select_for_update().filter(is_active=True).exclude(pk=version.pk))
        for old in previous:
            old.is_active, old.status = False, ModelVersion.Status.RETIRED
            old.save(update_fields=["is_active", "status"])
        version.is_active, version.status, version.activated_at = True, ModelVersion.Status.ACTIVE, timezone.now()
        version.save(update_fields=["is_active", "status", "activated_at"])
    logger.info("model v%s activated", version.pk)


def model_version_set_threshold(version: ModelVersion, *, threshold: float) -> None:
    """Move the operating point: `threshold` for every language (the per-language rules chosen at training are
    dropped; the margin stays); workers apply it on their next message, without reloading."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError("the threshold is a probability, between 0 and 1")
    ModelVersion.objects.filter(pk=version.pk).update(threshold=threshold, language_rules={})
    version.threshold, version.language_rules = threshold, {}
    logger.info("model v%s threshold set to %.3f for every language", version.pk, threshold)
