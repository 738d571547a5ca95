"""Customer text, alternate questions and answers full of script, in the admin pages an operator uses.

An operator logs in with Debian's Chromium (Playwright) against the running stack and opens every page that
shows such text: conversation transcript, message list and message, review queue and its decision pages, the
Q&A pair list and change form, alternate questions, the gate's disagreements of a training run, the import
preview. Every payload sets `window.__xss` (or opens a dialog) if it ever runs; it must stay unset, no element
may carry the injected handlers or a `javascript:` link, and the payload must be on the page as text.
"""

import csv
import io
import re
import uuid
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import Page, sync_playwright

from chatbot.conversations.models import Conversation, Message
from chatbot.knowledge.models import AlternateQuestion, QAPair
from chatbot.registry.models import TrainingRun
from chatbot.retention import conversations_erase
from chatbot.review.models import ReviewItem
from chatbot.review.queue import review_queue_sync
from chatbot.roles import roles_ensure
from tests.e2e import CHROMIUM, CHROMIUM_ARGS

PASSWORD = "a-long-password-for-xss-1"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.usefixtures("committed_db"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make browser)"),
]

MARKER = f"xss{uuid.uuid4().hex[:8]}"
PAYLOADS = [
    "<script>window.__xss='script'</script>",
    "<img src=x onerror=\"window.__xss='img'\">",
    "<a href=\"javascript:window.__xss='link'\">click me</a>",
    '"><svg onload="window.__xss=\'svg\'">',
    "'><img src=x onerror=alert(1)>",
    "</textarea><script>window.__xss='textarea'</script>",
]
HOSTILE = f"{MARKER} " + " ".join(PAYLOADS)
# what no page may contain as live markup
INJECTED = "script:not([src]), [onerror], [onload], a[href^='javascript' i], svg[onload]"


@pytest.fixture
def hostile_records(stack):
    """A conversation with a hostile customer message and an unsure reply (so it is in the review queue), a pair
    whose question, answer and alternate are hostile, and a training run whose gate disagreed on that message."""
    roles_ensure()
    operator = User.objects.create_user(f"operator-{MARKER}", password=PASSWORD, is_staff=True)
    operator.groups.add(Group.objects.get(name="Operators"))
    pair = QAPair.objects.create_topic(
        question=f"{MARKER} question " + PAYLOADS[3], answers={"en": HOSTILE, "zh": HOSTILE}, category="xss"
    )
    AlternateQuestion.objects.create(pair=pair, text=f"{MARKER} alternate " + PAYLOADS[1])
    conversation = Conversation.objects.create(language="en")
    customer = Message.objects.create(
        conversation=conversation, sender=Message.Sender.CUSTOMER, text=HOSTILE, client_id=f"c-{MARKER}"
    )
    Message.objects.create(
        conversation=conversation,
        sender=Message.Sender.BOT,
        reply_to=customer,
        text="Did you mean one of these?",
        outcome=Message.Outcome.UNSURE,
        confidence=0.2,
        suggestions=[{"pair": pair.pk, "question": pair.question}],
        candidates=[{"pair": pair.pk, "question": pair.question, "score": 0.2}],
    )
    run = TrainingRun.objects.create(
        trigger=TrainingRun.Trigger.ADMIN,
        status=TrainingRun.Status.REJECTED,
        encoder="ngram",
        gate={
            "passed": False,
            "checks": [],
            "note": "held-out set",
            "n_disagreements": 1,
            "disagreements": [
                {
                    "text": HOSTILE,
                    "gold": str(pair.pk),
                    "candidate": "oos",
                    "active": str(pair.pk),
                    "candidate_score": 0.1,
                    "active_score": 0.9,
                },
            ],
        },
        log=HOSTILE,
    )
    review_queue_sync()  # what the worker does after an answer: the review page shows stored results
    records = {"pair": pair, "conversation": conversation, "customer": customer, "run": run}
    yield records
    conversations_erase(conversations=Conversation.objects.filter(pk=conversation.pk))  # a worker may still be syncing
    run.delete()
    QAPair.objects.filter(question__startswith=MARKER).delete()
    operator.delete()


@pytest.fixture
def operator_page(stack, hostile_records, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM calls between browser steps, as in test_browser
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 900}, locale="en-US")
        page.dialogs = []  # type: ignore[attr-defined]
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(f"{stack.origin}/admin/login/?next=/admin/")
        page.fill("#id_username", f"operator-{MARKER}")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(re.compile(r"/admin/$"))
        yield page
        browser.close()


def shown_text(page: Page) -> str:
    """What the operator reads: the page's text and the values of its form fields."""
    return page.evaluate(
        "() => document.body.innerText + '\\n' + [...document.querySelectorAll('input, textarea')]"
        ".map(e => e.value).join('\\n')"
    )


def problems_on(page: Page, url: str, expect: list[str]) -> list[str]:
    response = page.goto(url)
    page.wait_for_load_state("load")
    page.wait_for_timeout(300)  # an <img onerror> fires after the failed load
    problems = []
    if response is None or response.status != 200:
        problems.append(f"{url}: HTTP {response and response.status}")
    if page.evaluate("typeof window.__xss") != "undefined":
        problems.append(f"{url}: script ran ({page.evaluate('window.__xss')})")
    if page.dialogs:  # type: ignore[attr-defined]
        problems.append(f"{url}: dialog {page.dialogs}")  # type: ignore[attr-defined]
    injected = page.evaluate(f"() => [...document.querySelectorAll({INJECTED!r})].map(e => e.outerHTML)")
    injected = [html for html in injected if MARKER in html or "__xss" in html or "alert(1)" in html]
    if injected:
        problems.append(f"{url}: injected markup {injected[:3]}")
    text = shown_text(page)
    problems += [f"{url}: {wanted!r} is not shown as text" for wanted in expect if wanted not in text]
    return problems


def test_the_detector_sees_script_that_runs_in_the_admin(operator_page, stack):
    # given: the admin has no policy that would block an inline handler (so the checks below mean something)
    operator_page.goto(f"{stack.origin}/admin/")
    operator_page.evaluate("document.body.insertAdjacentHTML('beforeend', '<img src=x onerror=\"window.__xss=1\">')")
    operator_page.wait_for_function("window.__xss === 1", timeout=5000)


def test_hostile_text_never_runs_in_the_operator_pages(operator_page, stack, hostile_records):
    pair, conversation = hostile_records["pair"], hostile_records["conversation"]
    customer, run = hostile_records["customer"], hostile_records["run"]
    alternate = pair.alternates.get()
    admin = f"{stack.origin}/admin"
    pages = {
        f"{admin}/conversations/conversation/{conversation.pk}/change/": [HOSTILE],  # the transcript
        f"{admin}/conversations/message/?q={MARKER}": [f"{MARKER} <script>"],  # shortened to 80 characters
        f"{admin}/conversations/message/{customer.pk}/change/": [HOSTILE],
        f"{admin}/review/reviewitem/?status=all&q={MARKER}": [HOSTILE, pair.question],
        f"{admin}/knowledge/qapair/?q={MARKER}": [pair.question],
        f"{admin}/knowledge/qapair/{pair.pk}/change/": [pair.question, HOSTILE, alternate.text],
        f"{admin}/knowledge/alternatequestion/?q={MARKER}": [alternate.text],
        f"{admin}/registry/trainingrun/{run.pk}/change/": [HOSTILE, pair.question],
    }
    problems = []
    for url, expect in pages.items():
        problems += problems_on(operator_page, url, expect)
    assert not problems, "\n".join(problems)
    assert ReviewItem.objects.filter(message=customer, needs_review=True).exists()  # the queue did list it


@pytest.mark.parametrize("action", ["attach_to_pair", "create_pair"])
def test_hostile_text_never_runs_in_the_review_decision_pages(operator_page, stack, hostile_records, action):
    # given: the review queue lists the hostile message
    page = operator_page
    assert not problems_on(page, f"{stack.origin}/admin/review/reviewitem/?status=all&q={MARKER}", [HOSTILE])
    # when: the operator selects it and picks an action (the page that asks for the pair or the new answer)
    page.locator("input[name=_selected_action]").first.check()
    page.select_option("select[name=action]", action)
    page.click("button[name=index], button[type=submit].button")
    page.wait_for_load_state("load")
    page.wait_for_timeout(300)
    # then: nothing ran, and the message is shown as text (and is the new pair's question, as text)
    assert page.evaluate("typeof window.__xss") == "undefined", page.evaluate("window.__xss")
    assert not page.dialogs  # type: ignore[attr-defined]
    assert HOSTILE in shown_text(page)
    assert page.locator("input[name=apply]").count() == 1, "not the decision page"


def test_hostile_text_never_runs_in_the_import_preview(operator_page, stack, tmp_path):
    # given: a CSV whose every cell is hostile
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["question", "answer", "alternates", "language", "category"])
    writer.writerow([f"{MARKER} import " + PAYLOADS[0], HOSTILE, PAYLOADS[1] + "\n" + PAYLOADS[3], "en", "xss"])
    path = tmp_path / "hostile.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    page = operator_page
    # when: the operator uploads it and looks at the preview
    page.goto(f"{stack.origin}/admin/knowledge/qapair/import/")
    page.set_input_files("input[name=import_file]", str(path))
    page.select_option("select[name=format]", "0")
    page.click("input[type=submit]")
    page.wait_for_load_state("load")
    page.wait_for_timeout(300)
    # then
    assert page.evaluate("typeof window.__xss") == "undefined", page.evaluate("window.__xss")
    assert not page.dialogs  # type: ignore[attr-defined]
    assert f"{MARKER} import " + PAYLOADS[0] in shown_text(page)
    assert not QAPair.objects.filter(question__startswith=f"{MARKER} import").exists()  # a preview saves nothing
