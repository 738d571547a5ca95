"""The model in service, kept in memory per process and swapped when the active version changes."""

import logging
import threading
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from chatbot.registry.artifacts import ArtifactError, artifact_load
from chatbot.registry.models import ModelVersion
from training import AnswerModel, e5
from training.calibration import CalibrationError, language_rules_read

logger = logging.getLogger(__name__)


def training_cache_configure() -> None:
    """Encoders that come as packages (multilingual-e5) are converted into the model cache, once per machine."""
    e5.cache_root_set(settings.CHATBOT_MODEL_CACHE)


training_cache_configure()


@dataclass(frozen=True)
class Loaded:
    version_id: int
    model: AnswerModel


@dataclass
class EngineState:
    loaded: Loaded | None = None
    error: str = ""
    failed_version_id: int | None = None


_state = EngineState()
_lock = threading.Lock()


def active_version_id() -> int | None:
    return ModelVersion.objects.filter(is_active=True).values_list("id", flat=True).first()


def _active() -> tuple[int, float, float, Any] | None:
    values = ("id", "threshold", "margin", "language_rules")
    return ModelVersion.objects.filter(is_active=True).values_list(*values).first()


def operating_point_apply(model: AnswerModel, threshold: float, margin: float, language_rules: Any) -> bool:
    """Put the model at a version's operating point: its threshold and margin, and the per-language rules it
    stores (ModelVersion.language_rules: none after an operator set the threshold). True when anything moved."""
    rule = model.rejection.at(threshold, margin, language_rules_read(language_rules or {}))
    if rule == model.rejection:
        return False
    model.rejection = rule
    return True


def _operating_point(loaded: Loaded, threshold: float, margin: float, language_rules: Any) -> Loaded:
    """An operator moved the threshold of the version in service: apply it without reloading."""
    if operating_point_apply(loaded.model, threshold, margin, language_rules):
        logger.info(
            "model v%s operating point: threshold %.3f margin %.3f, per language %s",
            loaded.version_id,
            threshold,
            margin,
            language_rules or "none",
        )
    return loaded


def engine_get() -> Loaded | None:
    """The active model, loaded. One cheap indexed query per call; on change, the new version is loaded
    completely before it replaces the old one, so a message is never answered by a half-loaded model.

    A version that fails to load (missing or altered artifact) leaves the previous model in service.
    """
    active = _active()
    current = _state.loaded
    if active is None:
        return current
    version_id, threshold, margin, language_rules = active
    if current and current.version_id == version_id:
        return _operating_point(current, threshold, margin, language_rules)
    if _state.failed_version_id == version_id:
        return current
    with _lock:
        current = _state.loaded
        if current and current.version_id == version_id:
            return current
        version = ModelVersion.objects.filter(pk=version_id).first()
        if version is None:
            return current
        try:
            model = artifact_load(name=version.artifact.name, checksum=version.checksum)
            operating_point_apply(model, version.threshold, version.margin, version.language_rules)
        except (ArtifactError, CalibrationError) as error:
            logger.error("model v%s not loaded, keeping v%s: %s", version_id, current and current.version_id, error)
            _state.error, _state.failed_version_id = str(error), version_id
            return current
        _state.loaded, _state.error, _state.failed_version_id = Loaded(version_id, model), "", None
        logger.info("model v%s loaded (%s labels)", version_id, len(model.labels))
        return _state.loaded


def engine_status() -> dict:
    loaded = _state.loaded
    return {
        "loaded_version": loaded.version_id if loaded else None,
        "error": _state.error,
    }
