"""The chat page in Debian's Chromium, driven by Playwright, against the running stack."""

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from chatbot.conversations.models import Message
from chatbot.knowledge.models import QAPair
from chatbot.knowledge.text import answer_plain
from tests.e2e import CHROMIUM, CHROMIUM_ARGS, UNANSWERABLE

SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "chat.png"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.usefixtures("committed_db"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make browser)"),
]


@pytest.fixture
def page(stack, monkeypatch):
    # Playwright's sync API keeps an event loop in this thread; the ORM calls in these tests are
    # plain blocking calls between browser steps, as Django's docs allow for such clients.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1100, "height": 820}, locale="en-US")
        page = context.new_page()
        page.goto(f"{stack.origin}/")
        expect(page.locator("#conn-state")).to_have_attribute("data-state", "online", timeout=15000)
        yield page
        browser.close()


def ask(page, text: str) -> None:
    page.fill("#chat-input", text)
    page.keyboard.press("Enter")


def test_a_customer_asks_clicks_a_suggestion_and_thumbs_up(page):
    # given: the page is online
    answer = answer_plain(QAPair.objects.get(question__startswith="Where is my order").answer)
    # when: a customer asks a demo question
    ask(page, "where is my parcel")
    # then: the curated answer appears
    expect(page.locator(".msg.bot .msg-text").last).to_have_text(answer, timeout=20000)

    # when: a question the bot is not sure about
    ask(page, UNANSWERABLE)
    chip = page.locator(".chip").first
    expect(chip).to_be_visible(timeout=20000)
    chosen = chip.inner_text().strip()
    chip.click()
    # then: the chosen pair's answer comes back
    pair = QAPair.objects.filter(question=chosen).first()
    assert pair is not None, chosen
    expect(page.locator(".msg.bot .msg-text").last).to_have_text(answer_plain(pair.answer), timeout=20000)

    # when: thumbs up on the last answer
    page.locator(".msg.bot .thumb-up").last.click()
    expect(page.locator(".msg.bot .thumb-up").last).to_have_attribute("aria-pressed", "true")
    deadline = time.monotonic() + 10
    while not Message.objects.filter(pair=pair, helpful=True).exists():
        assert time.monotonic() < deadline, "feedback was not stored"
        time.sleep(0.1)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))


def test_chinese_question_gets_the_chinese_answer(page):
    # given: a Chinese pair and one of the ways customers ask it
    pair = QAPair.objects.get(question="怎么申请退货？")
    asked = pair.alternates.first().text
    # when
    page.locator(".lang-btn[data-lang='zh']").click()
    ask(page, asked)
    # then: its Chinese answer, under the Chinese interface
    expect(page.locator(".msg.bot .msg-text").last).to_have_text(answer_plain(pair.answer), timeout=20000)
    expect(page.locator("#chat-input")).to_have_attribute("placeholder", re.compile("[\u4e00-\u9fff]"))


def test_customer_and_answer_text_can_never_run_script(page):
    pair = QAPair.objects.get(question__startswith="Where is my order")
    original = pair.answer
    try:
        pair.answer = 'Track it <img src=x onerror="window.pwned=1"><script>window.pwned=2</script> <a href="javascript:window.pwned=3">here</a>'
        pair.save()
        ask(page, '<img src=x onerror="window.pwned=4">')
        ask(page, "where is my parcel")
        expect(page.locator(".msg.bot .msg-text").last).to_contain_text("Track it", timeout=20000)
        page.locator(".msg.bot a").last.click() if page.locator(".msg.bot a").count() else None
        assert page.evaluate("window.pwned === undefined")
        assert page.locator(".msg.customer").filter(has_text='<img src=x onerror="window.pwned=4">').count() == 1
    finally:
        pair.answer = original
        pair.save()
