"""A training run's life as the training worker lives it: build the data, train, calibrate, gate, store, activate.

Only the training worker (and the commands that train in their own process) import this module: it runs the model.
"""

import logging
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from chatbot.knowledge.selectors import pairs_view, ranked_redirected
from chatbot.registry.artifacts import ArtifactError, artifact_load, artifact_store, transformer_path_check
from chatbot.registry.dataset import Dataset, dataset_build
from chatbot.registry.engine import operating_point_apply, training_cache_configure
from chatbot.registry.gate import Scored, calibrate, gate_compare, oos_share, score_rows, tradeoff_curve
from chatbot.registry.lock import training_lock
from chatbot.registry.models import ModelVersion, TrainingRun
from chatbot.registry.services import model_version_activate, training_runs_fail_stale
from chatbot.retention import gate_disagreements_held
from training import AnswerModel, ModelConfig, auto
from training.calibration import language_rules_dict
from training.device import train_device
from training.rejection import Ranked, Rejection

logger = logging.getLogger(__name__)
training_cache_configure()


class TrainingError(Exception):
    pass


class Redirected:
    """The model in service as the gate should judge it after pairs were merged into one topic: it was trained
    when they were separate labels, so each merged-away label counts as the pair it now redirects to (their
    scores add up, as in the replies), and it is not scored wrong for naming the old pair."""

    def __init__(self, model: AnswerModel, redirects: dict[int, int]) -> None:
        self.model, self.config, self.redirects = model, model.config, redirects

    @property
    def rejection(self) -> Rejection:
        return self.model.rejection

    def predict(self, texts: list[str], k: int = 5) -> list[Ranked]:
        if not self.redirects:
            return self.model.predict(texts, k=k)
        rows = self.model.predict(texts, k=k + len(self.redirects))
        return [ranked_redirected(row, self.redirects)[:k] for row in rows]


def model_config() -> ModelConfig:
    """ModelConfig's defaults, then CHATBOT_MODEL_OPTIONS, CHATBOT_ENCODER and CHATBOT_TRAIN_EPOCHS.

    The trainer expects the out-of-scope share of traffic that the gate assumes (CHATBOT_GATE_OOS_SHARE)
    unless the options say otherwise.
    """
    defaults = {**ModelConfig().to_dict(), "oos_prior": settings.CHATBOT_GATE_OOS_SHARE}
    options = {**defaults, **settings.CHATBOT_MODEL_OPTIONS}
    unknown = sorted(set(options) - set(ModelConfig().to_dict()))
    if unknown:
        raise ImproperlyConfigured(f"CHATBOT_MODEL_OPTIONS: no such model option {', '.join(unknown)}")
    try:
        transformer_path_check(options["transformer_path"])  # a worker refuses to load any other
    except ValueError as error:
        raise ImproperlyConfigured(f"CHATBOT_MODEL_OPTIONS: {error}") from None
    config = ModelConfig.from_dict(options)
    if settings.CHATBOT_ENCODER:
        config.encoder = settings.CHATBOT_ENCODER
    if settings.CHATBOT_TRAIN_EPOCHS:
        config.epochs = settings.CHATBOT_TRAIN_EPOCHS
    config.train_device = config.train_device or settings.CHATBOT_TRAIN_DEVICE
    return config


def training_run_execute(run: TrainingRun, *, quick: bool = False) -> TrainingRun:
    """Train a candidate, gate it against the active model and put it in service when it is not worse.

    The candidate is the automatic choice (training/auto.py) unless CHATBOT_ENCODER or CHATBOT_MODEL_OPTIONS
    fix the recipe; `quick`: only the `ngram` candidate (a first start: a working bot in seconds).
    Returns the run unchanged (still queued) when another run holds the training lock. Failures and
    rejections leave the active model in service.
    """
    with training_lock() as held:
        if not held:
            return run
        training_runs_fail_stale(keep=run.pk)
        claimed = TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.QUEUED).update(
            status=TrainingRun.Status.RUNNING, started_at=timezone.now(), error=""
        )
        run.refresh_from_db()
        if not claimed:
            return run
        with _captured_log(run):
            try:
                _train_and_gate(run, quick)
            except Exception as error:
                _fail(run, error)
    return run


def recipe_forced() -> str:
    """Why the settings fix the recipe ("" when the automatic choice is on)."""
    named = [name for name in ("CHATBOT_ENCODER", "CHATBOT_MODEL_OPTIONS") if getattr(settings, name)]
    return f"The recipe is fixed by {' and '.join(named)}." if named else ""


def _train_and_gate(run: TrainingRun, quick: bool = False) -> None:
    config, dataset = model_config(), dataset_build()
    forced = recipe_forced()
    mode = "forced" if forced else "quick" if quick else "auto"
    run.counts, run.encoder = dataset.counts, config.encoder if forced else mode
    run.fingerprint = dataset.fingerprint(config.to_dict() if forced else {**config.to_dict(), "choice": mode})
    run.save(update_fields=["counts", "encoder", "fingerprint"])
    logger.info("run %s: %s", run.pk, ", ".join(f"{key} {value}" for key, value in dataset.counts.items()))
    if run.trigger == TrainingRun.Trigger.SCHEDULE and _unchanged(run):
        logger.info("run %s: nothing changed since the last run; skipped", run.pk)
        _finish(run, TrainingRun.Status.SKIPPED)
        return
    if dataset.counts["pairs"] < 2:
        raise TrainingError(
            "The knowledge base needs at least two active Q&A pairs to train; the active model was kept."
        )
    started = time.monotonic()
    if forced:
        model = AnswerModel.fit(dataset.train, config, on_epoch=lambda event: _progress(run, event))
        scored = score_rows(model, dataset.holdout)  # once: calibration, trade-off curve and gate read the same rows
        run.candidates = [{**auto.forced(config, forced), "seconds": round(time.monotonic() - started, 1)}]
    else:
        model, scored = _choose(run, dataset, config, quick)
    seconds = time.monotonic() - started
    _calibrate(model, dataset, scored)
    model.meta["recipe"] = auto.describe(model.config)
    logger.info("run %s: trained in %.1f s, threshold %.3f margin %.3f", run.pk, seconds, model.threshold, model.margin)
    version = model_version_register(
        model,
        metrics={**model.info, "train_seconds": round(seconds, 2)},
        fingerprint=run.fingerprint,
        calibration=tradeoff_curve(model, dataset.holdout, scored=scored),
    )
    run.model_version, run.gate = version, gate_disagreements_held(_gate(model, dataset, scored))
    run.metrics = {**version.metrics, "held_out": run.gate.get("candidate", {})}
    if run.gate["passed"]:
        model_version_activate(version)
        logger.info("run %s: v%s passed the gate and is in service", run.pk, version.pk)
        _finish(run, TrainingRun.Status.SUCCEEDED)
    else:
        version.status = ModelVersion.Status.REJECTED
        version.save(update_fields=["status"])
        failed = [check["metric"] for check in run.gate["checks"] if not check["passed"]]
        run.error = f"Rejected by the gate: worse than the active model on {', '.join(failed)} beyond the margin."
        logger.info("run %s: v%s rejected (%s)", run.pk, version.pk, ", ".join(failed))
        _finish(run, TrainingRun.Status.REJECTED)


def _choose(run: TrainingRun, dataset: Dataset, config: ModelConfig, quick: bool) -> tuple[AnswerModel, Scored]:
    """The automatic choice on the gate's held-out rows, within CHATBOT_TRAIN_BUDGET_SECONDS."""
    outcome = auto.choose(
        dataset.train,
        dataset.holdout,
        config,
        budget_seconds=settings.CHATBOT_TRAIN_BUDGET_SECONDS,
        share=oos_share(),
        device=train_device(settings.CHATBOT_TRAIN_DEVICE),
        names=["ngram"] if quick else None,
        on_epoch=lambda event: _progress(run, event),
        max_answer_ms=settings.CHATBOT_MAX_ANSWER_MS or None,
    )
    chosen = next(c for c in outcome.candidates if c["chosen"])
    if quick:
        chosen["reason"] = "First start: the fast model first; a training run in the background tries the others."
    else:
        chosen["reason"] = outcome.reason
    run.candidates, run.encoder = outcome.candidates, outcome.chosen
    run.save(update_fields=["candidates", "encoder"])
    logger.info("run %s: %s (%s)", run.pk, chosen["reason"], outcome.plan.get("why", ""))
    assert outcome.model is not None and outcome.scored is not None
    return outcome.model, outcome.scored


def _calibrate(model: AnswerModel, dataset: Dataset, scored: Scored) -> None:
    """The out-of-scope operating point (threshold and top-2 margin, chosen together) on the held-out set, which
    the model never trained on; the trainer's own choice when the held-out set has no in-scope or no
    out-of-scope rows. Stored with the version; an operator can move the threshold."""
    model.meta["trainer_threshold"], model.meta["trainer_margin"] = model.threshold, model.margin
    rule = calibrate(model, dataset.holdout, scored)
    if rule is not None:
        model.rejection = rule
        model.meta["operating_point"] = "held-out set"
    else:
        model.meta["operating_point"] = "trainer (held-out set lacks in-scope or out-of-scope rows)"


def _unchanged(run: TrainingRun) -> bool:
    done = (TrainingRun.Status.SUCCEEDED, TrainingRun.Status.REJECTED, TrainingRun.Status.SKIPPED)
    last = TrainingRun.objects.filter(status__in=done).exclude(pk=run.pk).exclude(fingerprint="").first()
    return last is not None and last.fingerprint == run.fingerprint


def _gate(candidate: AnswerModel, dataset: Dataset, scored: Scored) -> dict[str, Any]:
    active = ModelVersion.objects.filter(is_active=True).first()
    if active is None:
        return {"passed": True, "note": "First model: nothing in service to compare with."}
    try:
        current = model_version_load(active)
    except ArtifactError as error:
        return {"passed": True, "active_version": active.pk, "note": f"The active model cannot be loaded ({error})."}
    result = gate_compare(
        candidate,
        Redirected(current, pairs_view().redirects),
        dataset.holdout,
        settings.CHATBOT_GATE_MARGIN,
        settings.CHATBOT_GATE_CONFIDENCE_Z,
        candidate_scored=scored,
    )
    return {**result, "active_version": active.pk}


def _finish(run: TrainingRun, status: str) -> None:
    run.status, run.finished_at = status, timezone.now()
    if status != TrainingRun.Status.FAILED:
        run.progress = 1.0
    run.save()


def _fail(run: TrainingRun, error: Exception) -> None:
    logger.exception("training run %s failed", run.pk)
    detail = str(error) if isinstance(error, TrainingError) else f"{error}\n\n{traceback.format_exc(limit=5)}"
    run.error = detail
    _finish(run, TrainingRun.Status.FAILED)


def _progress(run: TrainingRun, event: dict[str, Any]) -> None:
    run.history.append({key: value for key, value in event.items() if value is not None})
    run.progress = min(0.95, event.get("progress", event["epoch"] / max(1, event["epochs"])))
    run.save(update_fields=["history", "progress", "log"])


class _LogCollector(logging.Handler):
    def __init__(self, run: TrainingRun) -> None:
        super().__init__(logging.INFO)
        self.run = run
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.run.log += self.format(record) + "\n"


@contextmanager
def _captured_log(run: TrainingRun) -> Iterator[None]:
    """The run's own log lines (this module's and the trainer's) are kept on the run."""
    handler = _LogCollector(run)
    loggers = [logging.getLogger(name) for name in (__name__, "training")]
    levels = [item.level for item in loggers]
    for item in loggers:
        item.addHandler(handler)
        item.setLevel(min(item.getEffectiveLevel(), logging.INFO))
    try:
        yield
    finally:
        for item, level in zip(loggers, levels, strict=True):
            item.removeHandler(handler)
            item.setLevel(level)
        TrainingRun.objects.filter(pk=run.pk).update(log=run.log)


def model_version_register(
    model: AnswerModel, *, metrics: dict[str, Any], fingerprint: str = "", calibration: dict[str, Any] | None = None
) -> ModelVersion:
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
        language_rules=language_rules_dict(model.rejection.languages),
        n_labels=len(model.labels),
        n_examples=int(model.info.get("n_examples", 0)),
        metrics=_jsonable(metrics),
        fingerprint=fingerprint,
        calibration=_jsonable(calibration or {}),
    )


def model_version_load(version: ModelVersion) -> AnswerModel:
    """The version's model with its operating point (the threshold an operator may have moved)."""
    model = artifact_load(name=version.artifact.name, checksum=version.checksum)
    operating_point_apply(model, version.threshold, version.margin, version.language_rules)
    return model


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
