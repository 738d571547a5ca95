"""The embedded widget on a shop's page served from another origin, and the admin dashboard, in Chromium."""

import functools
import gzip
import http.server
import json
import threading
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User
from playwright.sync_api import expect, sync_playwright

from chatbot.console.models import Ticket
from chatbot.conversations.models import Conversation
from chatbot.knowledge.models import QAPair
from chatbot.knowledge.text import answer_plain
from chatbot.sites.models import Site
from tests.conftest import free_port
from tests.e2e import CHROMIUM, CHROMIUM_ARGS, ws_ask, ws_open

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# The shop's page: a style sheet that unsets everything, everywhere, and then restyles what it can reach
HOSTILE_CSS = """
* { all: unset !important; }
html, body { display: block !important; background: #fdf6e3 !important; }
div, p, button, span { font: 40px/3 serif !important; color: red !important; letter-spacing: 9px !important; }
main { display: block !important; padding: 20px !important; }
"""
HOST_PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Shop</title><link rel="icon" href="data:,">
<style>{css}</style></head>
<body><main><h1>Lumen Store</h1><p>Spring sale on everything.</p></main>
<script src="{src}" data-site="{key}" async></script></body></html>"""

pytestmark = [
    pytest.mark.browser,
    pytest.mark.usefixtures("committed_db"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make browser)"),
]


class ShopPages:
    """Plain HTTP servers for a shop's pages, one per origin (127.0.0.2 and 127.0.0.3: not the product's host)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.servers = folder, []

    def serve(self, address: str) -> str:
        port = free_port()
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(self.folder))
        handler.log_message = lambda *args: None
        server = http.server.ThreadingHTTPServer((address, port), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers.append(server)
        return f"http://{address}:{port}"

    def page(self, name: str, *, src: str, key: str, lang: str = "en", css: str = HOSTILE_CSS) -> str:
        (self.folder / name).write_text(HOST_PAGE.format(src=src, key=key, lang=lang, css=css), encoding="utf-8")
        return name


@pytest.fixture(scope="module")
def shop(stack, tmp_path_factory, django_db_blocker):  # noqa: ANN001
    pages = ShopPages(tmp_path_factory.mktemp("shop"))
    listed, unlisted = pages.serve("127.0.0.2"), pages.serve("127.0.0.3")
    with django_db_blocker.unblock():
        site = Site.objects.create(
            name="Lumen Store",
            allowed_origins=listed,
            colour="#0f766e",
            greeting_en="Hi! Ask us anything.",
            greeting_zh="您好！有什么可以帮您？",
        )
        off = Site.objects.create(name="Closed shop", allowed_origins=listed, is_active=False)
    src = f"{stack.origin}/static/chat/widget.js"
    pages.page("index.html", src=src, key=site.key)
    pages.page("zh.html", src=src, key=site.key, lang="zh-CN")
    pages.page("plain.html", src=src, key=site.key, css="body { font-family: serif; }")
    pages.page("unknown.html", src=src, key="no-such-site")
    pages.page("inactive.html", src=src, key=off.key)
    yield {"listed": listed, "unlisted": unlisted, "site": site, "off": off, "ws": stack.ws_url}
    for server in pages.servers:
        server.shutdown()
    with django_db_blocker.unblock():
        Site.objects.filter(pk__in=[site.pk, off.pk]).delete()


@pytest.fixture
def browser(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_page(browser, url: str, **context):  # noqa: ANN001
    opened = browser.new_context(**{"viewport": {"width": 1200, "height": 800}, **context})
    # the browser asks every host for /favicon.ico by itself; neither the product nor the shop serves one
    opened.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    page = opened.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(url)
    return page, problems


def ask(page, text: str) -> None:  # noqa: ANN001
    page.fill("lumen-chat #chat-input", text)
    page.keyboard.press("Enter")


def test_the_widget_opens_answers_and_follows_up_on_a_hostile_shop_page(stack, shop, browser):
    # given: the shop's page, from another origin, with CSS that unsets everything
    page, problems = open_page(browser, f"{shop['listed']}/index.html")
    launcher = page.locator("lumen-chat .lw-launcher")
    expect(page.locator("lumen-chat .lw")).to_have_attribute("data-state", "ready", timeout=15000)
    box = launcher.bounding_box()
    assert 50 <= box["width"] <= 66 and box["x"] > 1100 and box["y"] > 700, box  # a round button, bottom right
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "widget-closed.png"))
    # when: the customer opens it
    launcher.click()
    panel = page.locator("lumen-chat .lw-panel")
    expect(panel).to_be_visible()
    expect(page.locator("lumen-chat #conn-state")).to_have_attribute("data-state", "online", timeout=15000)
    expect(page.locator("lumen-chat .greeting .msg-text")).to_have_text("Hi! Ask us anything.")
    # then: the panel keeps its own size and type, whatever the page's CSS says
    box = panel.bounding_box()
    assert 360 <= box["width"] <= 420 and 400 <= box["height"] <= 700, box
    style = page.locator("lumen-chat .greeting .msg-text").evaluate(
        "e => [getComputedStyle(e).fontSize, getComputedStyle(e).color, getComputedStyle(e).fontFamily]"
    )
    assert style[0] == "15px" and style[1] != "rgb(255, 0, 0)" and "serif" != style[2], style
    # when: a question, then a follow-up button
    start = QAPair.objects.get(question="What is your return policy?")
    ask(page, "what is your return policy")
    expect(page.locator("lumen-chat .msg.bot .msg-text").last).to_have_text(
        answer_plain(start.answer_texts()["en"]), timeout=20000
    )
    followup = page.locator("lumen-chat .msg.bot").last.locator(".chip", has_text="How do I return an item?")
    expect(followup).to_be_visible()
    followup.click()
    then = QAPair.objects.get(question="How do I return an item?")
    expect(page.locator("lumen-chat .msg.bot .msg-text").last).to_have_text(
        answer_plain(then.answer_texts()["en"]), timeout=20000
    )
    page.screenshot(path=str(DOCS / "widget-open.png"))
    # when: the panel is closed and an answer arrives (asked from the customer's other tab)
    page.locator("lumen-chat .lw-launcher").click()
    expect(panel).to_be_hidden()
    token = page.evaluate(f"localStorage.getItem('chat:conversation:/ws/chat/:{shop['site'].key}')")
    other_tab, _ = ws_open(stack, token)
    ws_ask(other_tab, "where is my parcel")
    other_tab.close()
    # then: the launcher shows one unread answer, cleared when the panel opens
    expect(page.locator("lumen-chat .lw-badge")).to_have_text("1", timeout=20000)
    page.locator("lumen-chat .lw-launcher").click()
    expect(page.locator("lumen-chat .lw-badge")).to_be_hidden()
    # and: one custom element, no other global name
    assert page.evaluate("Object.keys(window).filter(k => /lumen|chat|mount/i.test(k))") == []
    assert page.evaluate("document.querySelectorAll('lumen-chat').length") == 1
    assert problems == []


def test_the_widget_hands_off_to_a_person_as_the_full_page_does(stack, shop, browser):
    from tests.test_browser_handoff import operator_page

    # given: nobody on duty (presence another test may have left behind is cleared)
    presence = redis.Redis.from_url(settings.REDIS_URL)
    for key in presence.scan_iter(f"{settings.REDIS_PREFIX}chatbot:console:*"):
        presence.delete(key)
    page, problems = open_page(browser, f"{shop['listed']}/index.html")
    expect(page.locator("lumen-chat .lw")).to_have_attribute("data-state", "ready", timeout=15000)
    page.locator("lumen-chat .lw-launcher").click()
    expect(page.locator("lumen-chat #conn-state")).to_have_attribute("data-state", "online", timeout=15000)
    ask(page, "where is my parcel")
    expect(page.locator("lumen-chat .msg.bot")).to_have_count(1, timeout=20000)
    # when: the customer asks for a person from the widget
    page.locator("lumen-chat #talk-to-person").click()
    # then: the honest answer, styled inside the shadow root, and the leave-a-message form
    status = page.locator("lumen-chat #handoff-status")
    expect(status).to_have_attribute("data-status", "unavailable", timeout=10000)
    expect(status).to_contain_text("Nobody from our team is available right now.")
    colours = status.evaluate("e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).color]")
    assert colours[0] != "rgba(0, 0, 0, 0)" and colours[1] != "rgb(255, 0, 0)", colours  # chat.css, not the page's
    form = page.locator("lumen-chat .leave-message")
    form.locator(".lm-submit").click()
    expect(form.locator(".field-error").first).to_contain_text("valid e-mail address or phone")
    form.locator(".lm-contact").fill("ada@example.com")
    form.locator(".lm-text").fill("My parcel never came")
    form.locator(".lm-submit").click()
    expect(page.locator("lumen-chat .leave-done")).to_be_visible(timeout=10000)
    token = page.evaluate(f"localStorage.getItem('chat:conversation:/ws/chat/:{shop['site'].key}')")
    conversation = Conversation.objects.get(token=token)
    assert conversation.site_id == shop["site"].pk  # the widget's conversation records its site
    assert Ticket.objects.get(conversation=conversation).text == "My parcel never came"

    # when: an operator comes on duty and the customer asks again
    desk, _ = operator_page(browser, stack, first_name="Grace")
    desk.click("#set-available")
    expect(desk.locator("#set-available")).to_have_attribute("aria-pressed", "true")
    page.locator("lumen-chat #talk-to-person").click()
    # then: waiting, with the place in the queue; the operator claims it and writes
    expect(status).to_have_attribute("data-status", "waiting", timeout=10000)
    expect(status).to_contain_text("Waiting for a person")
    expect(status).to_contain_text("number 1")
    expect(page.locator("lumen-chat #talk-to-person")).to_be_disabled()
    desk.locator(".queue-card .claim").click()
    expect(status).to_contain_text("Grace from our team has joined", timeout=10000)
    desk.fill("#reply-text", "Let me look into it.")
    desk.locator("#reply-text").press("Enter")
    agent = page.locator("lumen-chat .msg.agent").last
    expect(agent.locator(".msg-text")).to_have_text("Let me look into it.", timeout=10000)
    expect(agent.locator(".person-badge")).to_have_text("person")
    page.screenshot(path=str(DOCS / "widget-handoff.png"))
    assert page.evaluate("Object.keys(window).filter(k => /lumen|chat|mount|handoff/i.test(k))") == []
    assert problems == []
    desk.context.close()
    for key in presence.scan_iter(f"{settings.REDIS_PREFIX}chatbot:console:*"):
        presence.delete(key)


def test_on_a_phone_the_panel_is_full_screen_and_closes_with_its_own_button(shop, browser):
    page, problems = open_page(
        browser, f"{shop['listed']}/zh.html", viewport={"width": 390, "height": 760}, is_mobile=True, has_touch=True
    )
    expect(page.locator("lumen-chat .lw")).to_have_attribute("data-state", "ready", timeout=15000)
    page.locator("lumen-chat .lw-launcher").click()
    expect(page.locator("lumen-chat #conn-state")).to_have_attribute("data-state", "online", timeout=15000)
    box = page.locator("lumen-chat .lw-panel").bounding_box()
    assert box == {"x": 0, "y": 0, "width": 390, "height": 760}, box
    # the page's <html lang> picks Chinese, with the site's Chinese greeting
    expect(page.locator("lumen-chat .greeting .msg-text")).to_have_text("您好！有什么可以帮您？")
    page.screenshot(path=str(DOCS / "widget-mobile.png"))
    page.locator("lumen-chat [data-action='close-panel']").click()
    expect(page.locator("lumen-chat .lw-panel")).to_be_hidden()
    assert problems == []


@pytest.mark.parametrize("where", ["unlisted origin", "unknown key", "inactive site"])
def test_a_page_the_site_does_not_list_gets_an_honest_refusal(shop, browser, where):
    url = {
        "unlisted origin": f"{shop['unlisted']}/index.html",
        "unknown key": f"{shop['listed']}/unknown.html",
        "inactive site": f"{shop['listed']}/inactive.html",
    }[where]
    page, problems = open_page(browser, url)
    expect(page.locator("lumen-chat .lw")).to_have_attribute("data-state", "unavailable", timeout=15000)
    page.locator("lumen-chat .lw-launcher").click()
    expect(page.locator("lumen-chat .lw-unavailable")).to_have_text("Chat is unavailable on this site.")
    assert page.locator("lumen-chat #chat-input").count() == 0  # no chat, nothing of the site's settings
    # and the WebSocket is refused from there too
    key = {"unlisted origin": shop["site"].key, "unknown key": "no-such-site", "inactive site": shop["off"].key}[where]
    outcome = page.evaluate(
        """(url) => new Promise((done) => { const ws = new WebSocket(url);
             ws.onmessage = () => done('answered'); ws.onclose = () => done('refused'); })""",
        f"{shop['ws']}?site={key}",
    )
    assert outcome == "refused"
    # the browser logs the refused requests (403, the closed WebSocket) as console errors; nothing else fails
    assert [p for p in problems if "403" not in p and "WebSocket" not in p] == []


def test_the_widget_script_size_and_time_to_interactive(shop, browser):
    """Figures for BENCHMARKS.md (printed; run with -s)."""
    script = (ROOT / "static" / "chat" / "widget.js").read_bytes()
    chat = (ROOT / "static" / "chat" / "chat.js").read_bytes()
    handoff = (ROOT / "static" / "chat" / "handoff.js").read_bytes()
    times = []
    for _ in range(5):
        page, _problems = open_page(browser, f"{shop['listed']}/plain.html")
        expect(page.locator("lumen-chat .lw")).to_have_attribute("data-state", "ready", timeout=15000)
        times.append(int(page.evaluate("document.querySelector('lumen-chat').dataset.readyAt")))
        page.context.close()
    times.sort()
    figures = {
        "widget.js bytes": len(script),
        "widget.js gzip bytes": len(gzip.compress(script, 9)),
        "chat.js bytes": len(chat),
        "chat.js gzip bytes": len(gzip.compress(chat, 9)),
        "handoff.js bytes": len(handoff),
        "handoff.js gzip bytes": len(gzip.compress(handoff, 9)),
        "launcher ready ms (median of 5)": times[2],
        "launcher ready ms (max of 5)": times[-1],
    }
    print("WIDGET FIGURES", json.dumps(figures))
    assert times[2] < 5000


def test_the_dashboard_charts_render_without_console_errors(stack, browser):
    from tests.test_dashboard import D1, D3, known_conversations, known_handoffs

    before = set(Conversation.objects.values_list("pk", flat=True))
    known_conversations()
    shop = known_handoffs()
    User.objects.filter(username="dash-browser").delete()
    User.objects.create_superuser("dash-browser", "d@example.com", "a-long-password-1")
    try:
        page, problems = open_page(
            browser, f"{stack.origin}/admin/login/?next=/admin/", viewport={"width": 1280, "height": 900}
        )
        page.fill("#id_username", "dash-browser")
        page.fill("#id_password", "a-long-password-1")
        page.click("input[type=submit]")
        page.click("#dashboard-link a")
        expect(page).to_have_url(f"{stack.origin}/admin/dashboard/")
        page.goto(f"{stack.origin}/admin/dashboard/?period=custom&start={D1}&end={D3}")
        for key in ("volume", "outcomes", "feedback", "confidence", "latency", "satisfaction"):
            canvas = page.locator(f"#chart-{key}")
            expect(canvas).to_be_visible()
            assert page.evaluate(f"!!Chart.getChart(document.getElementById('chart-{key}'))"), key
        page.locator("#figure-volume summary").click()
        expect(page.locator("#figure-volume table")).to_be_visible()
        page.screenshot(path=str(DOCS / "dashboard.png"), full_page=True)
        page.emulate_media(media="print")  # the print style sheet applies without errors
        expect(page.locator("#chart-volume")).to_be_visible()
        assert problems == []
    finally:
        Conversation.objects.exclude(pk__in=before).delete()
        shop.delete()
        User.objects.filter(username="dash-browser").delete()
