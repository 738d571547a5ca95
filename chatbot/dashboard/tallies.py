"""The counts behind the figures, per day and key: read live from messages for today and any day not rolled
up yet, and from DayTotal for the closed days the rollup task has read. Every count merges by sum, min or
max, so a period's figure is the same from either source."""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Aggregate, BigIntegerField, Count, F, IntegerField, Max, Min, Q, Sum, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Floor, Least, Round, TruncDate
from django.utils import timezone

from chatbot.conversations.models import Message
from chatbot.dashboard.models import DayTotal, RolledDay
from chatbot.dashboard.periods import Period, midnight

BUCKETS = 20  # confidence histogram: 0.05 wide
# Feedback stamped up to this long before the task started may commit after the task looked for it.
COMMIT_MARGIN = dt.timedelta(minutes=1)
Outcome = Message.Outcome
Slot = tuple[dt.date | None, str]


@dataclass(frozen=True)
class Tally:
    name: str
    sender: str
    values: dict[str, Aggregate]
    where: Q = field(default_factory=Q)
    key: Any = None  # an expression: one count per value of it
    earliest: tuple[str, ...] = ()  # merged by min; the others by max or sum
    latest: tuple[str, ...] = ()


@dataclass(frozen=True)
class Row:
    day: dt.date | None
    language: str
    key: str
    values: dict[str, Any]


BOT, CUSTOMER = Message.Sender.BOT, Message.Sender.CUSTOMER
VOLUME = Tally(
    name="volume",
    sender=CUSTOMER,
    values={"conversations": Count("conversation_id", distinct=True), "messages": Count("id")},
)
REPLIES = Tally(
    name="replies",
    sender=BOT,
    values={
        "replies": Count("id"),
        "answered": Count("id", filter=Q(outcome=Outcome.ANSWER)),
        "unsure": Count("id", filter=Q(outcome=Outcome.UNSURE)),
        "handoff": Count("id", filter=Q(outcome=Outcome.HANDOFF)),
        "liked": Count("id", filter=Q(helpful=True)),
        "disliked": Count("id", filter=Q(helpful=False)),
    },
)
# replies to a clicked button carry no ranking (candidates empty): they say nothing about the model
CONFIDENCE = Tally(
    name="confidence",
    sender=BOT,
    values={"n": Count("id")},
    where=Q(confidence__isnull=False) & ~Q(candidates=[]),
    key=Least(Cast(Floor(F("confidence") * BUCKETS), IntegerField()), Value(BUCKETS - 1)),
)
# tenths of a millisecond: the figures show latency to 0.1 ms, and a percentile of the rounded values is the
# rounded percentile, so a day's few hundred distinct values give the period's p50/p95 exactly
LATENCY = Tally(
    name="latency",
    sender=BOT,
    values={"n": Count("id")},
    where=Q(latency_ms__isnull=False),
    key=Cast(Round(F("latency_ms") * 10), IntegerField()),
)
PAIRS = Tally(
    name="pairs",
    sender=BOT,
    values={
        "answers": Count("id"),
        "liked": Count("id", filter=Q(helpful=True)),
        "disliked": Count("id", filter=Q(helpful=False)),
        "rated": Count("id", filter=Q(helpful__isnull=False)),
    },
    where=Q(pair__isnull=False, outcome__in=[Outcome.ANSWER, Outcome.HANDOFF]),
    key=F("pair_id"),
)
VERSIONS = Tally(
    name="versions",
    sender=BOT,
    values={"replies": Count("id"), "first": Min("created_at"), "last": Max("created_at")},
    where=Q(model_version__isnull=False),
    key=F("model_version_id"),
    earliest=("first",),
    latest=("last",),
)
TALLIES = (VOLUME, REPLIES, CONFIDENCE, LATENCY, PAIRS, VERSIONS)


def _json(value: Any) -> Any:
    """Times as UTC text of one length, so that text order is time order (min/max over stored days)."""
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds") if isinstance(value, dt.datetime) else value


def tally_live(
    tally: Tally,
    *,
    ranges: list[tuple[dt.datetime, dt.datetime]],
    language: str = "",
    by_language: bool = False,
    site: int | None = None,
) -> list[Row]:
    """One aggregation over the messages in `ranges` (of one widget's `site`, if given), grouped by day (and
    language) and key."""
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
        *(["conversation__language"] if by_language else []),
        *(["t_key"] if tally.key is not None else []),
    ]
    keyed = {"t_key": tally.key} if tally.key is not None else {}
    rows = found.annotate(t_day=TruncDate("created_at"), **keyed).values(*groups).annotate(**tally.values)
    return [
        Row(
            day=row["t_day"],
            language=row.get("conversation__language", language),
            key=str(row.get("t_key", "")),
            values={name: _json(row[name]) for name in tally.values},
        )
        for row in rows.order_by()
    ]


def _rolled(tally: Tally, name: str) -> Aggregate:
    value = KeyTextTransform(name, "values")
    if name in tally.earliest:
        return Min(value)
    if name in tally.latest:
        return Max(value)
    return Sum(Cast(value, BigIntegerField()))


def tally_rolled(tally: Tally, *, days: Iterable[dt.date], language: str = "", by_day: bool = True) -> list[Row]:
    """The stored counts of these days summed in the database, per (day and) key over the languages asked."""
    found = DayTotal.objects.filter(figure=tally.name, day__in=list(days))
    if language:
        found = found.filter(language=language)
    groups = ["day", "key"] if by_day else ["key"]
    rows = found.values(*groups).annotate(**{f"v_{name}": _rolled(tally, name) for name in tally.values})
    return [
        Row(
            day=row.get("day"),
            language=language,
            key=row["key"],
            values={name: row[f"v_{name}"] for name in tally.values},
        )
        for row in rows.order_by()
    ]


def tally_merge(tally: Tally, rows: Iterable[Row], *, by_day: bool) -> dict[Slot, dict[str, Any]]:
    """Counts per (day, key), or per key over all the rows' days when not `by_day`."""
    merged: dict[Slot, dict[str, Any]] = {}
    for row in rows:
        slot = (row.day if by_day else None, row.key)
        have = merged.setdefault(slot, {})
        for name, value in row.values.items():
            if name not in have:
                have[name] = value
            elif name in tally.earliest:
                have[name] = min(have[name], value)
            elif name in tally.latest:
                have[name] = max(have[name], value)
            else:
                have[name] += value
    return merged


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


@dataclass
class Source:
    """Where one page's counts come from: the rolled-up days of the period from DayTotal, the rest live."""

    period: Period
    rolled: frozenset[dt.date] = frozenset()
    cache: dict[tuple[str, bool], dict[Slot, dict[str, Any]]] = field(default_factory=dict)

    def counts(self, tally: Tally, *, by_day: bool) -> dict[Slot, dict[str, Any]]:
        if (tally.name, by_day) not in self.cache:
            live = [day for day in self.period.days if day not in self.rolled]
            rows = tally_live(tally, ranges=_ranges(live), language=self.period.language, site=self.period.site)
            rows += tally_rolled(tally, days=self.rolled, language=self.period.language, by_day=by_day)
            self.cache[tally.name, by_day] = tally_merge(tally, rows, by_day=by_day)
        return self.cache[tally.name, by_day]


def source_open(*, period: Period, rollups: bool = True) -> Source:
    """The period's closed days that are rolled up and had no feedback since; without `rollups`, all live. The
    rollups are per language, not per site: one site's figures are read live."""
    if not rollups or period.site:
        return Source(period=period)
    today = timezone.localdate()
    found = dict(
        RolledDay.objects.filter(day__gte=period.first, day__lte=period.last, day__lt=today).values_list(
            "day", "computed_at"
        )
    )
    if not found:
        return Source(period=period)
    stale = days_fed_back(since=min(found.values()), before=today)
    return Source(period=period, rolled=frozenset(found) - stale)


def day_roll(*, day: dt.date, computed_at: dt.datetime) -> None:
    """Replace one closed day's counts, every figure and language, in one transaction."""
    ranges = _ranges([day])
    with transaction.atomic():
        RolledDay.objects.filter(day=day).delete()
        rolled = RolledDay.objects.create(day=day, computed_at=computed_at)
        DayTotal.objects.bulk_create(
            DayTotal(rolled=rolled, day=day, language=row.language, figure=tally.name, key=row.key, values=row.values)
            for tally in TALLIES
            for row in tally_live(tally, ranges=ranges, by_language=True)
        )


def rollups_refresh() -> int:
    """Roll up every closed day not rolled up yet, and again those whose messages got feedback since; returns
    how many days were read. Days are local days (TIME_ZONE); today is never rolled up."""
    started = timezone.now()
    today = timezone.localdate()
    oldest = Message.objects.aggregate(first=Min("created_at"))["first"]
    if oldest is None:
        return 0
    rolled = dict(RolledDay.objects.values_list("day", "computed_at"))
    stale = days_fed_back(since=min(rolled.values()), before=today) if rolled else set()
    first = timezone.localdate(oldest)
    todo = [first + dt.timedelta(days=n) for n in range((today - first).days)]
    todo = [day for day in todo if day not in rolled or day in stale]
    for day in todo:
        day_roll(day=day, computed_at=started - COMMIT_MARGIN)
    RolledDay.objects.update(computed_at=started - COMMIT_MARGIN)
    return len(todo)


def rollups_forget(*, days: Iterable[dt.date]) -> None:
    """Messages of these days are going away: read them live until the task rolls them up again."""
    RolledDay.objects.filter(day__in=list(days)).delete()
