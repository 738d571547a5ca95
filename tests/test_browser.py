"""The chat page in Debian's Chromium, driven by Playwright, against the running stack."""

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from chatbot.conversations.models import Message
from chatbot.knowledge.models import QAPair
from chatbot.knowledge.text import answer_plain, detect_language
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
    answer = answer_plain(QAPair.objects.get(question__startswith="Where is my order").answer_texts()["en"])
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
    expect(page.locator(".msg.bot .msg-text").last).to_have_text(answer_plain(pair.answer_texts()["en"]), timeout=20000)

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
    # given: a topic and one of the ways customers ask it in Chinese
    pair = QAPair.objects.get(alternates__text="怎么申请退货？")
    asked = [text for text in pair.alternates.values_list("text", flat=True) if detect_language(text) == "zh"][1]
    # when
    page.locator(".lang-btn[data-lang='zh']").click()
    ask(page, asked)
    # then: its Chinese answer, under the Chinese interface
    expect(page.locator(".msg.bot .msg-text").last).to_have_text(answer_plain(pair.answer_texts()["zh"]), timeout=20000)
    expect(page.locator("#chat-input")).to_have_attribute("placeholder", re.compile("[\u4e00-\u9fff]"))


def test_customer_and_answer_text_can_never_run_script(page):
    pair = QAPair.objects.get(question__startswith="Where is my order").translations.get(language="en")
    original = pair.text
    try:
        pair.text = 'Track it <img src=x onerror="window.pwned=1"><script>window.pwned=2</script> <a href="javascript:window.pwned=3">here</a>'
        pair.save()
        ask(page, '<img src=x onerror="window.pwned=4">')
        ask(page, "where is my parcel")
        expect(page.locator(".msg.bot .msg-text").last).to_contain_text("Track it", timeout=20000)
        page.locator(".msg.bot a").last.click() if page.locator(".msg.bot a").count() else None
        assert page.evaluate("window.pwned === undefined")
        assert page.locator(".msg.customer").filter(has_text='<img src=x onerror="window.pwned=4">').count() == 1
    finally:
        pair.text = original
        pair.save()


def test_one_topic_answers_an_english_and_a_chinese_question_each_in_its_language(page, stack, tmp_path):
    # given: a topic answered in both languages
    topic = QAPair.objects.get(question="What is your return policy?")
    answers = topic.answer_texts()
    # when: asked in English, then in Chinese
    ask(page, "What is your return policy?")
    expect(page.locator(".msg.bot .msg-text").last).to_have_text(answer_plain(answers["en"]), timeout=20000)
    ask(page, "退货政策是什么？")
    # then: the same topic answers each in its language, its follow-up buttons too
    expect(page.locator(".msg.bot .msg-text").last).to_have_text(answer_plain(answers["zh"]), timeout=20000)
    expect(page.locator(".msg.bot").last.locator(".chip", has_text="怎么申请退货？")).to_be_visible()
    page.wait_for_timeout(500)  # the answer's fade-in
    page.screenshot(path=str(tmp_path / "chat-one-topic.png"))
    # and the operator edits the two answers side by side on the pair's page
    from django.contrib.auth.models import User

    User.objects.filter(username="topic-admin").delete()
    User.objects.create_superuser("topic-admin", "a@example.com", "a-long-password-1")
    try:
        page.goto(f"{stack.origin}/admin/login/?next=/admin/knowledge/qapair/{topic.pk}/change/")
        page.fill("#id_username", "topic-admin")
        page.fill("#id_password", "a-long-password-1")
        page.click("input[type=submit]")
        texts = page.locator("textarea[name^='translations-'][name$='-text']:not([name*='__prefix__'])")
        expect(texts).to_have_count(2)
        assert [texts.nth(i).input_value() for i in range(2)] == [answers["en"], answers["zh"]]
        page.screenshot(path=str(tmp_path / "admin-pair-answers.png"), full_page=True)
    finally:
        User.objects.filter(username="topic-admin").delete()
