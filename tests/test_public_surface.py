"""What a client can and cannot do from outside: forged proxy headers, limits across web processes, /healthz
details and suggestion frames (the consumer-side findings of the outside review)."""

import asyncio
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from channels.db import database_sync_to_async
from channels.testing import HttpCommunicator, WebsocketCommunicator
from websockets.sync.client import connect

from chatbot.asgi import application
from chatbot.conversations import services
from chatbot.conversations.models import Conversation, Message
from chatbot.knowledge.models import QAPair
from tests.conftest import ROOT, free_port, subprocess_env, wait_for_http

MONITOR = "192.0.2.10"  # the only address allowed to read /metrics and /healthz details in the Procfile stack


def procfile_web(port: int) -> tuple[dict[str, str], list[str]]:
    """The Procfile's web line, on this port and on 127.0.0.1 (it binds every interface): (variables, command)."""
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    words = line.removeprefix("web:").replace("${PORT:-8000}", str(port)).replace("0.0.0.0", "127.0.0.1").split()
    assignments = [word for word in words if "=" in word and word.split("=", 1)[0].isupper()]
    command = [word for word in words if word not in assignments]
    return dict(word.split("=", 1) for word in assignments), [sys.executable, "-m", *command]


@pytest.fixture(scope="module")
def two_webs(django_db_setup, tmp_path_factory) -> Iterator[list[int]]:  # noqa: ANN001
    """Two web processes started as the Procfile starts them, sharing the test database and Redis."""
    logs: Path = tmp_path_factory.mktemp("two-webs")
    env = {
        **subprocess_env(),
        "CHATBOT_IP_MAX_CONNECTIONS": "3",
        "CHATBOT_IP_CONNECT_BURST": "1000",
        "CHATBOT_METRICS_ALLOWED_IPS": MONITOR,
    }
    ports = [free_port(), free_port()]
    webs = [
        subprocess.Popen(
            procfile_web(port)[1],
            cwd=ROOT,
            env={**env, **procfile_web(port)[0]},
            stdout=open(logs / f"web-{port}.log", "ab"),
            stderr=subprocess.STDOUT,
        )
        for port in ports
    ]
    try:
        for port in ports:
            wait_for_http(port, timeout=120)
        yield ports
    finally:
        for web in webs:
            web.terminate()
            web.wait(timeout=15)


def ws(port: int, forwarded_for: str | None = None) -> tuple[object, dict]:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
    socket = connect(f"ws://127.0.0.1:{port}/ws/chat/", origin=f"http://127.0.0.1:{port}", additional_headers=headers)
    return socket, json.loads(socket.recv(timeout=10))


def get(port: int, path: str, forwarded_for: str) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"X-Forwarded-For": forwarded_for})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_a_forged_forwarded_for_does_not_open_metrics_or_the_health_details(two_webs):
    # when: a client that is not the monitoring system claims its address
    status, _ = get(two_webs[0], "/metrics", forwarded_for=MONITOR)
    health_status, health = get(two_webs[0], "/healthz", forwarded_for=MONITOR)
    # then: /metrics is refused and /healthz tells only the status
    assert status == 403
    assert health_status in (200, 503) and set(json.loads(health)) == {"status"}


def test_a_forged_forwarded_for_does_not_escape_the_connection_limit(two_webs):
    opened = [ws(two_webs[0], forwarded_for=f"198.51.100.{n}") for n in range(4)]
    try:
        assert [welcome["type"] for _, welcome in opened] == ["welcome", "welcome", "welcome", "error"]
        assert opened[3][1]["code"] == "rate_limited"
    finally:
        for socket, _ in opened:
            socket.close()


def test_the_connection_limit_of_an_address_holds_across_web_processes(two_webs):
    # given: two connections on one web process and one on the other (limit: 3 per address)
    opened = [ws(two_webs[0]), ws(two_webs[0]), ws(two_webs[1])]
    try:
        # when: a fourth, on the second process
        opened.append(ws(two_webs[1]))
        # then: refused, although that process holds only one connection of the address
        assert [welcome["type"] for _, welcome in opened] == ["welcome", "welcome", "welcome", "error"]
    finally:
        for socket, _ in opened:
            socket.close()


def test_the_frame_rate_of_an_address_holds_across_web_processes(two_webs, settings):
    # Bucket state is in Redis: frames on one process use up the burst that the other process sees.
    key = f"{settings.REDIS_PREFIX}chatbot:ip:frames:127.0.0.1"
    redis.Redis.from_url(settings.REDIS_URL).delete(key)
    a, _ = ws(two_webs[0])
    b, _ = ws(two_webs[1])
    try:
        for socket in (a, b):
            socket.send(json.dumps({"type": "feedback", "message_id": 1, "helpful": True}))
            assert json.loads(socket.recv(timeout=10))["code"] == "bad_request"
        assert redis.Redis.from_url(settings.REDIS_URL).exists(key)
    finally:
        a.close()
        b.close()


ORIGIN = [(b"origin", b"http://127.0.0.1")]


async def ws_in_process(path: str = "/ws/chat/") -> tuple[WebsocketCommunicator, dict]:
    communicator = WebsocketCommunicator(application, path, headers=ORIGIN)
    connected, _ = await communicator.connect()
    assert connected
    return communicator, await communicator.receive_json_from(timeout=5)


@pytest.mark.usefixtures("committed_db")
async def test_it_welcomes_with_a_reserved_token_and_writes_the_conversation_with_the_first_message():
    # given: a new connection
    communicator, welcome = await ws_in_process()
    assert len(welcome["conversation"]) >= 20 and welcome["resumed"] is False
    assert welcome["max_length"] == 2000 and welcome["history"] == []
    exists = database_sync_to_async(Conversation.objects.filter(token=welcome["conversation"]).exists)
    # then: connecting wrote nothing (open-close loops cannot fill the database)
    assert not await exists()
    # when: the first message arrives, the conversation of that token is written with it
    await communicator.send_to(text_data=json.dumps({"type": "message", "id": "m1", "text": "hello"}))
    await asyncio.sleep(0)
    deadline = time.monotonic() + 5
    while not await exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert await exists()
    await communicator.disconnect()
    again, resumed = await ws_in_process(f"/ws/chat/?conversation={welcome['conversation']}")
    assert resumed["resumed"] is True and resumed["conversation"] == welcome["conversation"]
    await again.disconnect()


@pytest.mark.usefixtures("committed_db")
async def test_connects_are_rate_limited_per_address(settings):
    settings.CHATBOT_IP_CONNECT_BURST, settings.CHATBOT_IP_CONNECTS_PER_SECOND = 3, 0.01
    for _ in range(3):
        communicator, _ = await ws_in_process()
        await communicator.disconnect()
    # when: a fourth connection within the burst's refill time
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=ORIGIN)
    await communicator.connect()
    refused = await communicator.receive_json_from(timeout=5)
    # then: refused with an error frame and close code 4429
    assert refused["code"] == "rate_limited" and "new connections" in refused["detail"]
    assert (await communicator.receive_output(timeout=5))["code"] == 4429


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        ("203.0.113.9", "192.0.2.10", "203.0.113.9"),  # not a proxy: its header is the client's own words
        ("10.0.0.2", "192.0.2.10", "192.0.2.10"),  # the proxy says who connected to it
        ("10.0.0.2", "192.0.2.10, 198.51.100.4", "198.51.100.4"),  # the left part was sent by the client
        ("10.0.0.2", "198.51.100.4, 10.0.0.3", "198.51.100.4"),  # two proxies in a row
        ("10.0.0.2", "10.0.0.4", "10.0.0.4"),  # only proxies: the first hop is the best we know
        ("10.0.0.2", "", "10.0.0.2"),
        ("10.0.0.2", "not-an-address, 198.51.100.4", "198.51.100.4"),
    ],
)
def test_the_client_is_the_right_most_hop_that_is_not_a_trusted_proxy(peer, forwarded_for, expected):
    from chatbot.proxy import client_address, proxies_parse

    proxies = proxies_parse(("10.0.0.0/8",))
    assert client_address(peer=peer, forwarded_for=forwarded_for, proxies=proxies) == expected


@pytest.mark.usefixtures("committed_db")
async def test_behind_a_trusted_proxy_metrics_follow_the_forwarded_address(settings):
    settings.CHATBOT_TRUSTED_PROXIES, settings.CHATBOT_METRICS_ALLOWED_IPS = ["10.0.0.0/8"], [MONITOR]

    async def metrics_status(peer: str, forwarded_for: str) -> int:
        communicator = HttpCommunicator(
            application,
            "GET",
            "/metrics",
            headers=[(b"host", b"127.0.0.1"), (b"x-forwarded-for", forwarded_for.encode())],
        )
        communicator.scope["client"] = (peer, 50000)
        return (await communicator.get_response(timeout=10))["status"]

    assert await metrics_status("10.0.0.2", MONITOR) == 200
    assert await metrics_status("10.0.0.2", f"{MONITOR}, 198.51.100.4") == 403
    assert await metrics_status("203.0.113.9", MONITOR) == 403


@pytest.mark.django_db
def test_healthz_tells_the_public_only_the_status_and_staff_the_details(client, settings, django_user_model):
    settings.CHATBOT_METRICS_ALLOWED_IPS = []
    public = client.get("/healthz")
    assert public.status_code in (200, 503) and set(public.json()) == {"status"}
    client.force_login(django_user_model.objects.create_user("ops", password="x", is_staff=True))
    assert {"status", "database", "redis", "model"} <= set(client.get("/healthz").json())


@pytest.mark.django_db
def test_healthz_opens_no_new_redis_client_per_call(client, monkeypatch):
    client.get("/healthz")  # the process's client exists from here on
    opened = []
    real = redis.Redis.from_url
    monkeypatch.setattr(redis.Redis, "from_url", lambda *a, **k: opened.append(a) or real(*a, **k))
    for _ in range(5):
        client.get("/healthz")
    assert opened == []


@pytest.mark.django_db
def test_a_suggestion_is_taken_only_when_the_last_answer_offered_it():
    # given: the bot's last message offered one pair
    offered, other = QAPair.objects.filter(is_active=True, handoff=False).order_by("pk")[:2]
    conversation = Conversation.objects.create()
    Message.objects.create(
        conversation=conversation, sender=Message.Sender.BOT, outcome="unsure", text="not sure",
        suggestions=[{"id": offered.pk, "question": offered.question}],
    )  # fmt: skip

    def receive(pair: QAPair) -> Message:
        message, _ = services.message_receive(
            conversation=conversation, client_id=uuid.uuid4().hex, text=pair.question, suggestion=pair.pk,
            enqueue=lambda message_id: None,
        )  # fmt: skip
        return message

    # when / then: a frame naming another active pair does not choose the answer (the model will)
    assert receive(other).suggested_pair is None
    assert receive(offered).suggested_pair == offered
