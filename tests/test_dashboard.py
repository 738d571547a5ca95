"""The dashboard's figures against a fixture of known conversations, its period checks, and its access."""

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from chatbot.console.models import Handoff
from chatbot.conversations.models import Conversation, Message
from chatbot.dashboard.figures import (
    FIGURES,
    figures_by_key,
    figures_compute,
    handoff_times,
    handoff_times_ordered,
    handoffs_in,
)
from chatbot.dashboard.periods import Period
from chatbot.knowledge.models import QAPair
from chatbot.registry.models import ModelVersion
from chatbot.sites.models import Site

pytestmark = pytest.mark.django_db
DAY = timezone.localdate() - dt.timedelta(days=100)  # a quiet stretch no other test writes to
D1, D2, D3 = DAY, DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=2)


def _at(day: dt.date, minute: int) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(10, minute)))


def _exchange(conversation, day, minute, text, *, outcome, pair=None, confidence, latency, helpful=None, clicked=False):
    version = ModelVersion.objects.filter(is_active=True).first()
    customer = Message.objects.create(
        conversation=conversation,
        sender="customer",
        text=text,
        client_id=f"c{minute}",
        suggested_pair=pair if clicked else None,
    )
    bot = Message.objects.create(
        conversation=conversation,
        sender="bot",
        reply_to=customer,
        text="reply",
        pair=pair,
        outcome=outcome,
        confidence=confidence,
        candidates=[] if clicked else [{"pair": 1, "question": "q", "score": confidence}],
        model_version=version,
        latency_ms=latency,
        helpful=helpful,
    )
    Message.objects.filter(pk=customer.pk).update(created_at=_at(day, minute))
    Message.objects.filter(pk=bot.pk).update(created_at=_at(day, minute) + dt.timedelta(seconds=1))


def known_conversations() -> dict[str, QAPair]:
    """Four conversations over three days, two in each language, with every outcome and feedback."""
    p1 = QAPair.objects.get(question="Where is my order?")
    p2 = QAPair.objects.get(alternates__text="退货政策是什么？")  # the topic, asked in Chinese
    handoff = QAPair.objects.get(question="Can I talk to a human agent?")
    e1, e2 = Conversation.objects.create(language="en"), Conversation.objects.create(language="en")
    z1, z2 = Conversation.objects.create(language="zh"), Conversation.objects.create(language="zh")
    _exchange(e1, D1, 1, "where is my parcel", outcome="answer", pair=p1, confidence=0.9, latency=10, helpful=True)
    _exchange(e1, D1, 2, "Can I pay with seashells", outcome="unsure", confidence=0.2, latency=20)
    _exchange(e2, D2, 3, "human please", outcome="handoff", pair=handoff, confidence=0.8, latency=30, helpful=False)
    _exchange(z1, D1, 4, "退货怎么弄", outcome="answer", pair=p2, confidence=0.95, latency=40, helpful=False)
    _exchange(z1, D1, 5, "这个怎么办", outcome="unsure", confidence=0.1, latency=50)
    _exchange(z1, D1, 6, "这个怎么办", outcome="unsure", confidence=0.12, latency=60)
    _exchange(z2, D3, 7, "退货政策是什么？", outcome="answer", pair=p2, confidence=1.0, latency=5, clicked=True)
    return {"p1": p1, "p2": p2, "handoff": handoff}


def figures(language: str = "", site: int | None = None) -> dict:
    return figures_by_key(figures_compute(period=Period(first=D1, last=D3, language=language, site=site)))


def _known():
    """The known conversations (other tests, e.g. in a browser, may write the same words today)."""
    known = Message.objects.filter(created_at__range=(_at(D1, 0), _at(D3, 59))).values("conversation_id")
    return Conversation.objects.filter(pk__in=known)


def _handoff(first_words: str, day: dt.date, minute: int, *, claimed=None, responded=None, rating=None) -> None:
    """A hand-off of the conversation whose customer first wrote `first_words`; times in seconds after asking."""
    conversation = _known().get(messages__text=first_words, messages__sender="customer")
    asked = _at(day, minute) + dt.timedelta(seconds=5)
    after = {"claimed_at": claimed, "first_response_at": responded}
    handoff = Handoff.objects.create(conversation=conversation, reason="button", outcome="resolved", rating=rating)
    Handoff.objects.filter(pk=handoff.pk).update(
        requested_at=asked, **{k: asked + dt.timedelta(seconds=v) for k, v in after.items() if v is not None}
    )


def known_handoffs() -> Site:
    """Four hand-offs over the known conversations (two rated, one never taken); the site has e2 and z1."""
    _handoff("human please", D2, 3, claimed=30, responded=50, rating=5)  # e2
    _handoff("退货怎么弄", D1, 7, claimed=90, responded=100, rating=2)  # z1
    _handoff("where is my parcel", D1, 10)  # e1: nobody available
    _handoff("退货政策是什么？", D3, 8, claimed=60)  # z2: taken, no words yet
    shop = Site.objects.create(name="Dashboard shop", allowed_origins="https://shop.example.com")
    _known().filter(messages__text__in=["human please", "退货怎么弄"]).update(site=shop)
    return shop


def test_the_figures_match_the_known_conversations_in_all_languages():
    pairs = known_conversations()
    found = figures()
    assert found["volume"].rows == [[str(D1), 2, 5], [str(D2), 1, 1], [str(D3), 1, 1]]
    assert found["outcomes"].rows == [
        [str(D1), 2, 3, 0, 40.0, 60.0, 0.0],
        [str(D2), 0, 0, 1, 0.0, 0.0, 100.0],
        [str(D3), 1, 0, 0, 100.0, 0.0, 0.0],
    ]
    assert found["feedback"].rows == [["helpful", 1, 33.3], ["not helpful", 2, 66.7], ["not rated", 4, None]]
    histogram = dict(found["confidence"].rows)
    assert {label: n for label, n in histogram.items() if n} == {
        "0.10–0.15": 2,
        "0.20–0.25": 1,
        "0.80–0.85": 1,
        "0.90–0.95": 1,
        "0.95–1.00": 1,
    }
    assert found["latency_total"].rows == [["whole period", 30.0, 60.0, 7]]
    assert found["latency"].rows == [[str(D1), 40.0, 60.0, 5], [str(D2), 30.0, 30.0, 1], [str(D3), 5.0, 5.0, 1]]
    assert found["unanswered"].rows == [["这个怎么办", 2], ["Can I pay with seashells", 1]]
    ones = sorted([(pairs["p1"], [1, 1, 0, 0.0]), (pairs["handoff"], [1, 0, 1, 100.0])], key=lambda item: item[0].pk)
    assert found["top_pairs"].rows == [[pairs["p2"].question, 2, 0, 1, 100.0]] + [[p.question, *v] for p, v in ones]
    assert [row[:4] for row in found["worst_pairs"].rows] == [
        [pairs["handoff"].question, 1, 0, 1],
        [pairs["p2"].question, 2, 0, 1],
    ]
    version = ModelVersion.objects.get(is_active=True)
    assert found["versions"].rows[0][:2] == [f"v{version.pk} ({version.encoder})", 7]
    assert found["confidence"].chart["threshold"]["label"] == f"not-sure threshold {version.threshold:.3f}"


def test_the_figures_match_the_known_conversations_in_each_language():
    known_conversations()
    english, chinese = figures("en"), figures("zh")
    assert english["volume"].rows == [[str(D1), 1, 2], [str(D2), 1, 1], [str(D3), 0, 0]]
    assert chinese["volume"].rows == [[str(D1), 1, 3], [str(D2), 0, 0], [str(D3), 1, 1]]
    assert english["outcomes"].rows[0] == [str(D1), 1, 1, 0, 50.0, 50.0, 0.0]
    assert chinese["outcomes"].rows[0] == [str(D1), 1, 2, 0, 33.3, 66.7, 0.0]
    assert english["feedback"].rows[:2] == [["helpful", 1, 50.0], ["not helpful", 1, 50.0]]
    assert chinese["feedback"].rows[:2] == [["helpful", 0, 0.0], ["not helpful", 1, 100.0]]
    assert chinese["unanswered"].rows == [["这个怎么办", 2]]
    assert english["latency_total"].rows == [["whole period", 20.0, 30.0, 3]]
    assert chinese["latency_total"].rows == [["whole period", 40.0, 60.0, 4]]


def test_the_hand_off_figures_match_the_known_hand_offs():
    known_conversations()
    known_handoffs()
    found, english = figures(), figures("en")
    assert found["satisfaction"].rows == [
        ["1 of 5", 0, 0.0],
        ["2 of 5", 1, 50.0],
        ["3 of 5", 0, 0.0],
        ["4 of 5", 0, 0.0],
        ["5 of 5", 1, 50.0],
    ]
    assert "mean 3.5 of 5 over 2 ratings" in found["satisfaction"].meaning
    # percentile_cont: p95 of 30, 60, 90 s is 60 + 0.9 x 30
    assert [row[1:] for row in found["handoff_times"].rows] == [
        [3, 60.0, 87.0, 90.0],
        [2, 75.0, 97.5, 100.0],
        [4, None, None, None],
    ]
    assert [row[1] for row in english["satisfaction"].rows] == [0, 0, 0, 0, 1]
    assert [row[1:] for row in english["handoff_times"].rows] == [
        [1, 30.0, 30.0, 30.0],
        [1, 50.0, 50.0, 50.0],
        [2, None, None, None],
    ]
    chinese = figures("zh")
    assert [row[1:] for row in chinese["handoff_times"].rows] == [
        [2, 75.0, 88.5, 90.0],
        [1, 100.0, 100.0, 100.0],
        [2, None, None, None],
    ]


def test_the_hand_off_times_read_in_order_match_percentile_cont():
    """SQLite (the embedded mode) has no percentile_cont: its ordered reading gives what PostgreSQL computes."""
    known_conversations()
    shop = known_handoffs()
    for language, site in [("", None), ("en", None), ("zh", None), ("", shop.pk)]:
        found = handoffs_in(Period(first=D1, last=D3, language=language, site=site))
        assert handoff_times_ordered(found) == handoff_times(found), (language, site)
    assert handoff_times(handoffs_in(Period(first=D1, last=D3)))["wait_p95"] == dt.timedelta(seconds=87)


def test_the_site_filter_keeps_that_site_s_conversations_only(operator_client):
    from chatbot.dashboard.tallies import source_open
    from chatbot.dashboard.tasks import dashboard_rollup_task

    known_conversations()
    shop = known_handoffs()
    dashboard_rollup_task.apply().get()  # the rollups count each site apart: one site's figures read them
    assert source_open(period=Period(first=D1, last=D3, site=shop.pk)).rolled == {D1, D2, D3}
    found = figures(site=shop.pk)
    assert found["volume"].rows == [[str(D1), 1, 3], [str(D2), 1, 1], [str(D3), 0, 0]]
    assert found["outcomes"].rows[1] == [str(D2), 0, 0, 1, 0.0, 0.0, 100.0]
    assert found["feedback"].rows[:2] == [["helpful", 0, 0.0], ["not helpful", 2, 100.0]]
    assert found["unanswered"].rows == [["这个怎么办", 2]]
    assert found["latency_total"].rows == [["whole period", 40.0, 60.0, 4]]
    assert [row[1] for row in found["satisfaction"].rows] == [0, 1, 0, 0, 1]
    assert [row[1:] for row in found["handoff_times"].rows] == [
        [2, 60.0, 87.0, 90.0],
        [2, 75.0, 97.5, 100.0],
        [2, None, None, None],
    ]
    both = figures(language="en", site=shop.pk)  # one site and one language together
    assert both["volume"].rows == [[str(D1), 0, 0], [str(D2), 1, 1], [str(D3), 0, 0]]
    query = {"period": "custom", "start": D1, "end": D3, "site": shop.pk}
    page = operator_client.get("/admin/dashboard/", query)
    assert page.status_code == 200 and b", site Dashboard shop." in page.content
    csv = operator_client.get("/admin/dashboard/", {**query, "csv": "volume"}).content.decode().splitlines()
    assert csv[1:] == [f"{D1},1,3", f"{D2},1,1", f"{D3},0,0"]
    unknown = operator_client.get("/admin/dashboard/", {**query, "site": 987654321})
    assert unknown.status_code == 400 and b"Select a valid choice" in unknown.content


def test_an_unanswered_question_links_to_its_review_group():
    from chatbot.review.models import ReviewItem

    known_conversations()
    asked = Message.objects.filter(sender="customer", text="这个怎么办").order_by("pk")
    for message in asked:
        ReviewItem.objects.create(message=message, needs_review=True, cluster=asked[0].pk, cluster_size=2)
    found = figures("zh")["unanswered"]
    assert found.rows == [["这个怎么办", 2]]
    assert found.links == [f"/admin/review/reviewitem/?cluster={asked[0].pk}&status=all"]


def test_an_empty_period_shows_an_empty_state_not_an_error(operator_client):
    response = operator_client.get(
        "/admin/dashboard/", {"period": "custom", "start": "2020-01-01", "end": "2020-01-31"}
    )
    assert response.status_code == 200
    assert response.content.count(b"No data in this period.") >= 9


def test_a_fresh_install_says_so(operator_client):
    Message.objects.all().delete()
    response = operator_client.get("/admin/dashboard/")
    assert response.status_code == 200 and b"No conversations yet." in response.content


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"start": "2026-03-10", "end": "2026-03-01"}, b"The end date is before the start date."),
        ({"start": "2999-01-01", "end": "2999-01-31"}, b"The period starts in the future"),
        ({"start": "2001-01-01", "end": "2024-12-31"}, b"A period is at most 366 days"),
        ({"start": "yesterday", "end": "2024-13-45"}, b"Enter a valid date."),
        ({"start": "", "end": ""}, b"A custom period needs a start and an end date."),
    ],
)
def test_a_bad_custom_period_is_a_clear_error_not_a_500(operator_client, query, error):
    response = operator_client.get("/admin/dashboard/", {"period": "custom", **query})
    assert response.status_code == 400 and error in response.content


def test_a_period_ending_in_the_future_is_clamped_to_today(operator_client):
    today = timezone.localdate()
    start, end = today - dt.timedelta(days=3), today + dt.timedelta(days=30)
    response = operator_client.get("/admin/dashboard/", {"period": "custom", "start": start, "end": end})
    assert response.status_code == 200 and b"it is shown up to today" in response.content


def test_every_figure_downloads_as_csv(operator_client):
    known_conversations()
    query = {"period": "custom", "start": D1, "end": D3, "language": "zh"}
    response = operator_client.get("/admin/dashboard/", {**query, "csv": "volume"})
    assert response["Content-Type"].startswith("text/csv")
    assert response.content.decode().splitlines() == [
        "day,conversations,customer messages",
        f"{D1},1,3",
        f"{D2},0,0",
        f"{D3},1,1",
    ]
    page = operator_client.get("/admin/dashboard/", query).content.decode()
    for key in FIGURES:
        assert f"csv={key}" in page
        assert operator_client.get("/admin/dashboard/", {**query, "csv": key}).status_code == 200
    assert operator_client.get("/admin/dashboard/", {**query, "csv": "nope"}).status_code == 404


def test_a_csv_cell_that_looks_like_a_formula_stays_text(operator_client):
    conversation = Conversation.objects.create(language="en")
    _exchange(conversation, D1, 9, "=HYPERLINK(1)", outcome="unsure", confidence=0.1, latency=1)
    response = operator_client.get(
        "/admin/dashboard/", {"period": "custom", "start": D1, "end": D1, "csv": "unanswered"}
    )
    assert "'=HYPERLINK(1),1" in response.content.decode()


def test_a_customer_s_words_in_a_table_are_escaped(operator_client):
    conversation = Conversation.objects.create(language="en")
    _exchange(conversation, D1, 9, '<img src=x onerror="alert(1)">', outcome="unsure", confidence=0.1, latency=1)
    page = operator_client.get("/admin/dashboard/", {"period": "custom", "start": D1, "end": D1}).content.decode()
    assert "<img src=x" not in page
    assert (
        '<td><a href="/admin/review/reviewitem/?reason=no_answer">&lt;img src=x onerror=&quot;alert(1)&quot;&gt;</a></td><td>1</td>'
        in page
    )


def test_operators_and_admins_see_the_dashboard_linked_from_the_admin_index_and_others_do_not(operator_client):
    assert b'href="/admin/dashboard/"' in operator_client.get("/admin/").content
    assert operator_client.get("/admin/dashboard/").status_code == 200
    staff = User.objects.create_user("dash-nobody", password="unused-pw-123", is_staff=True)
    client = Client()
    client.force_login(staff)
    assert client.get("/admin/dashboard/").status_code == 403
    assert b'href="/admin/dashboard/"' not in client.get("/admin/").content
    assert Client().get("/admin/dashboard/").status_code == 302  # to the log-in page
