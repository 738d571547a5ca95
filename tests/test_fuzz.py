"""Hostile input on the WebSocket: random frames never crash the consumer or lose the conversation."""

import json

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from chatbot.asgi import application
from chatbot.conversations.models import Conversation, Message

pytestmark = pytest.mark.usefixtures("committed_db")
ORIGIN = [(b"origin", b"http://127.0.0.1")]
# a frame whose error we can tell from any fuzzed frame's: its id is not one hypothesis would generate
SENTINEL_ID = "sentinel-7f3c9e1d4b"
SENTINEL = json.dumps({"type": "sentinel", "id": SENTINEL_ID})
CODES = {"too_long", "rate_limited", "bad_request", "unavailable"}

nasty_text = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Cf", "Zl", "Zp"])),  # controls, RTL marks
    st.just("مرحبا، أين طلبي؟ \u202e\u200f"),
    st.just("🙂" * 10_000),
    st.just("x" * 20_000),
    st.just("\ud800 lone surrogate"),
    st.just("\x00\x1b[31m<script>alert(1)</script>"),
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63, max_value=2**200), st.floats(), nasty_text
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4), max_leaves=12
)
frames = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["message", "feedback", "Message", ""]) | nasty_text},
        optional={"id": scalars, "text": scalars, "suggestion": scalars, "message_id": scalars, "helpful": scalars},
    ).map(lambda frame: json.dumps(frame, ensure_ascii=False)),
    json_values.map(json.dumps),
    nasty_text,  # not JSON at all, or JSON of the wrong shape
)


async def exchange(raw_frames: list[str]) -> None:
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=ORIGIN)
    connected, _ = await communicator.connect()
    assert connected
    welcome = await communicator.receive_json_from(timeout=30)
    for raw in raw_frames:
        # given a random frame, then a frame whose answer we know: everything before that answer is an error frame
        await communicator.send_input({"type": "websocket.receive", "text": raw})  # send_to refuses ""
        await communicator.send_to(text_data=SENTINEL)
        seen: list[dict] = []
        while True:
            try:
                output = await communicator.receive_output(timeout=30)
            except TimeoutError:
                pytest.fail(f"no answer to the sentinel after {raw[:200]!r}; frames since: {seen}")
            assert output["type"] == "websocket.send", f"connection closed after {raw[:200]!r}"
            output["text"].encode("utf-8")  # what goes on the wire must be valid UTF-8
            frame = json.loads(output["text"])
            seen.append(frame)
            assert frame["type"] == "error" and frame["code"] in CODES, frame
            if frame["reply_to"] == SENTINEL_ID:
                assert frame["detail"].startswith("Unknown frame type"), frame
                break
    # then: the conversation is intact and still answers
    await communicator.send_to(text_data=json.dumps({"type": "message", "id": "after-fuzz", "text": "hello"}))
    await communicator.send_to(text_data=SENTINEL)
    assert (await communicator.receive_json_from(timeout=30))["reply_to"] == SENTINEL_ID
    await communicator.disconnect()
    conversation = await Conversation.objects.aget(token=welcome["conversation"])
    assert await Message.objects.filter(conversation=conversation, client_id="after-fuzz").aexists()


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(frames, min_size=1, max_size=8))
@example(
    ['{"type": "\u0645\u0631\u062d\u0628\u0627 \u202e\u200f"}', '{"type": "message", "id": ""}']
)  # an unknown type, as the sentinel
def test_random_frames_get_error_frames_and_never_close_the_conversation(settings, raw_frames):
    settings.CHATBOT_RATE_BURST = settings.CHATBOT_IP_RATE_BURST = settings.CHATBOT_IP_CONNECT_BURST = 10_000
    async_to_sync(exchange)(raw_frames)


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps({"type": "message", "id": "\ud800", "text": "hi"}),
        json.dumps({"type": "message", "id": "a", "text": "\ud800"}),
        json.dumps({"type": "message", "id": "a", "text": "hi", "suggestion": 10**30}),
        json.dumps({"type": "feedback", "message_id": 10**30, "helpful": True}),
        json.dumps({"type": "message", "id": "a", "text": 1e308}),
        '{"type": "message", "id": "a", "text": NaN}',
        "\ufeff{}",
        "[" * 5000 + "]" * 5000,
    ],
)
def test_known_nasty_frames(settings, raw):
    settings.CHATBOT_RATE_BURST = settings.CHATBOT_IP_RATE_BURST = settings.CHATBOT_IP_CONNECT_BURST = 10_000
    async_to_sync(exchange)([raw])
