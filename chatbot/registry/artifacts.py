"""Model artifacts: a trained model folder packed as .tar.gz in Django's storage, with a checksum."""

import hashlib
import io
import logging
import shutil
import tarfile
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from training import AnswerModel

logger = logging.getLogger(__name__)


class ArtifactError(Exception):
    pass


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def artifact_pack(model: AnswerModel) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        model.save(tmp)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for path in sorted(Path(tmp).iterdir()):
                tar.add(path, arcname=path.name)
        return buffer.getvalue()


def artifact_store(model: AnswerModel, *, name: str) -> tuple[str, str]:
    """Save the model through the storage API; returns (storage name, sha256)."""
    data = artifact_pack(model)
    stored = default_storage.save(f"models/{name}.tar.gz", ContentFile(data))
    return stored, sha256(data)


def artifact_load(*, name: str, checksum: str) -> AnswerModel:
    """Fetch, verify and load an artifact; raises ArtifactError when missing, altered or unreadable."""
    folder = Path(settings.CHATBOT_MODEL_CACHE) / checksum
    if not (folder / ".complete").exists():
        try:
            with default_storage.open(name, "rb") as handle:
                data = handle.read()
        except (OSError, FileNotFoundError) as error:
            raise ArtifactError(f"artifact {name} cannot be read: {error}") from error
        if sha256(data) != checksum:
            raise ArtifactError(f"artifact {name} does not match its checksum; refusing to load it")
        _unpack(data, folder)
    try:
        return AnswerModel.load(folder)
    except Exception as error:  # a damaged folder: drop it so the next try fetches again
        shutil.rmtree(folder, ignore_errors=True)
        raise ArtifactError(f"artifact {name} cannot be loaded: {error}") from error


def _unpack(data: bytes, folder: Path) -> None:
    tmp = Path(tempfile.mkdtemp(dir=folder.parent if folder.parent.exists() else None))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            tar.extractall(tmp, filter="data")
        (tmp / ".complete").touch()
        folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
