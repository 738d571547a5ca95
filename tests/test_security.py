"""What the public site refuses: abuse limits, hostile pages, staff-only admin, unsafe settings and artifacts."""

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group

from chatbot.asgi import application
from chatbot.registry.artifacts import ArtifactError, artifact_load, sha256
from chatbot.registry.models import ModelVersion
from chatbot.roles import roles_ensure

ROOT = Path(__file__).resolve().parent.parent
ORIGIN = [(b"origin", b"http://127.0.0.1")]


async def connect(address: str) -> tuple[WebsocketCommunicator, dict]:
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=ORIGIN)
    communicator.scope["client"] = (address, 40000)
    connected, _ = await communicator.connect()
    assert connected
    return communicator, await communicator.receive_json_from(timeout=5)


def message(client_id: str, text: str = "hello") -> str:
    return json.dumps({"type": "message", "id": client_id, "text": text})


# --- abuse limits ------------------------------------------------------------------------------
@pytest.mark.usefixtures("committed_db")
async def test_it_limits_the_connections_of_one_address(settings):
    settings.CHATBOT_IP_MAX_CONNECTIONS = 2
    first, _ = await connect("10.1.0.1")
    second, _ = await connect("10.1.0.1")
    # when: a third connection from the same address
    third, refused = await connect("10.1.0.1")
    # then: an error frame and a close, while another address still gets in
    assert refused == {"type": "error", "code": "rate_limited", "detail": "Too many connections from your address."}
    assert (await third.receive_output(timeout=5))["code"] == 4429
    other, welcome = await connect("10.1.0.2")
    assert welcome["type"] == "welcome"
    for communicator in (first, second, other):
        await communicator.disconnect()
    again, welcome = await connect("10.1.0.1")  # places are given back on disconnect
    assert welcome["type"] == "welcome"
    await again.disconnect()


@pytest.mark.usefixtures("committed_db")
async def test_it_rate_limits_an_address_across_its_connections(settings):
    settings.CHATBOT_IP_RATE_BURST, settings.CHATBOT_IP_RATE_PER_SECOND = 3, 0.01
    a, _ = await connect("10.2.0.1")
    b, _ = await connect("10.2.0.1")
    codes = []
    for n, communicator in enumerate([a, b, a, b]):
        await communicator.send_to(text_data=json.dumps({"type": "feedback", "message_id": n, "helpful": True}))
        codes.append((await communicator.receive_json_from(timeout=5))["code"])
    assert codes == ["bad_request", "bad_request", "bad_request", "rate_limited"]
    await a.disconnect()
    await b.disconnect()


@pytest.mark.usefixtures("committed_db")
async def test_it_closes_an_idle_connection_with_an_error_frame(settings):
    settings.CHATBOT_IDLE_SECONDS = 0.3
    communicator, _ = await connect("10.3.0.1")
    frame = await communicator.receive_json_from(timeout=5)
    assert frame["type"] == "error" and frame["code"] == "idle"
    assert (await communicator.receive_output(timeout=5))["code"] == 4408


# --- pages and admin ---------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_chat_page_has_a_strict_content_security_policy_and_no_inline_code(client):
    response = client.get("/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "'unsafe-inline'" not in policy
    html = response.content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert "<style" not in html and not re.search(r"\sstyle=", html) and not re.search(r"\son\w+=", html)


@pytest.mark.django_db
def test_the_admin_requires_a_staff_login(client, django_user_model):
    assert client.get("/admin/").status_code == 302
    django_user_model.objects.create_user("customer", password="a-long-password-1")
    client.login(username="customer", password="a-long-password-1")
    assert client.get("/admin/").status_code == 302


@pytest.mark.django_db
def test_operators_curate_and_review_and_admins_also_manage_models_and_schedules():
    roles_ensure()
    operators = set(Group.objects.get(name="Operators").permissions.values_list("codename", flat=True))
    admins = set(Group.objects.get(name="Admins").permissions.values_list("codename", flat=True))
    assert {"change_qapair", "add_alternatequestion", "delete_conversation", "view_message"} <= operators
    assert not {"change_modelversion", "add_trainingrun", "change_periodictask", "add_user"} & operators
    assert operators < admins and {"change_modelversion", "add_trainingrun", "change_periodictask"} <= admins


def test_create_roles_is_a_command():
    output = subprocess.run(
        [sys.executable, "manage.py", "help", "create_roles"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=production_env(),
    )
    assert output.returncode == 0, output.stderr


# --- production settings -----------------------------------------------------------------------
def production_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("DEBUG", "SECRET_KEY")}
    env.update(
        DJANGO_SETTINGS_MODULE="chatbot.settings",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres",
        SECRET_KEY="k9-Jq2vP7x-rT4mZ8wL1nB6cY3hF0sD5gA2eU9iO7pK4jH1lM8qW3zX6vC0bN5tR",
        ALLOWED_HOSTS="support.example.com",
        SECURE_SSL_REDIRECT="1",
        SECURE_COOKIES="1",
        CSRF_TRUSTED_ORIGINS="https://support.example.com",
    )
    env.update(extra)
    return env


def test_check_deploy_passes_in_production_mode():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=production_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("extra", "complaint"), [({"DEBUG": "1"}, "DEBUG must be off"), ({"SECRET_KEY": ""}, "SECRET_KEY")]
)
def test_production_mode_refuses_debug_and_a_missing_secret_key(extra, complaint):
    result = subprocess.run(
        [sys.executable, "-c", "import chatbot.settings"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=production_env(**extra),
    )
    assert result.returncode != 0 and complaint in result.stderr


# --- model artifacts ---------------------------------------------------------------------------
@pytest.mark.django_db
def test_an_artifact_that_does_not_match_its_checksum_is_refused():
    version = ModelVersion.objects.get(is_active=True)
    with pytest.raises(ArtifactError, match="checksum"):
        artifact_load(name=version.artifact.name, checksum="0" * 64)


class Payload:
    def __reduce__(self):  # noqa: ANN204
        return (os.system, ("touch /tmp/chatbot-pwned",))


@pytest.mark.django_db
def test_model_weights_are_loaded_with_weights_only(tmp_path, settings):
    # given: a well-formed artifact whose weights file carries a pickled payload
    import tarfile

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    settings.CHATBOT_MODEL_CACHE = tmp_path / "cache"
    version = ModelVersion.objects.get(is_active=True)
    with default_storage.open(version.artifact.name, "rb") as handle:
        original = tarfile.open(fileobj=io.BytesIO(handle.read()), mode="r:gz")
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz") as tar:
        for member in original.getmembers():
            data = original.extractfile(member).read()
            if member.name == "weights.pt":
                weights = io.BytesIO()
                torch.save({"evil": Payload()}, weights)
                data = weights.getvalue()
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    name = default_storage.save("models/hostile.tar.gz", ContentFile(packed.getvalue()))
    # when / then: refused, and the payload never ran
    with pytest.raises(ArtifactError):
        artifact_load(name=name, checksum=sha256(packed.getvalue()))
    assert not Path("/tmp/chatbot-pwned").exists()
