"""Training runs and model versions: build the data, train, store, activate, roll back."""

import logging
import time
import traceback
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chatbot.knowledge.models import AlternateQuestion, OutOfScopeExample, QAPair
from chatbot.registry.artifacts import artifact_store
from chatbot.registry.models import ModelVersion, TrainingRun
from training import AnswerModel, ModelConfig

logger = logging.getLogger(__name__)

Example = tuple[str, str]
OUT_OF_SCOPE = "oos"


class TrainingError(Exception):
    pass


def training_examples() -> tuple[list[Example], dict[str, int]]:
    """Each active pair's question and alternate questions, labelled with the pair id, and the
    out-of-scope examples labelled `oos`."""
    pairs = list(QAPair.objects.filter(is_active=True).values_list("id", "question"))
    alternates = list(
        AlternateQuestion.objects.filter(pair__is_active=True).values_list("pair_id", "text", "source")
    )
    out_of_scope = list(OutOfScopeExample.objects.values_list("text", flat=True))
    examples = [(question, str(pair_id)) for pair_id, question in pairs]
    examples += [(text, str(pair_id)) for pair_id, text, _ in alternates]
    examples += [(text, OUT_OF_SCOPE) for text in out_of_scope]
    counts = {
        "pairs": len(pairs),
        "alternates": sum(1 for *_, source in alternates if source == AlternateQuestion.Source.CURATED),
        "reviewed_messages": sum(1 for *_, source in alternates if source == AlternateQuestion.Source.LOG),
        "out_of_scope": len(out_of_scope),
        "examples": len(examples),
    }
    return examples, counts


def model_config() -> ModelConfig:
    config = ModelConfig()
    if settings.CHATBOT_ENCODER:
        config.encoder = settings.CHATBOT_ENCODER
    return config


def training_run_create(*, trigger: str, user: Any = None) -> TrainingRun:
    """A queued run, enqueued on the training queue after commit; an already waiting run is reused."""
    from chatbot.registry.tasks import train_model_task

    with transaction.atomic():
        waiting = TrainingRun.objects.select_for_update().filter(status=TrainingRun.Status.QUEUED).first()
        if waiting:
            return waiting
        run = TrainingRun.objects.create(trigger=trigger, requested_by=user)
        transaction.on_commit(lambda: train_model_task.delay(run.pk))
    return run


def _progress(run: TrainingRun, event: dict[str, Any]) -> None:
    run.history.append({key: value for key, value in event.items() if value is not None})
    run.progress = min(0.95, event["epoch"] / max(1, event["epochs"]))
    run.save(update_fields=["history", "progress"])


def training_run_execute(run: TrainingRun) -> TrainingRun:
    """Train a model on the current knowledge base and put it in service. Failures leave the active model."""
    run.status, run.started_at, run.error = TrainingRun.Status.RUNNING, timezone.now(), ""
    run.save(update_fields=["status", "started_at", "error"])
    try:
        examples, counts = training_examples()
        run.counts = counts
        if counts["pairs"] < 2:
            raise TrainingError("the knowledge base needs at least two active Q&A pairs to train")
        config = model_config()
        run.encoder = config.encoder
        run.save(update_fields=["counts", "encoder"])
        started = time.monotonic()
        model = AnswerModel.fit(examples, config, on_epoch=lambda event: _progress(run, event))
        seconds = time.monotonic() - started
        version = model_version_register(model, metrics={**model.info, "train_seconds": round(seconds, 2)})
        model_version_activate(version)
    except Exception as error:
        logger.exception("training run %s failed", run.pk)
        run.status, run.finished_at = TrainingRun.Status.FAILED, timezone.now()
        run.error = f"{error}\n\n{traceback.format_exc(limit=5)}" if not isinstance(error, TrainingError) else str(error)
        run.save(update_fields=["status", "finished_at", "error", "counts", "encoder"])
        return run
    run.status, run.finished_at, run.progress = TrainingRun.Status.SUCCEEDED, timezone.now(), 1.0
    run.model_version, run.metrics = version, version.metrics
    run.save(update_fields=["status", "finished_at", "progress", "model_version", "metrics"])
    return run


def model_version_register(model: AnswerModel, *, metrics: dict[str, Any]) -> ModelVersion:
    parent = ModelVersion.objects.filter(is_active=True).first()
    name = f"{timezone.now():%Y%m%d-%H%M%S}-{model.config.encoder}"
    stored, checksum = artifact_store(model, name=name)
    return ModelVersion.objects.create(
        parent=parent,
        encoder=model.config.encoder,
        artifact=stored,
        checksum=checksum,
        threshold=model.threshold,
        margin=model.margin,
        n_labels=len(model.labels),
        n_examples=int(model.info.get("n_examples", 0)),
        metrics=_jsonable(metrics),
    )


def model_version_activate(version: ModelVersion) -> None:
    """Make `version` the one in service, atomically; workers pick it up on their next message."""
    with transaction.atomic():
        previous = list(ModelVersion.objects.select_for_update().filter(is_active=True).exclude(pk=version.pk))
        for old in previous:
            old.is_active, old.status = False, ModelVersion.Status.RETIRED
            old.save(update_fields=["is_active", "status"])
        version.is_active, version.status, version.activated_at = True, ModelVersion.Status.ACTIVE, timezone.now()
        version.save(update_fields=["is_active", "status", "activated_at"])
    logger.info("model v%s activated", version.pk)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, float) or isinstance(value, (int, str, bool)) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
