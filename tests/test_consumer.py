"""The WebSocket consumer through Channels' WebsocketCommunicator and the Redis channel layer."""

import asyncio
import json
import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import OperationalError

from chatbot.asgi import application
from chatbot.conversations import consumers, services
from chatbot.conversations.models import Message
from chatbot.redis_client import redis_async

pytestmark = pytest.mark.usefixtures("committed_db")
ORIGIN = [(b"origin", b"http://127.0.0.1")]


async def connect(path: str = "/ws/chat/") -> tuple[WebsocketCommunicator, dict]:
    communicator = WebsocketCommunicator(application, path, headers=ORIGIN)
    connected, _ = await communicator.connect()
    assert connected
    welcome = await communicator.receive_json_from(timeout=5)
    assert welcome["type"] == "welcome"
    return communicator, welcome


async def send_raw(communicator: WebsocketCommunicator, text: str) -> dict:
    await communicator.send_to(text_data=text)
    return await communicator.receive_json_from(timeout=5)


async def test_it_rejects_a_foreign_origin():
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=[(b"origin", b"https://evil.example")])
    connected, _ = await communicator.connect()
    assert not connected


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "bad_request"),
        ("[1, 2]", "bad_request"),
        (json.dumps({"type": "shout", "text": "hi"}), "bad_request"),
        (json.dumps({"type": "message", "id": "a1"}), "bad_request"),
        (json.dumps({"type": "message", "id": 7, "text": "hi"}), "bad_request"),
        (json.dumps({"type": "message", "id": "a1", "text": "   "}), "bad_request"),
        (json.dumps({"type": "message", "id": "a1", "text": "x" * 2001}), "too_long"),
        (json.dumps({"type": "message", "id": "a1", "text": "🙂" * 5000}), "too_long"),
        (json.dumps({"type": "message", "id": "a1", "text": "hi", "suggestion": "12"}), "bad_request"),
        (json.dumps({"type": "feedback", "message_id": "1", "helpful": True}), "bad_request"),
        (json.dumps({"type": "feedback", "message_id": 999999999, "helpful": True}), "bad_request"),
    ],
)
async def test_it_answers_bad_frames_with_an_error_and_keeps_the_conversation(frame, code):
    # given
    communicator, welcome = await connect()
    # when
    error = await send_raw(communicator, frame)
    # then
    assert error["type"] == "error" and error["code"] == code and error["detail"]
    ok = await send_raw(communicator, json.dumps({"type": "feedback", "message_id": 0, "helpful": True}))
    assert ok["code"] == "bad_request"  # still answering frames on the same connection
    await communicator.send_json_to({"type": "message", "id": "after-error", "text": "where is my order"})
    assert await stored(welcome["conversation"], "after-error")
    await communicator.disconnect()


async def stored(token: str, client_id: str, timeout: float = 10) -> bool:
    """Whether the message is in the database within `timeout` (the consumer stores it in a thread)."""
    exists = database_sync_to_async(Message.objects.filter(conversation__token=token, client_id=client_id).exists)
    deadline = time.monotonic() + timeout
    while not await exists():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_it_refuses_binary_frames():
    communicator, _ = await connect()
    await communicator.send_to(bytes_data=b"\x00\x01")
    error = await communicator.receive_json_from(timeout=5)
    assert error["code"] == "bad_request"
    await communicator.disconnect()


async def test_it_rate_limits_a_flood_and_keeps_what_it_accepted():
    communicator, welcome = await connect()
    for index in range(30):
        await communicator.send_json_to({"type": "message", "id": f"flood-{index}", "text": f"question {index}"})
    frames = []
    while not await communicator.receive_nothing(timeout=3):
        frames.append(await communicator.receive_json_from())
    errors = [frame for frame in frames if frame["type"] == "error"]  # answers may come too, from a worker
    stored = await database_sync_to_async(
        lambda: set(
            Message.objects.filter(conversation__token=welcome["conversation"], sender="customer").values_list(
                "client_id", flat=True
            )
        )
    )()
    limited = {error["reply_to"] for error in errors if error["code"] == "rate_limited"}
    assert limited, "a flood of 30 frames must be limited"
    assert stored | limited == {f"flood-{index}" for index in range(30)}
    assert not stored & limited
    await communicator.disconnect()


async def test_a_resent_message_is_stored_once():
    communicator, welcome = await connect()
    for _ in range(3):
        await communicator.send_json_to({"type": "message", "id": "same-id", "text": "hello"})
    assert await stored(welcome["conversation"], "same-id")
    await communicator.receive_nothing(timeout=0.5)
    count = await database_sync_to_async(
        Message.objects.filter(conversation__token=welcome["conversation"], client_id="same-id").count
    )()
    assert count == 1
    await communicator.disconnect()


async def test_it_resumes_a_conversation_by_token_with_its_history():
    first, welcome = await connect()
    await first.send_json_to({"type": "message", "id": "m1", "text": "hello there"})
    assert await stored(welcome["conversation"], "m1")
    await first.disconnect()

    second, again = await connect(f"/ws/chat/?conversation={welcome['conversation']}")
    assert again["resumed"] is True and again["conversation"] == welcome["conversation"]
    assert {"role": "customer", "id": "m1", "text": "hello there"} in again["history"]
    await second.disconnect()


async def test_an_unknown_token_starts_a_new_conversation():
    communicator, welcome = await connect("/ws/chat/?conversation=not-a-real-token")
    assert welcome["resumed"] is False and welcome["conversation"] != "not-a-real-token"
    await communicator.disconnect()


async def test_feedback_while_the_database_is_down_gets_unavailable_and_keeps_the_connection(monkeypatch):
    communicator, _ = await connect()
    await communicator.send_to(text_data=json.dumps({"type": "message", "id": "m1", "text": "hello"}))

    def down(**kwargs: object) -> bool:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "feedback_record", down)
    error = await send_raw(communicator, json.dumps({"type": "feedback", "message_id": 1, "helpful": True}))
    assert error["code"] == "unavailable"
    monkeypatch.undo()
    error = await send_raw(communicator, json.dumps({"type": "feedback", "message_id": 999999999, "helpful": True}))
    assert error["code"] == "bad_request"
    await communicator.disconnect()


async def test_a_connection_that_crashes_gives_its_place_in_the_address_limit_back(monkeypatch):
    # given: a connection counted against its address ("unknown": the communicator sets no client)
    communicator, _ = await connect()
    assert await open_connections("unknown") == 1

    async def bug(self: consumers.ChatConsumer, frame: dict) -> None:
        raise RuntimeError("a bug in a handler")

    monkeypatch.setattr(consumers.ChatConsumer, "_on_feedback", bug)
    # when: a handler raises, which ends the consumer without a disconnect
    await communicator.send_to(text_data=json.dumps({"type": "feedback", "message_id": 1, "helpful": True}))
    with pytest.raises(RuntimeError):
        await communicator.receive_output(timeout=5)
    # then: the place is given back (50 such crashes locked the address out of the process)
    assert await open_connections("unknown") == 0


async def open_connections(address: str) -> int:
    return await redis_async().zcard(f"{settings.REDIS_PREFIX}chatbot:ip:open:{address}")
