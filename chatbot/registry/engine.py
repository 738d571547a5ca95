"""The model in service, kept in memory per process and swapped when the active version changes."""

import logging
import threading
from dataclasses import dataclass

from chatbot.registry.artifacts import ArtifactError, artifact_load
from chatbot.registry.models import ModelVersion
from training import AnswerModel

logger = logging.getLogger(__name__)


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


def engine_get() -> Loaded | None:
    """The active model, loaded. One cheap query per call; loads (outside the serving path's lock) on change.

    A version that fails to load (missing or altered artifact) leaves the previous model in service.
    """
    version_id = active_version_id()
    current = _state.loaded
    if version_id is None or (current and current.version_id == version_id):
        return current
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
        except ArtifactError as error:
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


def engine_reset() -> None:
    """Forget the loaded model (tests, and after the artifact cache is cleared)."""
    with _lock:
        _state.loaded, _state.error, _state.failed_version_id = None, "", None
