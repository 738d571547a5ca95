"""A customer and an operator in two Chromium contexts on the production-mode stack (daphne + worker)."""

import json
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.test import Client
from playwright.sync_api import expect, sync_playwright

from chatbot.console.models import Handoff, Ticket
from chatbot.conversations.models import Message
from chatbot.review.models import ReviewItem
from tests.e2e import CHROMIUM, CHROMIUM_ARGS

DOCS = Path(__file__).resolve().parent.parent / "docs"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.usefixtures("committed_db"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make browser)"),
]


@pytest.fixture(autouse=True)
def no_operators_present() -> None:
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(f"{settings.REDIS_PREFIX}chatbot:console:*"):
        client.delete(key)


@pytest.fixture
def browser(stack, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def operator_page(browser, stack, *, first_name: str = "Ada"):
    user = User.objects.create_user(
        username=f"op-{uuid.uuid4().hex[:8]}", password=uuid.uuid4().hex, is_staff=True, first_name=first_name
    )
    user.groups.add(Group.objects.get(name="Operators"))
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport={"width": 1400, "height": 860}, locale="en-US")
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": stack.origin,
            }
        ]
    )
    page = context.new_page()
    page.goto(f"{stack.origin}/console/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "online", timeout=15000)
    return page, user


def customer_page(browser, stack, *, locale: str = "en-US"):
    context = browser.new_context(viewport={"width": 900, "height": 820}, locale=locale)
    page = context.new_page()
    page.goto(f"{stack.origin}/")
    expect(page.locator("#conn-state")).to_have_attribute("data-state", "online", timeout=15000)
    return page


def wait_for(condition, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_customer_asks_for_a_person_and_an_operator_takes_over(browser, stack):
    # given: an available operator, and a customer on the chat page
    desk, operator = operator_page(browser, stack)
    desk.click("#set-available")
    expect(desk.locator("#set-available")).to_have_attribute("aria-pressed", "true")
    chat = customer_page(browser, stack)
    chat.fill("#chat-input", "where is my parcel")
    chat.keyboard.press("Enter")
    expect(chat.locator(".msg.bot")).to_have_count(1, timeout=20000)

    # when: the customer asks for a person
    chat.click("#talk-to-person")
    # then: an honest, live status, and the conversation arrives in the console's queue without a reload
    expect(chat.locator("#handoff-status")).to_contain_text("Waiting for a person", timeout=10000)
    expect(chat.locator("#handoff-status")).to_contain_text("number 1")
    card = desk.locator(".queue-card")
    expect(card).to_have_count(1, timeout=10000)
    expect(card.locator(".reason")).to_contain_text("asked")
    expect(card.locator(".preview li")).to_have_count(2)  # the question and the bot's answer
    DOCS.mkdir(exist_ok=True)
    desk.screenshot(path=str(DOCS / "console-queue.png"))

    # when: the operator claims it
    card.locator(".claim").click()
    # then: the customer sees who joined; the operator has the transcript
    expect(chat.locator("#handoff-status")).to_contain_text("Ada from our team has joined", timeout=10000)
    expect(desk.locator("#reply-text")).to_be_visible()
    expect(desk.locator(".transcript .role-bot .confidence")).to_contain_text("confidence 0.")

    # when: the customer types and writes; then: the operator sees both, and the bot stays silent
    chat.locator("#chat-input").press_sequentially("My parcel arrived broken", delay=20)
    expect(desk.locator("#customer-typing")).to_have_text("The customer is typing…", timeout=10000)
    chat.keyboard.press("Enter")
    expect(desk.locator(".transcript .role-customer .line-text").last).to_have_text(
        "My parcel arrived broken", timeout=10000
    )

    # when: the operator searches canned answers in Chinese, then types a reply of their own
    desk.fill(".canned-search", "退货")
    expect(desk.locator(".canned-pick").first).to_be_visible(timeout=10000)
    desk.screenshot(path=str(DOCS / "console-canned.png"))
    desk.locator(".canned-pick").first.click()
    expect(desk.locator("#reply-text")).not_to_have_value("")
    desk.fill("#reply-text", "")
    desk.locator("#reply-text").press_sequentially("Sorry about that! A replacement ships today.", delay=15)
    expect(chat.locator(".agent-typing")).to_contain_text("Ada is typing", timeout=10000)
    desk.locator("#reply-text").press("Enter")
    # then: the customer sees a person's words, marked as a person
    agent = chat.locator(".msg.agent").last
    expect(agent.locator(".msg-text")).to_have_text("Sorry about that! A replacement ships today.", timeout=10000)
    expect(agent.locator(".person-badge")).to_have_text("person")
    desk.screenshot(path=str(DOCS / "console-conversation.png"))
    chat.screenshot(path=str(DOCS / "chat-person.png"))
    chat.locator(".lang-btn[data-lang='zh']").click()
    expect(chat.locator("#handoff-status")).to_contain_text("客服 Ada 已加入对话")
    chat.screenshot(path=str(DOCS / "chat-person-zh.png"))
    chat.locator(".lang-btn[data-lang='en']").click()
    asked = Message.objects.get(conversation__operator=operator, sender="customer", text="My parcel arrived broken")
    assert asked.for_person and not Message.objects.filter(reply_to=asked).exists()
    assert chat.locator(".msg.bot").count() == 1  # only the answer from before the hand-off

    # when: the operator closes it; then: the customer rates it
    desk.click(".end-closed")
    expect(chat.locator("#handoff-status")).to_contain_text("has closed this conversation", timeout=10000)
    chat.locator(".rating .star[data-score='5']").click()
    chat.fill(".rating-comment", "Quick and kind")
    chat.click(".rating-send")
    expect(chat.locator(".rating-done")).to_be_visible(timeout=10000)
    handoff = Handoff.objects.get(conversation_id=asked.conversation_id)
    assert (handoff.outcome, handoff.rating, handoff.rated_operator_id) == ("resolved", 5, operator.pk)
    # and: the operator's answer waits in the review queue as a suggested pair
    suggestion = ReviewItem.objects.get(message=asked)
    assert suggestion.kind == "suggested" and suggestion.needs_review
    assert suggestion.operator_answer.text == "Sorry about that! A replacement ships today."


def test_with_nobody_available_the_customer_leaves_a_message_that_becomes_a_ticket(browser, stack):
    # given: the only operator is away
    desk, _ = operator_page(browser, stack, first_name="Grace")
    chat = customer_page(browser, stack)
    script = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    chat.fill("#chat-input", f"Where is it {script}")
    chat.keyboard.press("Enter")
    expect(chat.locator(".msg.bot")).to_have_count(1, timeout=20000)
    # when
    chat.click("#talk-to-person")
    # then: no promise; the form is offered
    expect(chat.locator("#handoff-status")).to_contain_text("Nobody from our team is available", timeout=10000)
    form = chat.locator(".leave-message")
    expect(form).to_be_visible()

    # when: empty and invalid input
    form.locator(".lm-submit").click()
    expect(form.locator(".field-error").first).to_contain_text("valid e-mail address or phone")
    form.locator(".lm-contact").fill("ada@")
    form.locator(".lm-text").fill("hello")
    form.locator(".lm-submit").click()
    expect(form.locator(".field-error").first).to_be_visible()
    assert Ticket.objects.count() == 0 or not Ticket.objects.filter(text="hello").exists()

    # when: script in every field the server accepts
    form.locator(".lm-contact").fill("+44 20 7946 0958")
    form.locator(".lm-text").fill(f"Broken parcel {script}")
    form.locator(".lm-submit").click()
    expect(chat.locator(".leave-done")).to_be_visible(timeout=10000)

    # then: a ticket in the console, shown as text, never run
    desk.click(".tabs button[data-tab='tickets']")
    ticket = desk.locator(".ticket-card", has_text="Broken parcel")  # other tests' tickets may be listed too
    expect(ticket.locator(".ticket-text")).to_have_text(f"Broken parcel {script}", timeout=10000)
    ticket.locator("button", has_text="Transcript").click()
    expect(desk.locator(".thread-head")).to_contain_text("read only")
    expect(desk.locator(".transcript .role-customer .line-text").first).to_have_text(f"Where is it {script}")
    desk.fill(".note-form textarea", f"Call back {script}")
    desk.click(".note-form button")
    expect(desk.locator(".note-text")).to_have_text(f"Call back {script}", timeout=10000)
    ticket.locator("button", has_text="Mark done").click()
    expect(ticket).to_have_class("card ticket-card status-done", timeout=10000)
    assert desk.evaluate("window.pwned === undefined")
    assert Ticket.objects.get(text=f"Broken parcel {script}").status == "done"


ENGRAVE_Q = "Can you engrave a name on the watch I ordered?"
ENGRAVE_A = "Yes: engraving is free. Write the name in the order notes within 2 hours of ordering."
ENGRAVE_PARAPHRASE = "could you engrave a name on my watch"


def test_an_operators_answer_accepted_in_review_teaches_the_bot_a_paraphrase(stack):
    from django.core.management import call_command
    from websockets.sync.client import connect

    from chatbot.registry.models import ModelVersion
    from chatbot.registry.services import model_version_activate
    from tests.e2e import ws_open
    from tests.test_learning_e2e import ask_served_by

    # given: a customer handed to an operator asks what the knowledge base cannot answer, and the operator answers
    user = User.objects.create_user(username=f"op-{uuid.uuid4().hex[:8]}", is_staff=True, first_name="Lin")
    user.groups.add(Group.objects.get(name="Operators"))
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    before = ModelVersion.objects.get(is_active=True)
    with connect(
        stack.origin.replace("http", "ws") + "/ws/console/", origin=stack.origin, additional_headers={"Cookie": cookie}
    ) as desk:
        desk.recv(timeout=10)
        desk.send('{"type": "status", "status": "available"}')
        chat, _ = ws_open(stack)
        chat.send('{"type": "handoff_request"}')
        conversation = None
        while conversation is None:
            frame = json.loads(desk.recv(timeout=10))
            if frame["type"] == "queue" and frame["conversations"]:
                conversation = frame["conversations"][0]["conversation"]
        desk.send(f'{{"type": "claim", "conversation": {conversation}}}')
        chat.send(json.dumps({"type": "message", "id": "e1", "text": ENGRAVE_Q}))
        wait_for(lambda: Message.objects.filter(conversation_id=conversation, client_id="e1").exists(), "stored")
        desk.send(json.dumps({"type": "reply", "conversation": conversation, "text": ENGRAVE_A}))
        wait_for(lambda: ReviewItem.objects.filter(question=ENGRAVE_Q, kind="suggested").exists(), "no suggested pair")
        desk.send(f'{{"type": "end", "conversation": {conversation}, "to": "bot"}}')
        chat.close()

    # when: a reviewer finds it in the review queue with the operator's words, accepts it (editing the category),
    # and the model is retrained
    suggestion = ReviewItem.objects.get(question=ENGRAVE_Q, kind="suggested")
    admin = Client()
    admin.force_login(User.objects.create_superuser(username=f"admin-{uuid.uuid4().hex[:6]}", password="x-unused-1"))
    queue = admin.get("/admin/review/reviewitem/?kind=suggested").content.decode()
    assert ENGRAVE_Q in queue and ENGRAVE_A in queue and "suggested pair" in queue
    offered = admin.post(
        "/admin/review/reviewitem/", {"action": "create_pair", "_selected_action": [suggestion.pk]}
    ).content.decode()
    assert ENGRAVE_A in offered  # the form starts from the operator's answer
    response = admin.post(
        "/admin/review/reviewitem/",
        {
            "action": "create_pair",
            "_selected_action": [suggestion.pk],
            "apply": "1",
            "question": ENGRAVE_Q,
            "answer": ENGRAVE_A,
            "language": "en",
            "category": "orders",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    suggestion.refresh_from_db()
    assert suggestion.status == "new_pair" and suggestion.pair.answer_texts() == {"en": ENGRAVE_A}
    call_command("retrain", wait=True, timeout=900)
    new = ModelVersion.objects.get(is_active=True)
    try:
        assert new != before
        # then: the bot answers a paraphrase with the operator's words
        chat, _ = ws_open(stack)
        answer = ask_served_by(chat, ENGRAVE_PARAPHRASE, new)
        assert answer["outcome"] == "answer" and answer["text"] == ENGRAVE_A, answer
        chat.close()
    finally:  # later tests of the session start from the demo's model, as they would alone
        model_version_activate(before)


def test_a_web_restart_while_a_person_holds_the_conversation_loses_nothing(stack):
    import subprocess
    import sys

    from websockets.sync.client import connect

    from tests.conftest import ROOT, subprocess_env, wait_for_http
    from tests.e2e import ws_open

    def console():
        ws = connect(
            stack.origin.replace("http", "ws") + "/ws/console/",
            origin=stack.origin,
            additional_headers={"Cookie": cookie},
        )
        hello = json.loads(ws.recv(timeout=10))
        return ws, hello

    def next_frame(ws, kind: str, **match: object) -> dict:
        deadline = time.monotonic() + 15
        while True:
            frame = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if frame["type"] == kind and all(frame.get(k) == v for k, v in match.items()):
                return frame

    user = User.objects.create_user(username=f"op-{uuid.uuid4().hex[:8]}", is_staff=True, first_name="Max")
    user.groups.add(Group.objects.get(name="Operators"))
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    # given: a person holds the conversation
    desk, _ = console()
    desk.send(json.dumps({"type": "status", "status": "available"}))
    chat, welcome = ws_open(stack)
    chat.send(json.dumps({"type": "handoff_request"}))
    conversation = next_frame(desk, "queue")["conversations"][0]["conversation"]
    desk.send(json.dumps({"type": "claim", "conversation": conversation}))
    next_frame(chat, "handoff", status="joined")
    chat.send(json.dumps({"type": "message", "id": "before", "text": "before the restart"}))
    next_frame(desk, "customer_message")

    # when: the web process is killed and started again
    stack.web.kill()
    stack.web.wait(timeout=10)
    for ws in (desk, chat):
        ws.close()
    stack.web = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(stack.port), "chatbot.asgi:application"],
        cwd=ROOT,
        env=subprocess_env(),
        stdout=open(stack.logs / "web-restarted.log", "ab"),
        stderr=subprocess.STDOUT,
    )
    wait_for_http(stack.port)

    # then: both sides reconnect where they were, and messages flow both ways
    desk, hello = console()
    assert [c["conversation"] for c in hello["mine"]] == [conversation]
    assert hello["mine"][0]["transcript"][-1]["text"] == "before the restart"
    desk.send(json.dumps({"type": "reply", "conversation": conversation, "text": "sent while you were away"}))
    next_frame(desk, "sent")
    chat, again = ws_open(stack, token=welcome["conversation"])
    assert next_frame(chat, "handoff")["status"] == "joined"
    assert [item["text"] for item in again["history"] if item["role"] == "agent"] == ["sent while you were away"]
    chat.send(json.dumps({"type": "message", "id": "after", "text": "after the restart"}))
    assert next_frame(desk, "customer_message")["message"]["text"] == "after the restart"
    desk.send(json.dumps({"type": "reply", "conversation": conversation, "text": "still here"}))
    assert next_frame(chat, "agent_message")["text"] == "still here"
    assert Message.objects.filter(conversation_id=conversation).count() == 4
    for ws in (desk, chat):
        ws.close()
