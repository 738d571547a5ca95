"""The rollup task's counts against the live computation: the page's figures are the same with and without
rollups, on the known conversations, in every language and site, after late feedback, after the review queue
regroups questions and after a deletion."""

import datetime as dt

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from chatbot.conversations.models import Conversation, Message
from chatbot.conversations.services import feedback_record
from chatbot.dashboard.figures import figures_by_key, figures_compute
from chatbot.dashboard.models import DayTotal, RolledDay
from chatbot.dashboard.periods import Period
from chatbot.dashboard.tallies import TALLIES, Row, source_open, tally_live, tally_rolled
from chatbot.dashboard.tasks import dashboard_rollup_task
from chatbot.review.models import ReviewItem
from chatbot.review.queue import review_queue_sync
from chatbot.review.services import review_ignore
from chatbot.schedules import DASHBOARD_ROLLUP
from tests.test_dashboard import D1, D2, D3, known_conversations, known_handoffs

pytestmark = pytest.mark.django_db
LANGUAGES = ("", "en", "zh")


def _flat(row: Row) -> tuple:
    return row.day, row.language, row.site, row.key, sorted(row.values.items())


def _page(language: str, site: int | None, *, rollups: bool, first: dt.date = D1, last: dt.date = D3) -> dict:
    period = Period(first=first, last=last, language=language, site=site)
    return {f.key: (f.rows, f.chart, f.links) for f in figures_compute(period=period, rollups=rollups)}


def _same_with_and_without_rollups(first: dt.date = D1, last: dt.date = D3, sites: tuple = (None,)) -> None:
    for language in LANGUAGES:
        for site in sites:
            rolled = _page(language, site, rollups=True, first=first, last=last)
            assert rolled == _page(language, site, rollups=False, first=first, last=last), (language, site)


def test_the_rollup_task_counts_each_closed_day_as_the_live_query_does_in_each_language():
    known_conversations()
    assert dashboard_rollup_task.apply().get() >= 3
    assert {D1, D2, D3} <= set(RolledDay.objects.values_list("day", flat=True))
    assert not RolledDay.objects.filter(day__gte=timezone.localdate()).exists()  # today stays live
    ranges = [(Period(first=D1, last=D3).start, Period(first=D1, last=D3).end)]
    for tally in TALLIES:
        for language in ("en", "zh"):
            live = tally_live(tally, ranges=ranges, language=language)
            rolled = tally_rolled(tally, days=[D1, D2, D3], language=language)
            assert sorted(map(_flat, live)) == sorted(map(_flat, rolled)), (tally.name, language)
    zh = DayTotal.objects.filter(day=D1, language="zh", figure="replies").get()
    assert (zh.n, zh.answered, zh.unsure, zh.handoff, zh.liked, zh.disliked) == (3, 1, 2, 0, 0, 1)
    assert dashboard_rollup_task.apply().get() == 0  # nothing new: nothing read again


def test_the_page_is_the_same_with_and_without_rollups_and_uses_them():
    known_conversations()
    dashboard_rollup_task.apply().get()
    assert source_open(period=Period(first=D1, last=D3)).rolled == {D1, D2, D3}
    _same_with_and_without_rollups()
    found = figures_by_key(figures_compute(period=Period(first=D1, last=D3)))
    assert found["volume"].rows == [[str(D1), 2, 5], [str(D2), 1, 1], [str(D3), 1, 1]]
    assert found["latency_total"].rows == [["whole period", 30.0, 60.0, 7]]
    assert found["feedback"].rows == [["helpful", 1, 33.3], ["not helpful", 2, 66.7], ["not rated", 4, None]]


def test_late_feedback_is_shown_at_once_and_counted_by_the_next_run():
    known_conversations()
    dashboard_rollup_task.apply().get()
    reply = Message.objects.filter(sender="bot", created_at__date=D2).get()
    conversation = reply.conversation
    assert feedback_record(conversation=conversation, message_id=reply.pk, helpful=True)
    assert D2 not in source_open(period=Period(first=D1, last=D3)).rolled  # read live until counted again
    _same_with_and_without_rollups()
    assert figures_by_key(figures_compute(period=Period(first=D1, last=D3)))["feedback"].rows[0] == ["helpful", 2, 66.7]
    assert dashboard_rollup_task.apply().get() == 1
    assert DayTotal.objects.get(day=D2, language="en", figure="replies").liked == 1
    _same_with_and_without_rollups()


def test_a_deleted_conversation_leaves_the_rolled_up_figures():
    known_conversations()
    dashboard_rollup_task.apply().get()
    Conversation.objects.filter(language="zh", messages__created_at__date=D1).distinct().delete()
    assert not RolledDay.objects.filter(day=D1).exists() and RolledDay.objects.filter(day=D2).exists()
    _same_with_and_without_rollups()
    assert figures_by_key(figures_compute(period=Period(first=D1, last=D3)))["volume"].rows[0] == [str(D1), 1, 2]


def test_today_is_read_live_next_to_rolled_up_days():
    known_conversations()
    conversation = Conversation.objects.create(language="en")
    Message.objects.create(conversation=conversation, sender="customer", text="hello today", client_id="t1")
    dashboard_rollup_task.apply().get()
    today = timezone.localdate()
    _same_with_and_without_rollups(first=D1, last=today)
    volume = figures_by_key(figures_compute(period=Period(first=D1, last=today)))["volume"].rows
    assert volume[0] == [str(D1), 2, 5] and volume[-1][1:] == [1, 1]


def test_each_site_is_counted_apart_and_a_site_s_page_reads_the_rollups():
    known_conversations()
    shop = known_handoffs()  # e2 (en, D2) and z1 (zh, D1) are the shop's; the others are the product page's
    dashboard_rollup_task.apply().get()
    period = Period(first=D1, last=D3, site=shop.pk)
    assert source_open(period=period).rolled == {D1, D2, D3}
    assert set(DayTotal.objects.filter(figure="volume").values_list("day", "language", "site", "n")) == {
        (D1, "en", None, 2),
        (D1, "zh", shop.pk, 3),
        (D2, "en", shop.pk, 1),
        (D3, "zh", None, 1),
    }
    ranges = [(period.start, period.end)]
    for tally in TALLIES:
        for language in LANGUAGES:
            live = tally_live(tally, ranges=ranges, language=language, site=shop.pk)
            rolled = tally_rolled(tally, days=[D1, D2, D3], language=language, site=shop.pk)
            assert sorted(map(_flat, live)) == sorted(map(_flat, rolled)), (tally.name, language)
    _same_with_and_without_rollups(sites=(None, shop.pk))
    found = figures_by_key(figures_compute(period=period))
    assert found["volume"].rows == [[str(D1), 1, 3], [str(D2), 1, 1], [str(D3), 0, 0]]
    assert found["unanswered"].rows == [["这个怎么办", 2]]
    both = figures_by_key(figures_compute(period=Period(first=D1, last=D3, language="zh", site=shop.pk)))
    assert both["latency_total"].rows == [["whole period", 50.0, 60.0, 3]]  # z1: 40, 50, 60 ms


def _unanswered(language: str = "") -> tuple[list, list]:
    found = figures_by_key(figures_compute(period=Period(first=D1, last=D3, language=language)))["unanswered"]
    return found.rows, found.links


def test_unanswered_groups_are_rolled_up_and_a_day_regrouped_since_is_read_live_until_rolled_again():
    known_conversations()
    review_queue_sync()  # the real queue, with the model in service, groups the two identical questions
    first, second = Message.objects.filter(text="这个怎么办", sender="customer").order_by("pk")
    assert ReviewItem.objects.get(message=second).cluster == first.pk
    stamped = dict(ReviewItem.objects.filter(cluster__isnull=False).values_list("pk", "clustered_at"))
    assert stamped and None not in stamped.values()
    review_queue_sync()  # nothing moved: nothing stamped again
    assert dict(ReviewItem.objects.filter(cluster__isnull=False).values_list("pk", "clustered_at")) == stamped
    ReviewItem.objects.update(clustered_at=timezone.now() - dt.timedelta(hours=1))  # grouped before the rollup
    dashboard_rollup_task.apply().get()
    source = source_open(period=Period(first=D1, last=D3))
    assert source.rolled == {D1, D2, D3} and not source.regrouped
    assert DayTotal.objects.filter(figure="unanswered", day=D1, key=f"g{first.pk}").get().n == 2
    rows, links = _unanswered()
    assert rows[0] == ["这个怎么办", 2] and links[0] == f"/admin/review/reviewitem/?cluster={first.pk}&status=all"
    _same_with_and_without_rollups()

    # the leader is decided on: the next sync makes the other message a group of its own
    review_ignore(items=[ReviewItem.objects.get(message=first)], user=None)
    review_queue_sync()
    assert ReviewItem.objects.get(message=second).cluster == second.pk
    source = source_open(period=Period(first=D1, last=D3))
    assert source.regrouped == {D1} and D1 in source.rolled  # the other figures still read the rollup
    assert sorted(_unanswered("zh")[0]) == [["这个怎么办", 1], ["这个怎么办", 1]]
    _same_with_and_without_rollups()
    assert dashboard_rollup_task.apply().get() == 1  # the next run counts that day again
    ReviewItem.objects.update(clustered_at=timezone.now() - dt.timedelta(hours=1))
    assert not source_open(period=Period(first=D1, last=D3)).regrouped
    assert DayTotal.objects.filter(figure="unanswered", day=D1, key=f"g{second.pk}").get().n == 1
    _same_with_and_without_rollups()


def test_the_rollup_runs_on_a_schedule():
    task = PeriodicTask.objects.get(name=DASHBOARD_ROLLUP.name)
    assert task.task == "chatbot.dashboard.tasks.dashboard_rollup_task" and task.enabled
