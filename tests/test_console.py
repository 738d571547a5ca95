"""Hand-off to people: the customer's frames, the operators' console socket, and the owner of a conversation,
through WebsocketCommunicator on the Redis channel layer and the real PostgreSQL."""

import asyncio
import threading
import time
import uuid

import pytest
import redis
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.test import Client

from chatbot.asgi import application
from chatbot.console import presence, services
from chatbot.console.models import Handoff, Ticket
from chatbot.conversations import services as conversation_services
from chatbot.conversations.answering import message_answer
from chatbot.conversations.models import Conversation, Message
from chatbot.review.models import ReviewItem
from tests.e2e import UNANSWERABLE

pytestmark = pytest.mark.usefixtures("committed_db")
ORIGIN = (b"origin", b"http://127.0.0.1")


@pytest.fixture(autouse=True)
def no_operators_present(committed_db) -> None:  # noqa: ANN001
    """Presence lives in Redis with expiry: each test starts with nobody's console open, and nobody waiting."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(f"{settings.REDIS_PREFIX}chatbot:console:*"):
        client.delete(key)
    Conversation.objects.exclude(owner=Conversation.Owner.BOT).update(owner=Conversation.Owner.BOT, operator=None)
    Handoff.objects.filter(outcome__in=["waiting", "with_person"]).update(outcome="abandoned")


def make_user(*, group: str | None = "Operators", staff: bool = True, first_name: str = "") -> User:
    user = User.objects.create_user(
        username=f"op-{uuid.uuid4().hex[:8]}", password=uuid.uuid4().hex, is_staff=staff, first_name=first_name
    )
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


def session_cookie(user: User) -> bytes:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


@pytest.fixture
def operator() -> User:
    return make_user(first_name="Ada")


async def console(user: User | None, *, available: bool = True) -> tuple[WebsocketCommunicator, dict]:
    headers = [ORIGIN]
    if user is not None:
        headers.append((b"cookie", await database_sync_to_async(session_cookie)(user)))
    communicator = WebsocketCommunicator(application, "/ws/console/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    hello = await communicator.receive_json_from(timeout=5)
    assert hello["type"] == "hello"
    if available:
        await communicator.send_json_to({"type": "status", "status": "available"})
        await until(communicator, "status")
    return communicator, hello


async def customer(token: str | None = None) -> tuple[WebsocketCommunicator, dict]:
    path = "/ws/chat/" + (f"?conversation={token}" if token else "")
    communicator = WebsocketCommunicator(application, path, headers=[ORIGIN])
    connected, _ = await communicator.connect()
    assert connected
    welcome = await communicator.receive_json_from(timeout=5)
    assert welcome["type"] == "welcome"
    return communicator, welcome


async def until(communicator: WebsocketCommunicator, kind: str, timeout: float = 5, **match: object) -> dict:
    """The next frame of this type (and these fields), skipping the others."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, f"no {kind} frame {match}"
        frame = await communicator.receive_json_from(timeout=left)
        if frame["type"] == kind and all(frame.get(k) == v for k, v in match.items()):
            return frame


def conversation_of(token: str) -> Conversation:
    return Conversation.objects.get(token=token)


async def waiting_customer() -> tuple[WebsocketCommunicator, dict, int]:
    """A customer who asked for a person, in the queue."""
    chat, welcome = await customer()
    await chat.send_json_to({"type": "handoff_request"})
    await until(chat, "handoff", status="waiting", position=1)
    conversation = await database_sync_to_async(conversation_of)(welcome["conversation"])
    return chat, welcome, conversation.pk


# --- who may open the console -------------------------------------------------------


@pytest.mark.parametrize("who", ["anonymous", "customer-like user (not staff)", "staff without the console permission"])
async def test_the_console_is_closed_before_accept_to_anyone_but_operators(who):
    # given
    user = {
        "anonymous": lambda: None,
        "customer-like user (not staff)": lambda: make_user(group="Operators", staff=False),
        "staff without the console permission": lambda: make_user(group=None),
    }[who]
    headers = [ORIGIN]
    made = await database_sync_to_async(user)()
    if made is not None:
        headers.append((b"cookie", await database_sync_to_async(session_cookie)(made)))
    # when
    communicator = WebsocketCommunicator(application, "/ws/console/", headers=headers)
    connected, code = await communicator.connect()
    # then
    assert not connected and code == 4403


async def test_an_operator_and_an_admin_are_let_in_with_the_queue_and_tickets(operator):
    communicator, hello = await console(operator)
    assert hello["operator"] == {"id": operator.pk, "name": "Ada"}
    assert isinstance(hello["queue"], list) and isinstance(hello["tickets"], list) and hello["mine"] == []
    admin = await database_sync_to_async(make_user)(group="Admins")
    other, _ = await console(admin)
    await communicator.disconnect()
    await other.disconnect()


async def test_a_customer_socket_sending_console_frames_is_refused_and_kept(operator, caplog):
    chat, welcome = await customer()
    for frame in (
        {"type": "claim", "conversation": 1},
        {"type": "reply", "conversation": 1, "text": "I am an operator"},
        {"type": "status", "status": "available"},
    ):
        await chat.send_json_to(frame)
        error = await until(chat, "error")
        assert error["code"] == "bad_request"
    assert "console frame" in caplog.text
    await chat.send_json_to({"type": "message", "id": "still-here", "text": "where is my order", "sender": "operator"})
    message = None
    for _ in range(100):
        message = await database_sync_to_async(
            Message.objects.filter(conversation__token=welcome["conversation"], client_id="still-here").first
        )()
        if message:
            break
        await asyncio.sleep(0.05)
    assert message is not None and message.sender == "customer" and message.operator_id is None
    await chat.disconnect()


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "claim"},
        {"type": "claim", "conversation": "7"},
        {"type": "reply", "conversation": 1, "text": ""},
        {"type": "end", "conversation": 1, "to": "nowhere"},
        {"type": "status", "status": "asleep"},
        {"type": "typing", "conversation": 1, "typing": "yes"},
        {"type": "search", "q": 5},
        {"type": "launch"},
    ],
)
async def test_bad_console_frames_get_an_error_and_the_connection_stays(operator, frame):
    communicator, _ = await console(operator, available=False)
    await communicator.send_json_to(frame)
    error = await until(communicator, "error")
    assert error["code"] in ("bad_request", "invalid", "not_yours", "not_found") and error["detail"]
    await communicator.send_json_to({"type": "tickets"})
    assert (await until(communicator, "tickets"))["type"] == "tickets"
    await communicator.disconnect()


# --- nobody available -----------------------------------------------------------------


async def test_with_nobody_available_the_customer_is_told_and_can_leave_a_message(operator):
    # given: an operator's console is open but they are away
    desk, _ = await console(operator, available=False)
    chat, welcome = await customer()
    # when
    await chat.send_json_to({"type": "handoff_request"})
    # then: no promise, an honest status and the offer of a message
    status = await until(chat, "handoff")
    assert status["status"] == "unavailable" and status["reason"] == "busy"
    assert "Leave us a message" in status["text"]
    conversation = await database_sync_to_async(conversation_of)(welcome["conversation"])
    assert conversation.owner == Conversation.Owner.BOT

    # when: bad forms
    bad = [
        ({"contact": "not-an-address@", "text": "call me"}, "contact"),
        ({"contact": "ada@example.com", "text": "   "}, "text"),
        ({"contact": "", "text": "hello"}, "contact"),
        ({"contact": "ada@example.com", "text": "x" * 2001}, "text"),
    ]
    for fields, field in bad:
        await chat.send_json_to({"type": "leave_message", "id": field, **fields})
        error = await until(chat, "error")
        assert error["field"] == field and error["detail"]
    await chat.send_json_to({"type": "leave_message", "contact": "a@b.co", "text": "y" * 100_000})
    assert (await until(chat, "error"))["code"] == "too_long"
    assert not await database_sync_to_async(Ticket.objects.filter(conversation=conversation).exists)()

    # when: a good one, with script in it
    script = '<img src=x onerror="window.pwned=1">'
    await chat.send_json_to(
        {"type": "leave_message", "id": "t1", "contact": "+44 20 7946 0958", "text": f"My parcel {script}"}
    )
    # then: a ticket, in the operators' consoles at once
    received = await until(chat, "ticket")
    assert received["status"] == "received" and received["reply_to"] == "t1"
    pushed = await until(desk, "ticket")
    assert pushed["ticket"]["text"] == f"My parcel {script}" and pushed["ticket"]["contact"] == "+44 20 7946 0958"
    ticket = await database_sync_to_async(Ticket.objects.get)(conversation=conversation)
    handoff = await database_sync_to_async(Handoff.objects.get)(conversation=conversation)
    assert handoff.outcome == Handoff.Outcome.LEFT_MESSAGE and ticket.status == Ticket.Status.OPEN
    # the contact is in its own field, never in the conversation's messages
    texts = await database_sync_to_async(lambda: list(conversation.messages.values_list("text", flat=True)))()
    assert not any("7946" in text for text in texts)
    await desk.send_json_to({"type": "ticket_done", "ticket": ticket.pk})
    assert (await until(desk, "ticket"))["ticket"]["status"] == "done"
    await chat.disconnect()
    await desk.disconnect()


async def test_outside_business_hours_the_customer_is_told_when_people_are_back(operator):
    from chatbot.console.models import OpeningPeriod, Schedule

    def closed_now() -> Schedule:
        import datetime as dt

        from django.utils import timezone

        schedule = Schedule.objects.create(time_zone="Asia/Shanghai")
        tomorrow = (timezone.now().astimezone(dt.timezone(dt.timedelta(hours=8))) + dt.timedelta(days=1)).weekday()
        OpeningPeriod.objects.create(schedule=schedule, weekday=tomorrow, opens=dt.time(9), closes=dt.time(9, 1))
        return schedule

    schedule = await database_sync_to_async(closed_now)()
    try:
        desk, _ = await console(operator)
        chat, _ = await customer()
        await chat.send_json_to({"type": "handoff_request"})
        status = await until(chat, "handoff")
        assert status["status"] == "unavailable" and status["reason"] == "closed"
        assert status["back_at"].endswith("+08:00") and "09:00" in status["text"]
        await chat.disconnect()
        await desk.disconnect()
    finally:
        await database_sync_to_async(schedule.delete)()


# --- a person takes over ---------------------------------------------------------------


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:  # noqa: ANN001
    """The ids of the customer messages sent to the bot (the answer task is still queued for real)."""
    ids: list[int] = []
    real = conversation_services.answer_enqueue
    monkeypatch.setattr(
        conversation_services, "answer_enqueue", lambda message_id: (ids.append(message_id), real(message_id))
    )
    return ids


async def until_enqueued(enqueued: list[int], count: int) -> None:
    for _ in range(100):
        if len(enqueued) >= count:
            break
        await asyncio.sleep(0.05)
    assert len(enqueued) == count


async def test_an_operator_takes_over_and_the_bot_is_muted(operator, enqueued):
    # given: an available operator, and a customer who asks for a person
    desk, _ = await console(operator)
    chat, welcome, conversation_id = await waiting_customer()
    queue = await until(desk, "queue")
    waiting = next(item for item in queue["conversations"] if item["conversation"] == conversation_id)
    assert waiting["reason"] == "button" and waiting["position"] == 1

    # when: the operator claims it
    await desk.send_json_to({"type": "claim", "id": "c1", "conversation": conversation_id})
    # then: the customer sees who joined, the operator gets the transcript
    assert (await until(desk, "claimed"))["reply_to"] == "c1"
    opened = await until(desk, "conversation", conversation=conversation_id)
    assert opened["owner"] == "operator" and opened["agent"] == "Ada"
    assert (await until(chat, "handoff", status="joined"))["agent"] == "Ada"

    # when: the customer writes; then: it reaches the operator and no answer task is queued
    await chat.send_json_to({"type": "typing", "typing": True})
    assert (await until(desk, "typing"))["typing"] is True
    await chat.send_json_to({"type": "message", "id": "q1", "text": "My parcel arrived broken"})
    pushed = await until(desk, "customer_message", conversation=conversation_id)
    assert pushed["message"]["text"] == "My parcel arrived broken"
    assert enqueued == []
    stored = await database_sync_to_async(Message.objects.get)(conversation_id=conversation_id, client_id="q1")
    assert stored.for_person

    # when: the operator types and replies; then: the customer sees a person's words
    await desk.send_json_to({"type": "typing", "conversation": conversation_id, "typing": True})
    assert (await until(chat, "typing"))["agent"] == "Ada"
    await desk.send_json_to(
        {"type": "reply", "id": "r1", "conversation": conversation_id, "text": "Sorry! A new one ships today."}
    )
    said = await until(chat, "agent_message")
    assert said["text"] == "Sorry! A new one ships today." and said["agent"] == "Ada"
    assert (await until(desk, "sent"))["reply_to"] == "r1"

    # then: the operator's answer is a suggested pair for review
    suggestion = await database_sync_to_async(ReviewItem.objects.get)(operator_answer_id=said["id"])
    assert (suggestion.kind, suggestion.text, suggestion.status) == ("suggested", "My parcel arrived broken", "pending")
    assert suggestion.needs_review

    # when: the customer reloads; then: the thread and the status are back
    await chat.disconnect()
    chat, again = await customer(welcome["conversation"])
    assert {"role": "agent", "id": said["id"], "text": said["text"], "agent": "Ada", "at": said["at"]} in again[
        "history"
    ]
    assert (await until(chat, "handoff"))["status"] == "joined"

    # when: the operator ends it; then: the customer is asked for a rating, which is stored for the operator
    await desk.send_json_to({"type": "end", "conversation": conversation_id, "to": "bot"})
    ended = await until(chat, "handoff", status="ended")
    assert ended["rate"] is True and ended["to"] == "bot"
    await chat.send_json_to({"type": "rating", "score": 9})
    assert (await until(chat, "error"))["field"] == "score"
    await chat.send_json_to({"type": "rating", "score": 5, "comment": "quick and kind"})
    await until(chat, "rating")
    handoff = await database_sync_to_async(Handoff.objects.get)(conversation_id=conversation_id)
    assert (handoff.outcome, handoff.rating, handoff.rated_operator_id) == ("resolved", 5, operator.pk)
    assert handoff.claimed_at and handoff.first_response_at and handoff.ended_at
    await chat.send_json_to({"type": "rating", "score": 4})
    assert (await until(chat, "error"))["code"] == "bad_request"  # once per conversation with a person

    # and: the bot answers again
    await chat.send_json_to({"type": "message", "id": "q2", "text": "where is my order"})
    await until_enqueued(enqueued, 1)
    handed_back = await database_sync_to_async(Message.objects.get)(pk=enqueued[0])
    assert handed_back.conversation_id == conversation_id  # handed back: the same thread goes on with the bot
    await chat.disconnect()
    await desk.disconnect()


async def test_closing_is_not_handing_back_the_next_message_starts_a_new_conversation(operator, enqueued):
    # given: an operator holds a conversation and has answered
    desk, _ = await console(operator)
    chat, welcome, conversation_id = await waiting_customer()
    await desk.send_json_to({"type": "claim", "conversation": conversation_id})
    await until(chat, "handoff", status="joined")
    await chat.send_json_to({"type": "message", "id": "q1", "text": "My parcel arrived broken"})
    await until(desk, "customer_message", conversation=conversation_id)
    await desk.send_json_to({"type": "reply", "conversation": conversation_id, "text": "A new one ships today."})
    await until(chat, "agent_message")

    # when: the operator closes it
    await desk.send_json_to({"type": "end", "conversation": conversation_id, "to": "closed"})
    # then: the customer is told it is closed and asked for a rating, which goes to the closed conversation
    ended = await until(chat, "handoff", status="ended")
    assert (ended["to"], ended["rate"], ended["agent"]) == ("closed", True, "Ada")
    await chat.send_json_to({"type": "rating", "id": "r1", "score": 4})
    await until(chat, "rating")
    handoff = await database_sync_to_async(Handoff.objects.get)(conversation_id=conversation_id)
    assert (handoff.outcome, handoff.ended_to, handoff.rating) == ("resolved", "closed", 4)

    # when: the customer reloads the closed conversation; then: its thread is shown, with no hand-off status
    await chat.disconnect()
    chat, again = await customer(welcome["conversation"])
    assert again["resumed"] is True and any(turn["role"] == "agent" for turn in again["history"])

    # when: the customer writes again; then: a new conversation starts, and the bot answers it
    await chat.send_json_to({"type": "message", "id": "q2", "text": "where is my order"})
    fresh = await until(chat, "welcome")
    assert (fresh["resumed"], fresh["history"], fresh["after"]) == (False, [], "closed")
    assert fresh["conversation"] != welcome["conversation"]
    await until_enqueued(enqueued, 1)
    asked = await database_sync_to_async(Message.objects.select_related("conversation").get)(pk=enqueued[0])
    assert asked.conversation.token == fresh["conversation"] and asked.conversation.owner == "bot"
    assert not asked.for_person
    # and: the closed conversation and its record are unchanged; a second message stays in the new one
    assert not await database_sync_to_async(
        Message.objects.filter(conversation_id=conversation_id, client_id="q2").exists
    )()
    handoff = await database_sync_to_async(Handoff.objects.get)(conversation_id=conversation_id)
    assert (handoff.outcome, handoff.ended_to) == ("resolved", "closed")
    await chat.send_json_to({"type": "message", "id": "q3", "text": "and how do returns work"})
    await until_enqueued(enqueued, 2)
    later = await database_sync_to_async(Message.objects.get)(pk=enqueued[1])
    assert later.conversation_id == asked.conversation_id
    await chat.disconnect()
    await desk.disconnect()


async def test_an_operator_who_reloads_gets_their_conversations_back(operator):
    desk, _ = await console(operator)
    chat, _, conversation_id = await waiting_customer()
    await desk.send_json_to({"type": "claim", "conversation": conversation_id})
    await until(desk, "claimed")
    await desk.disconnect()
    again, hello = await console(operator)
    assert [c["conversation"] for c in hello["mine"]] == [conversation_id]
    await chat.disconnect()
    await again.disconnect()


async def test_transfer_to_another_available_operator_and_notes_stay_with_staff(operator):
    other = await database_sync_to_async(make_user)(first_name="Grace")
    desk, _ = await console(operator)
    desk2, _ = await console(other)
    chat, _, conversation_id = await waiting_customer()
    await desk.send_json_to({"type": "claim", "conversation": conversation_id})
    await until(desk, "claimed")
    await desk.send_json_to({"type": "note", "conversation": conversation_id, "text": "VIP <b>customer</b>"})
    assert (await until(desk2, "note"))["note"]["text"] == "VIP <b>customer</b>"
    await desk.send_json_to({"type": "transfer", "conversation": conversation_id, "to": other.pk})
    assert (await until(desk, "transferred"))["to"] == other.pk
    assert (await until(desk2, "conversation", conversation=conversation_id))["notes"][0]["author"] == "Ada"
    assert (await until(chat, "handoff", status="joined", agent="Grace"))["agent"] == "Grace"
    # the first operator no longer holds it
    await desk.send_json_to({"type": "reply", "conversation": conversation_id, "text": "still me"})
    assert (await until(desk, "error"))["code"] == "not_yours"
    assert await chat.receive_nothing(timeout=0.3) or True  # the note never reached the customer:
    while not await chat.receive_nothing(timeout=0.2):
        assert (await chat.receive_json_from())["type"] != "note"
    for socket in (chat, desk, desk2):
        await socket.disconnect()


async def test_canned_answers_are_searched_in_both_languages(operator):
    desk, _ = await console(operator, available=False)
    await desk.send_json_to({"type": "search", "q": "refund"})
    english = await until(desk, "canned")
    assert english["results"] and all(r["language"] == "en" for r in english["results"][:1])
    await desk.send_json_to({"type": "search", "q": "退货"})
    chinese = await until(desk, "canned")
    assert chinese["results"] and any(r["language"] == "zh" for r in chinese["results"])
    await desk.disconnect()


async def test_an_operator_gone_past_the_grace_period_loses_the_conversation_and_the_customer_is_told(
    operator, settings
):
    settings.CHATBOT_HANDOFF_GRACE_SECONDS = 1.0
    desk, _ = await console(operator)
    chat, _, conversation_id = await waiting_customer()
    await desk.send_json_to({"type": "claim", "conversation": conversation_id})
    await until(chat, "handoff", status="joined")
    # when: the console goes away and does not come back
    await desk.disconnect()
    # then: after the grace period the conversation waits again, and the customer knows
    back = await until(chat, "handoff", status="waiting", timeout=6)
    assert back.get("agent_left") is True or back.get("position") == 1
    conversation = await database_sync_to_async(Conversation.objects.get)(pk=conversation_id)
    assert conversation.owner == Conversation.Owner.QUEUE and conversation.operator_id is None
    await chat.disconnect()


def test_two_operators_claiming_at_once_exactly_one_wins():
    # given: a waiting conversation and two operators
    first, second = make_user(), make_user()
    conversation = Conversation.objects.create(owner=Conversation.Owner.QUEUE)
    Handoff.objects.create(conversation=conversation, reason="button", outcome=Handoff.Outcome.WAITING)
    barrier, results = threading.Barrier(2), {}

    def claim(user: User) -> None:
        from django.db import connection

        barrier.wait()
        try:
            services.conversation_claim(conversation_id=conversation.pk, user=user)
            results[user.pk] = "won"
        except services.ConsoleError as error:
            results[user.pk] = error.code
        finally:
            connection.close()

    # when: both claim at the same moment, each on its own PostgreSQL connection
    threads = [threading.Thread(target=claim, args=(user,)) for user in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    # then
    assert sorted(results.values()) == ["taken", "won"]
    conversation.refresh_from_db()
    winner = next(uid for uid, result in results.items() if result == "won")
    assert conversation.owner == Conversation.Owner.OPERATOR and conversation.operator_id == winner


# --- automatic hand-off and the wait limit ------------------------------------------------


def available_operator() -> User:
    user = make_user()
    presence.presence_touch(user_id=user.pk)
    presence.presence_set_status(user_id=user.pk, status=presence.AVAILABLE)
    return user


def ask(conversation: Conversation, text: str) -> Message:
    message, _ = conversation_services.message_receive(
        conversation=conversation, client_id=uuid.uuid4().hex, text=text, suggestion=None, enqueue=lambda _: None
    )
    return message_answer(message.pk)


def test_three_not_sure_answers_in_a_row_ask_for_a_person_once():
    available_operator()
    conversation = Conversation.objects.create()
    outcomes = [ask(conversation, UNANSWERABLE).outcome for _ in range(3)]
    assert outcomes == ["unsure", "unsure", "unsure"]
    conversation.refresh_from_db()
    assert conversation.owner == Conversation.Owner.QUEUE
    assert Handoff.objects.get(conversation=conversation).reason == Handoff.Reason.UNSURE


def test_a_thumbs_down_then_a_not_sure_answer_asks_for_a_person():
    available_operator()
    conversation = Conversation.objects.create()
    answer = ask(conversation, "where is my order")
    assert answer.outcome == "answer"
    conversation_services.feedback_record(conversation=conversation, message_id=answer.pk, helpful=False)
    assert ask(conversation, UNANSWERABLE).outcome == "unsure"
    assert Handoff.objects.get(conversation=conversation).reason == Handoff.Reason.THUMBS_DOWN


def test_a_handoff_pair_with_nobody_available_never_promises_a_person():
    conversation = Conversation.objects.create()
    reply = ask(conversation, "Can I talk to a human agent?")
    assert reply.outcome == "handoff"
    assert reply.text == services.UNAVAILABLE_TEXT["busy"]["en"]
    assert "shortly" not in reply.text
    conversation.refresh_from_db()
    assert conversation.owner == Conversation.Owner.BOT


def test_a_handoff_pair_with_someone_available_queues_the_conversation():
    available_operator()
    conversation = Conversation.objects.create()
    reply = ask(conversation, "请帮我接通真人客服")
    assert reply.outcome == "handoff"
    conversation.refresh_from_db()
    assert conversation.owner == Conversation.Owner.QUEUE and conversation.handed_off
    assert Handoff.objects.get(conversation=conversation).reason == Handoff.Reason.ASKED


def test_a_customer_waiting_past_the_limit_is_offered_to_leave_a_message(settings):
    settings.CHATBOT_HANDOFF_WAIT_LIMIT_SECONDS = 0.3
    available_operator()
    conversation = Conversation.objects.create()
    assert services.handoff_begin(conversation_id=conversation.pk, reason="button")["status"] == "waiting"
    conversation.refresh_from_db()
    assert services.customer_status(conversation=conversation)["leave_message"] is False
    time.sleep(0.4)
    assert services.customer_status(conversation=conversation)["leave_message"] is True


async def test_a_customer_who_leaves_the_queue_is_recorded_as_abandoned_and_a_reload_is_not(settings):
    settings.CHATBOT_HANDOFF_GRACE_SECONDS = 0.5
    await database_sync_to_async(available_operator)()
    chat, welcome, conversation_id = await waiting_customer()
    # a reload within the grace period keeps the place
    await chat.disconnect()
    chat, _ = await customer(welcome["conversation"])
    assert (await until(chat, "handoff"))["status"] == "waiting"
    await asyncio.sleep(1.0)
    conversation = await database_sync_to_async(Conversation.objects.get)(pk=conversation_id)
    assert conversation.owner == Conversation.Owner.QUEUE
    # leaving for longer does not
    await chat.disconnect()
    await asyncio.sleep(1.2)
    conversation = await database_sync_to_async(Conversation.objects.get)(pk=conversation_id)
    handoff = await database_sync_to_async(Handoff.objects.get)(conversation_id=conversation_id)
    assert conversation.owner == Conversation.Owner.BOT and handoff.outcome == Handoff.Outcome.ABANDONED
