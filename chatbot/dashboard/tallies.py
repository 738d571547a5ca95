"""The counts behind the figures, per day and key: read live from messages for today and any day not rolled
up yet, and from DayTotal for the closed days the rollup task has read (per language and site, in typed
columns). Every count merges by sum, min or max, so a period's figure is the same from either source."""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import (
    Aggregate,
    Case,
    CharField,
    Count,
    F,
    Func,
    IntegerField,
    Max,
    Min,
    Q,
    Sum,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast, Concat, Floor, Least, Lower, Round, TruncDate
from django.utils import timezone

from chatbot.conversations.models import Message
from chatbot.dashboard.models import DayTotal, RolledDay
from chatbot.dashboard.periods import Period, midnight
from chatbot.review.models import ReviewItem

BUCKETS = 20  # confidence histogram: 0.05 wide
# Feedback stamped up to this long before the task started may commit after the task looked for it.
COMMIT_MARGIN = dt.timedelta(minutes=1)
Outcome = Message.Outcome
Slot = tuple[dt.date | None, str]


class Bytewise(Func):
    """Text ordered by code point, as Python orders str, whatever the database's collation: the first question
    of a group is then the same whether the days were merged by the database or by `tally_merge`."""

    template = "%(expressions)s"
    output_field = TextField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template='(%(expressions)s) COLLATE "C"', **extra)


# How each of DayTotal's columns merges over days and rows; every other one is a count, merged by sum.
EARLIEST, LATEST = ("first", "question"), ("last",)


@dataclass(frozen=True)
class Tally:
    name: str
    sender: str
    values: dict[str, Aggregate]  # named as DayTotal's columns
    where: Q = field(default_factory=Q)
    key: Any = None  # an expression: one count per value of it


@dataclass(frozen=True)
class Row:
    day: dt.date | None
    key: str
    values: dict[str, Any]
    language: str = ""
    site: int | None = None


BOT, CUSTOMER = Message.Sender.BOT, Message.Sender.CUSTOMER
# Counts name only columns that the dashboard's partial indexes carry (migration 0001: never the id), so that
# a live day is read from the index alone.
VOLUME = Tally(
    name="volume",
    sender=CUSTOMER,
    values={"conversations": Count("conversation_id", distinct=True), "n": Count("*")},
)
REPLIES = Tally(
    name="replies",
    sender=BOT,
    values={
        "n": Count("*"),
        "answered": Count("outcome", filter=Q(outcome=Outcome.ANSWER)),
        "unsure": Count("outcome", filter=Q(outcome=Outcome.UNSURE)),
        "handoff": Count("outcome", filter=Q(outcome=Outcome.HANDOFF)),
        "liked": Count("helpful", filter=Q(helpful=True)),
        "disliked": Count("helpful", filter=Q(helpful=False)),
    },
)
# replies to a clicked button carry no ranking (candidates empty): they say nothing about the model
CONFIDENCE = Tally(
    name="confidence",
    sender=BOT,
    values={"n": Count("*")},
    where=Q(confidence__isnull=False) & ~Q(candidates=[]),
    key=Least(Cast(Floor(F("confidence") * BUCKETS), IntegerField()), Value(BUCKETS - 1)),
)
# tenths of a millisecond: the figures show latency to 0.1 ms, and a percentile of the rounded values is the
# rounded percentile, so a day's few hundred distinct values give the period's p50/p95 exactly
LATENCY = Tally(
    name="latency",
    sender=BOT,
    values={"n": Count("*")},
    where=Q(latency_ms__isnull=False),
    key=Cast(Round(F("latency_ms") * 10), IntegerField()),
)
PAIRS = Tally(
    name="pairs",
    sender=BOT,
    values={
        "n": Count("*"),
        "liked": Count("helpful", filter=Q(helpful=True)),
        "disliked": Count("helpful", filter=Q(helpful=False)),
        "rated": Count("helpful"),
    },
    where=Q(pair__isnull=False, outcome__in=[Outcome.ANSWER, Outcome.HANDOFF]),
    key=F("pair_id"),
)
VERSIONS = Tally(
    name="versions",
    sender=BOT,
    values={"n": Count("*"), "first": Min("created_at"), "last": Max("created_at")},
    where=Q(model_version__isnull=False),
    key=F("model_version_id"),
)
# Questions the bot could not answer (and the customer did not then pick a suggestion), grouped as the review
# queue groups them: "g<cluster>" where it has put the message in a group, else "t<the words, lower case>".
UNANSWERED = Tally(
    name="unanswered",
    sender=CUSTOMER,
    values={"n": Count("*"), "question": Min(Bytewise("text")), "last": Max("created_at")},
    where=Q(reply__outcome=Outcome.UNSURE, suggested_pair__isnull=True),
    key=Case(
        When(review__cluster__isnull=False, then=Concat(Value("g"), Cast("review__cluster", CharField()))),
        default=Concat(Value("t"), Lower("text")),
        output_field=CharField(),
    ),
)
TALLIES = (VOLUME, REPLIES, CONFIDENCE, LATENCY, PAIRS, VERSIONS, UNANSWERED)


def tally_live(
    tally: Tally,
    *,
    ranges: list[tuple[dt.datetime, dt.datetime]],
    language: str = "",
    site: int | None = None,
    by_dimension: bool = False,
) -> list[Row]:
    """One aggregation over the messages in `ranges` (of one language and one widget's `site`, if given),
    grouped by day and key, and with `by_dimension` by the conversation's language and site too (the rollup)."""
    if not ranges:
        return []
    when = Q()
    for start, end in ranges:
        when |= Q(created_at__gte=start, created_at__lt=end)
    found = Message.objects.filter(when, tally.where, sender=tally.sender)
    if language:
        found = found.filter(conversation__language=language)
    if site:
        found = found.filter(conversation__site_id=site)
    groups = [
        "t_day",
        *(["conversation__language", "conversation__site_id"] if by_dimension else []),
        *(["t_key"] if tally.key is not None else []),
    ]
    keyed = {"t_key": tally.key} if tally.key is not None else {}
    rows = found.annotate(t_day=TruncDate("created_at"), **keyed).values(*groups).annotate(**tally.values)
    return [
        Row(
            day=row["t_day"],
            key=str(row.get("t_key", "")),
            values={name: row[name] for name in tally.values},
            language=row.get("conversation__language", language),
            site=row.get("conversation__site_id", site),
        )
        for row in rows.order_by()
    ]


def _rolled(name: str) -> Aggregate:
    if name in EARLIEST:
        return Min(Bytewise(name) if name == "question" else name)
    return Max(name) if name in LATEST else Sum(name)


def tally_rolled(
    tally: Tally, *, days: Iterable[dt.date], language: str = "", site: int | None = None, by_day: bool = True
) -> list[Row]:
    """The stored counts of these days summed in the database, per (day and) key over the languages and
    sites asked."""
    found = DayTotal.objects.filter(figure=tally.name, day__in=list(days))
    if language:
        found = found.filter(language=language)
    if site:
        found = found.filter(site=site)
    groups = ["day", "key"] if by_day else ["key"]
    rows = found.values(*groups).annotate(**{f"v_{name}": _rolled(name) for name in tally.values})
    return [
        Row(
            day=row.get("day"),
            key=row["key"],
            values={name: row[f"v_{name}"] for name in tally.values},
            language=language,
            site=site,
        )
        for row in rows.order_by()
    ]


def tally_merge(rows: Iterable[Row], *, by_day: bool) -> dict[Slot, dict[str, Any]]:
    """Counts per (day, key), or per key over all the rows' days when not `by_day`."""
    merged: dict[Slot, dict[str, Any]] = {}
    for row in rows:
        slot = (row.day if by_day else None, row.key)
        have = merged.setdefault(slot, {})
        for name, value in row.values.items():
            if name not in have:
                have[name] = value
            elif name in EARLIEST:
                have[name] = min(have[name], value)
            elif name in LATEST:
                have[name] = max(have[name], value)
            else:
                have[name] += value
    return merged


def nearest_ranks(counts: dict[int, int]) -> tuple[int, int, int]:
    """Nearest-rank p50 and p95 (PostgreSQL's percentile_disc) of values counted per value, and how many."""
    total = sum(counts.values())
    ranks, found, running = {"p50": (total * 50 + 99) // 100, "p95": (total * 95 + 99) // 100}, {}, 0
    for value in sorted(counts):
        running += counts[value]
        found.update({name: value for name, rank in ranks.items() if name not in found and running >= rank})
    return found.get("p50", 0), found.get("p95", 0), total


# The same per rolled day in the database, from the day's counts summed over the languages and sites asked:
# the first value whose running count reaches the rank (running >= total x p / 100).
ROLLED_RANKS = """
SELECT day, MIN(value) FILTER (WHERE running * 100 >= total * 50), MIN(value) FILTER (WHERE running * 100 >= total * 95),
       MAX(total)
FROM (SELECT day, value, SUM(n) OVER (PARTITION BY day ORDER BY value) AS running,
             SUM(n) OVER (PARTITION BY day) AS total
      FROM (SELECT day, CAST(key AS integer) AS value, SUM(n) AS n FROM dashboard_daytotal
            WHERE figure = %s AND day IN ({days}){scope} GROUP BY day, key) counted) ranked
GROUP BY day
"""


def tally_rolled_ranks(
    tally: Tally, *, days: Iterable[dt.date], language: str = "", site: int | None = None
) -> dict[dt.date, tuple[int, int, int]]:
    """Per rolled day, `nearest_ranks` of the tally's integer keys, computed in the database."""
    days = sorted(days)
    params: list[Any]
    if not days:
        return {}
    scope, params = "", [tally.name, *days]
    if language:
        scope, params = scope + " AND language = %s", [*params, language]
    if site:
        scope, params = scope + " AND site = %s", [*params, site]
    sql = ROLLED_RANKS.format(days=", ".join(["%s"] * len(days)), scope=scope)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {_date(day): (p50, p95, int(n)) for day, p50, p95, n in cursor.fetchall()}


def _date(day: Any) -> dt.date:
    return day if isinstance(day, dt.date) else dt.date.fromisoformat(day)  # SQLite gives text


def _ranges(days: list[dt.date]) -> list[tuple[dt.datetime, dt.datetime]]:
    """Consecutive days joined into one time range each."""
    ranges: list[tuple[dt.datetime, dt.datetime]] = []
    for day in sorted(days):
        start, end = midnight(day), midnight(day + dt.timedelta(days=1))
        if ranges and ranges[-1][1] == start:
            ranges[-1] = (ranges[-1][0], end)
        else:
            ranges.append((start, end))
    return ranges


def days_fed_back(*, since: dt.datetime, before: dt.date) -> set[dt.date]:
    """Days before `before` with a message whose feedback came after `since` (indexed on feedback_at)."""
    found = Message.objects.filter(feedback_at__gt=since, created_at__lt=midnight(before))
    return set(found.dates("created_at", "day"))


def days_regrouped(*, since: dt.datetime, before: dt.date) -> set[dt.date]:
    """Days before `before` with a message the review queue put in another group after `since` (indexed on
    clustered_at): their unanswered questions are grouped differently than when they were counted."""
    found = ReviewItem.objects.filter(clustered_at__gt=since, message__created_at__lt=midnight(before))
    return set(found.dates("message__created_at", "day"))


@dataclass
class Source:
    """Where one page's counts come from: the rolled-up days of the period from DayTotal, the rest live; the
    unanswered questions of days whose review groups moved since they were counted live too."""

    period: Period
    rolled: frozenset[dt.date] = frozenset()
    regrouped: frozenset[dt.date] = frozenset()
    cache: dict[tuple[str, bool], dict[Slot, dict[str, Any]]] = field(default_factory=dict)
    live_rows: dict[str, list[Row]] = field(default_factory=dict)

    def live(self, tally: Tally) -> list[Row]:
        """The tally's counts of the days not read from the rollup, per day and key (one query per tally)."""
        if tally.name not in self.live_rows:
            rolled = self.rolled - self.regrouped if tally is UNANSWERED else self.rolled
            live = [day for day in self.period.days if day not in rolled]
            language, site = self.period.language, self.period.site
            self.live_rows[tally.name] = tally_live(tally, ranges=_ranges(live), language=language, site=site)
        return self.live_rows[tally.name]

    def counts(self, tally: Tally, *, by_day: bool) -> dict[Slot, dict[str, Any]]:
        """Per (day, key), or per key over the period; the totals of a tally already read by day are summed
        from those rows rather than read again."""
        if (tally.name, by_day) in self.cache:
            return self.cache[tally.name, by_day]
        if not by_day and (tally.name, True) in self.cache:
            rows = [Row(day=None, key=key, values=n) for (_, key), n in self.cache[tally.name, True].items()]
            self.cache[tally.name, False] = tally_merge(rows, by_day=False)
            return self.cache[tally.name, False]
        rolled = self.rolled - self.regrouped if tally is UNANSWERED else self.rolled
        language, site = self.period.language, self.period.site
        rows = self.live(tally) + tally_rolled(tally, days=rolled, language=language, site=site, by_day=by_day)
        self.cache[tally.name, by_day] = tally_merge(rows, by_day=by_day)
        return self.cache[tally.name, by_day]

    def latency_by_day(self) -> dict[dt.date, tuple[int, int, int]]:
        """`nearest_ranks` of the latencies per day: a rolled day's in the database, a live day's here from
        its counts (a few hundred values a day)."""
        counts: dict[dt.date | None, dict[int, int]] = {}
        for row in self.live(LATENCY):
            counts.setdefault(row.day, {})[int(row.key)] = row.values["n"]
        found = {day: nearest_ranks(values) for day, values in counts.items() if day}
        ranked = tally_rolled_ranks(LATENCY, days=self.rolled, language=self.period.language, site=self.period.site)
        return found | ranked


def source_open(*, period: Period, rollups: bool = True) -> Source:
    """The period's closed days that are rolled up and had no feedback since; without `rollups`, all live.
    The rollups count each language and site apart, so either filter reads them too."""
    if not rollups:
        return Source(period=period)
    today = timezone.localdate()
    found = dict(
        RolledDay.objects.filter(day__gte=period.first, day__lte=period.last, day__lt=today).values_list(
            "day", "computed_at"
        )
    )
    if not found:
        return Source(period=period)
    since = min(found.values())
    rolled = frozenset(found) - days_fed_back(since=since, before=today)
    return Source(period=period, rolled=rolled, regrouped=rolled & days_regrouped(since=since, before=today))


def day_roll(*, day: dt.date, computed_at: dt.datetime) -> None:
    """Replace one closed day's counts, every figure, language and site, in one transaction."""
    ranges = _ranges([day])
    with transaction.atomic():
        RolledDay.objects.filter(day=day).delete()
        rolled = RolledDay.objects.create(day=day, computed_at=computed_at)
        DayTotal.objects.bulk_create(
            DayTotal(
                rolled=rolled,
                day=day,
                language=row.language,
                site=row.site,
                figure=tally.name,
                key=row.key,
                **row.values,
            )
            for tally in TALLIES
            for row in tally_live(tally, ranges=ranges, by_dimension=True)
        )


def rollups_refresh() -> int:
    """Roll up every closed day not rolled up yet, and again those whose messages got feedback or moved to
    another review group since; returns how many days were read. Days are local days (TIME_ZONE); today is
    never rolled up."""
    started = timezone.now()
    today = timezone.localdate()
    oldest = Message.objects.aggregate(first=Min("created_at"))["first"]
    if oldest is None:
        return 0
    rolled = dict(RolledDay.objects.values_list("day", "computed_at"))
    stale: set[dt.date] = set()
    if rolled:
        since = min(rolled.values())
        stale = days_fed_back(since=since, before=today) | days_regrouped(since=since, before=today)
    first = timezone.localdate(oldest)
    todo = [first + dt.timedelta(days=n) for n in range((today - first).days)]
    todo = [day for day in todo if day not in rolled or day in stale]
    for day in todo:
        day_roll(day=day, computed_at=started - COMMIT_MARGIN)
    RolledDay.objects.update(computed_at=started - COMMIT_MARGIN)
    if todo and connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # the planner learns the new row counts now, not at autovacuum's pace
            cursor.execute(f"ANALYZE {DayTotal._meta.db_table}")
    return len(todo)


def rollups_forget(*, days: Iterable[dt.date]) -> None:
    """Messages of these days are going away: read them live until the task rolls them up again."""
    RolledDay.objects.filter(day__in=list(days)).delete()
