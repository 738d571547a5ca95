"""`make run`'s embedded mode (SQLite, in-memory channel layer and presence, answers in the web process):
one customer and one operator through a real runserver."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from websockets.sync.client import connect

from tests.conftest import ROOT, free_port, wait_for_http

pytestmark = pytest.mark.e2e

SESSION = """
import django; django.setup()
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import Group, User
from django.contrib.sessions.backends.db import SessionStore
user = User.objects.create_user("ada", password="not-used-here-1", is_staff=True, first_name="Ada")
user.groups.add(Group.objects.get(name="Operators"))
session = SessionStore()
session[SESSION_KEY], session[BACKEND_SESSION_KEY] = str(user.pk), "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> Iterator[tuple[int, str]]:
    var = tmp_path_factory.mktemp("embedded")
    dropped = ("DATABASE_URL", "REDIS_URL", "CHATBOT_REDIS_PREFIX", "ALLOWED_HOSTS", "SECRET_KEY", "CHATBOT_MODE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(CHATBOT_VAR_DIR=str(var), DJANGO_SETTINGS_MODULE="chatbot.settings", PYTHONUNBUFFERED="1")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    session = subprocess.run(
        [sys.executable, "-c", SESSION], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=open(var / "web.log", "ab"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_http(port, timeout=60)
        yield port, session
    finally:
        web.terminate()
        web.wait(timeout=15)


def frame_of(ws, kind: str, timeout: float = 10, **match: object) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if frame["type"] == kind and all(frame.get(k) == v for k, v in match.items()):
            return frame


def test_one_customer_and_one_operator_in_embedded_mode(embedded):
    port, session = embedded
    origin = f"http://127.0.0.1:{port}"
    with (
        connect(
            f"ws://127.0.0.1:{port}/ws/console/", origin=origin, additional_headers={"Cookie": f"sessionid={session}"}
        ) as desk,
        connect(f"ws://127.0.0.1:{port}/ws/chat/", origin=origin) as chat,
    ):
        assert frame_of(desk, "hello")["operator"]["name"] == "Ada"
        desk.send(json.dumps({"type": "status", "status": "available"}))
        frame_of(desk, "status")
        frame_of(chat, "welcome")
        # the customer asks; the operator sees the queue, claims; both talk
        chat.send(json.dumps({"type": "handoff_request"}))
        assert frame_of(chat, "handoff", status="waiting", position=1)
        conversation = frame_of(desk, "queue")["conversations"][0]["conversation"]
        desk.send(json.dumps({"type": "claim", "conversation": conversation}))
        assert frame_of(chat, "handoff", status="joined")["agent"] == "Ada"
        chat.send(json.dumps({"type": "message", "id": "m1", "text": "Is anyone there?"}))
        assert frame_of(desk, "customer_message")["message"]["text"] == "Is anyone there?"
        desk.send(json.dumps({"type": "reply", "conversation": conversation, "text": "Yes, Ada here."}))
        assert frame_of(chat, "agent_message")["text"] == "Yes, Ada here."
        desk.send(json.dumps({"type": "end", "conversation": conversation, "to": "closed"}))
        assert frame_of(chat, "handoff", status="ended")["rate"] is True
        chat.send(json.dumps({"type": "rating", "score": 4}))
        frame_of(chat, "rating")
