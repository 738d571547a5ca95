"""The rollup task's counts against the live computation: the page's figures are the same with and without
rollups, on the known conversations, in every language, after late feedback and after a deletion."""

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
from chatbot.schedules import DASHBOARD_ROLLUP
from tests.test_dashboard import D1, D2, D3, known_conversations

pytestmark = pytest.mark.django_db
LANGUAGES = ("", "en", "zh")


def _flat(row: Row) -> tuple:
    return row.day, row.language, row.key, sorted(row.values.items())


def _page(language: str, *, rollups: bool, first: dt.date = D1, last: dt.date = D3) -> dict:
    figures = figures_compute(period=Period(first=first, last=last, language=language), rollups=rollups)
    return {f.key: (f.rows, f.chart, f.links) for f in figures}


def _same_with_and_without_rollups(first: dt.date = D1, last: dt.date = D3) -> None:
    for language in LANGUAGES:
        assert _page(language, rollups=True, first=first, last=last) == _page(
            language, rollups=False, first=first, last=last
        ), language


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
    assert DayTotal.objects.filter(day=D1, language="zh", figure="replies").get().values == {
        "replies": 3,
        "answered": 1,
        "unsure": 2,
        "handoff": 0,
        "liked": 0,
        "disliked": 1,
    }
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
    assert DayTotal.objects.get(day=D2, language="en", figure="replies").values["liked"] == 1
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


def test_the_rollup_runs_on_a_schedule():
    task = PeriodicTask.objects.get(name=DASHBOARD_ROLLUP.name)
    assert task.task == "chatbot.dashboard.tasks.dashboard_rollup_task" and task.enabled
