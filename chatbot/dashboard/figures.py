"""The dashboard's figures, from the per-day counts in tallies.py (closed days rolled up, the rest live) and,
for the hand-offs, one aggregation over the period's requests; never messages loaded into Python."""

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Max,
    QuerySet,
)
from django.urls import reverse
from django.utils.formats import localize
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from chatbot.console.models import Handoff
from chatbot.conversations.models import Message
from chatbot.dashboard.periods import Period
from chatbot.dashboard.tallies import (
    BUCKETS,
    CONFIDENCE,
    LATENCY,
    PAIRS,
    REPLIES,
    UNANSWERED,
    VERSIONS,
    VOLUME,
    Slot,
    Source,
    nearest_ranks,
    source_open,
)
from chatbot.knowledge.models import QAPair
from chatbot.registry.models import ModelVersion

TOP = 20
Outcome = Message.Outcome


@dataclass
class Figure:
    key: str
    title: str
    meaning: str
    columns: list[str]
    rows: list[list[Any]]
    chart: dict[str, Any] | None = None  # what dashboard.js draws: kind, labels, series, markers
    links: list[str] = field(default_factory=list)  # per row, for tables that lead to the admin

    @property
    def empty(self) -> bool:
        return not self.rows or all(not any(isinstance(v, int | float) and v for v in row[1:]) for row in self.rows)

    @property
    def table_rows(self) -> SafeString:
        """The table's rows as HTML, every value escaped: a template loop per cell took longer than the
        figures' queries (a month is some 700 cells)."""
        links: list[str | None] = list(self.links) if self.links else [None] * len(self.rows)
        return format_html_join(
            "", "<tr>{}</tr>", ((_cells(row, link),) for row, link in zip(self.rows, links, strict=True))
        )


def _cells(row: list[Any], link: str | None) -> SafeString:
    shown = ["–" if value is None else localize(value) for value in row]
    first = format_html('<a href="{}">{}</a>', link, shown[0]) if link else shown[0]
    return format_html_join("", "<td>{}</td>", ((cell,) for cell in [first, *shown[1:]]))


def _scoped(found: QuerySet, period: Period, conversation: str) -> QuerySet:
    """`found` narrowed to the period's language and site, through its `conversation` relation."""
    if period.language:
        found = found.filter(**{f"{conversation}__language": period.language})
    return found.filter(**{f"{conversation}__site_id": period.site}) if period.site else found


def handoffs_in(period: Period) -> QuerySet:
    """Requests for a person made in the period."""
    return _scoped(
        Handoff.objects.filter(requested_at__gte=period.start, requested_at__lt=period.end), period, "conversation"
    )


def _by_day(counts: dict[Slot, dict[str, Any]], period: Period, keys: list[str]) -> list[list[Any]]:
    """One row per day of the period, zeros where the database had no row."""
    return [[str(day)] + [counts.get((day, ""), {}).get(key) or 0 for key in keys] for day in period.days]


def _share(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def volume_figure(source: Source) -> Figure:
    table = _by_day(source.counts(VOLUME, by_day=True), source.period, ["conversations", "n"])
    return Figure(
        key="volume",
        title="Conversations and customer messages per day",
        meaning="Conversations in which the customer wrote that day, and how many messages they sent.",
        columns=["day", "conversations", "customer messages"],
        rows=table,
        chart={
            "kind": "line",
            "labels": [r[0] for r in table],
            "series": _series(table, ["Conversations", "Messages"]),
        },
    )


def outcomes_figure(source: Source) -> Figure:
    counts = _by_day(source.counts(REPLIES, by_day=True), source.period, ["answered", "unsure", "handoff"])
    table = [
        [day, a, u, h, _share(a, a + u + h), _share(u, a + u + h), _share(h, a + u + h)] for day, a, u, h in counts
    ]
    shares = [[row[0]] + [v or 0 for v in row[4:]] for row in table]
    return Figure(
        key="outcomes",
        title="Outcome of the bot's replies per day",
        meaning="Answered: a curated answer; not sure: closest questions offered; handed off: a person was offered.",
        columns=["day", "answered", "not sure", "handed off", "answered %", "not sure %", "handed off %"],
        rows=table,
        chart={
            "kind": "stacked",
            "unit": "%",
            "labels": [r[0] for r in shares],
            "series": _series(shares, ["Answered", "Not sure", "Handed off"]),
        },
    )


def feedback_figure(source: Source) -> Figure:
    totals = source.counts(REPLIES, by_day=False).get((None, ""), {})
    replies, liked, disliked = (totals.get(name, 0) for name in ("n", "liked", "disliked"))
    rated = liked + disliked
    table = [
        ["helpful", liked, _share(liked, rated)],
        ["not helpful", disliked, _share(disliked, rated)],
        ["not rated", replies - rated, None],
    ]
    return Figure(
        key="feedback",
        title="Helpful / not helpful",
        meaning="Thumbs up and down (and “none of these”) on the bot's replies; % of the rated replies.",
        columns=["feedback", "replies", "% of rated"],
        rows=table,
        chart={
            "kind": "bars",
            "labels": [r[0] for r in table[:2]],
            "series": [{"name": "Replies", "values": [r[1] for r in table[:2]]}],
        },
    )


def confidence_figure(source: Source) -> Figure:
    found = {int(key): n["n"] for (_, key), n in source.counts(CONFIDENCE, by_day=False).items()}
    labels = [f"{b / BUCKETS:.2f}–{(b + 1) / BUCKETS:.2f}" for b in range(BUCKETS)]
    table = [[labels[b], found.get(b, 0)] for b in range(BUCKETS)]
    active = ModelVersion.objects.filter(is_active=True).values_list("threshold", flat=True).first()
    chart: dict[str, Any] = {"kind": "histogram", "labels": labels, "series": _series(table, ["Replies"])}
    if active is not None:
        chart["threshold"] = {
            "index": min(int(active * BUCKETS), BUCKETS - 1),
            "label": f"not-sure threshold {active:.3f}",
        }
    meaning = "The model's confidence in its best answer; below the threshold the bot says it is not sure."
    return Figure(
        key="confidence",
        title="Confidence of the model's replies",
        meaning=meaning,
        columns=["confidence", "replies"],
        rows=table,
        chart=chart,
    )


def unanswered_figure(source: Source) -> Figure:
    groups = source.counts(UNANSWERED, by_day=False)  # "g<cluster>": a review group; "t<words>": not grouped yet
    top = sorted(groups.items(), key=lambda item: (-item[1]["n"], -item[1]["last"].timestamp(), item[0][1]))[:TOP]
    queue = reverse("admin:review_reviewitem_changelist")
    table, links = [], []
    for (_, group), n in top:
        table.append([n["question"], n["n"]])
        links.append(f"{queue}?cluster={group[1:]}&status=all" if group[0] == "g" else f"{queue}?reason=no_answer")
    return Figure(
        key="unanswered",
        title=f"Top {TOP} questions the bot could not answer",
        meaning="Grouped as the review queue groups them (similar messages together); each leads to its group.",
        columns=["question (one of the group)", "times asked"],
        rows=table,
        links=links,
    )


def _pair_rows(source: Source, *, worst: bool) -> tuple[list[list[Any]], list[str]]:
    counts = {int(key): n for (_, key), n in source.counts(PAIRS, by_day=False).items()}
    questions = dict(QAPair.objects.filter(pk__in=counts).values_list("pk", "question"))  # gone: not counted
    found = [(pk, n) for pk, n in counts.items() if pk in questions and (n["disliked"] or not worst)]
    if worst:
        found.sort(key=lambda item: (-item[1]["disliked"] / item[1]["rated"], -item[1]["disliked"], item[0]))
    else:
        found.sort(key=lambda item: (-item[1]["n"], item[0]))
    table = [
        [questions[pk], n["n"], n["liked"], n["disliked"], _share(n["disliked"], n["rated"])] for pk, n in found[:TOP]
    ]
    return table, [reverse("admin:knowledge_qapair_change", args=[pk]) for pk, _ in found[:TOP]]


PAIR_COLUMNS = ["pair", "answers", "helpful", "not helpful", "not helpful %"]


def top_pairs_figure(source: Source) -> Figure:
    table, links = _pair_rows(source, worst=False)
    return Figure(
        key="top_pairs",
        title=f"Top {TOP} answered pairs",
        meaning="The curated answers given most often.",
        columns=PAIR_COLUMNS,
        rows=table,
        links=links,
    )


def worst_pairs_figure(source: Source) -> Figure:
    table, links = _pair_rows(source, worst=True)
    return Figure(
        key="worst_pairs",
        title="Pairs with the worst feedback",
        meaning="Answers customers marked not helpful, the highest share first: candidates for rewriting.",
        columns=PAIR_COLUMNS,
        rows=table,
        links=links,
    )


def _in_ms(ranks: tuple[int, int, int] | None) -> list[Any]:
    """p50, p95 (in tenths of a ms) and count as the figures show them."""
    p50, p95, n = ranks or (0, 0, 0)
    return [p50 / 10, p95 / 10, n]


def latency_figure(source: Source) -> Figure:
    found = source.latency_by_day()
    table = [[str(day), *_in_ms(found.get(day))] for day in source.period.days]
    return Figure(
        key="latency",
        title="Answer latency per day (ms)",
        meaning="Time the model took to choose each reply: half are faster than p50, 95 % faster than p95.",
        columns=["day", "p50 ms", "p95 ms", "replies"],
        rows=table,
        chart={"kind": "line", "labels": [r[0] for r in table], "series": _series(table, ["p50", "p95"])},
    )


def latency_total_figure(source: Source) -> Figure:
    tenths = {int(key): n["n"] for (_, key), n in source.counts(LATENCY, by_day=False).items()}
    return Figure(
        key="latency_total",
        title="Answer latency over the period (ms)",
        meaning="p50 and p95 of every reply in the period.",
        columns=["period", "p50 ms", "p95 ms", "replies"],
        rows=[["whole period", *_in_ms(nearest_ranks(tenths))]],
    )


def versions_figure(source: Source) -> Figure:
    counts = {int(key): n for (_, key), n in source.counts(VERSIONS, by_day=False).items()}
    encoders = dict(ModelVersion.objects.filter(pk__in=counts).values_list("pk", "encoder"))  # gone: not counted
    found = sorted(((pk, n) for pk, n in counts.items() if pk in encoders), key=lambda item: item[1]["first"])
    table = [[f"v{pk} ({encoders[pk]})", n["n"], _minute(n["first"]), _minute(n["last"])] for pk, n in found]
    links = [reverse("admin:registry_modelversion_change", args=[pk]) for pk, _ in found]
    return Figure(
        key="versions",
        title="Model versions in service",
        meaning="Which model answered, from its first to its last reply in the period (markers on the charts).",
        columns=["version", "replies", "first reply", "last reply"],
        rows=table,
        links=links,
    )


def satisfaction_figure(source: Source) -> Figure:
    rows = handoffs_in(source.period).filter(rating__isnull=False).values("rating").annotate(n=Count("id")).order_by()
    found = {row["rating"]: row["n"] for row in rows}
    rated = sum(found.values())
    table: list[list[Any]] = [
        [f"{stars} of 5", found.get(stars, 0), _share(found.get(stars, 0), rated)] for stars in range(1, 6)
    ]
    mean = round(sum(stars * n for stars, n in found.items()) / rated, 2) if rated else None
    return Figure(
        key="satisfaction",
        title="Satisfaction of conversations with a person",
        meaning=f"Customers' ratings when a person ended the conversation (hand-offs asked for in the period); "
        f"mean {mean if mean is not None else '–'} of 5 over {rated} ratings.",
        columns=["rating", "conversations", "% of rated"],
        rows=table,
        chart={"kind": "bars", "labels": [r[0] for r in table], "series": _series(table, ["Conversations"])},
    )


class PercentileCont(Aggregate):
    """PostgreSQL's percentile_cont: the value at that fraction of the ordered rows, interpolated between the
    two nearest (p50 of 30, 60, 90 s is 60 s; p95 is 87 s)."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"


def percentile_cont(ordered: list[dt.timedelta], fraction: float) -> dt.timedelta | None:
    """The same interpolation over values already in order."""
    if not ordered:
        return None
    rank = (len(ordered) - 1) * fraction
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _since_request(later: str) -> Any:
    return ExpressionWrapper(F(later) - F("requested_at"), output_field=DurationField())


HANDOFF_TIMES = {"wait": "claimed_at", "first": "first_response_at"}
FRACTIONS = {"p50": 0.5, "p95": 0.95}


def handoff_times(found: QuerySet) -> dict[str, Any]:
    """Count, p50, p95 and longest of the waits for a person to take the conversation and to first write: one
    aggregate on PostgreSQL; on SQLite (the embedded mode, a small install) `handoff_times_ordered`."""
    if connection.vendor != "postgresql":
        return handoff_times_ordered(found)
    times = {
        f"{name}_{p}": PercentileCont(_since_request(later), fraction=fraction, output_field=DurationField())
        for name, later in HANDOFF_TIMES.items()
        for p, fraction in FRACTIONS.items()
    }
    longest = {f"{name}_max": Max(_since_request(later)) for name, later in HANDOFF_TIMES.items()}
    return found.aggregate(**_handoff_counts(), **times, **longest)


def handoff_times_ordered(found: QuerySet) -> dict[str, Any]:
    """The same figures from one ordered query per time, interpolated as percentile_cont does."""
    totals = found.aggregate(**_handoff_counts())
    for name, later in HANDOFF_TIMES.items():
        ordered = list(
            found.filter(**{f"{later}__isnull": False})
            .annotate(t=_since_request(later))
            .order_by("t")
            .values_list("t", flat=True)
        )
        totals.update({f"{name}_{p}": percentile_cont(ordered, fraction) for p, fraction in FRACTIONS.items()})
        totals[f"{name}_max"] = ordered[-1] if ordered else None
    return totals


def _handoff_counts() -> dict[str, Count]:
    return {"requested": Count("id"), **{name: Count(later) for name, later in HANDOFF_TIMES.items()}}


def handoff_times_figure(source: Source) -> Figure:
    found = handoff_times(handoffs_in(source.period))
    rows = [
        ["wait: request to a person taking it", "wait"],
        ["first response: request to a person's first words", "first"],
    ]
    table: list[list[Any]] = [
        [label, found[name], *(_s(found[f"{name}_{p}"]) for p in ("p50", "p95", "max"))] for label, name in rows
    ]
    table.append(["requests (taken or not)", found["requested"], None, None, None])
    return Figure(
        key="handoff_times",
        title="Hand-off wait and first response (s)",
        meaning="How long customers who asked for a person waited for one to take the conversation, and to write: "
        "half waited less than p50, 95 % less than p95.",
        columns=["time", "hand-offs", "p50 s", "p95 s", "longest s"],
        rows=table,
    )


def _s(duration: dt.timedelta | None) -> float | None:
    return None if duration is None else round(duration.total_seconds(), 1)


def _minute(moment: dt.datetime) -> str:
    return f"{moment.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"


def _series(table: list[list[Any]], names: list[str]) -> list[dict[str, Any]]:
    return [{"name": name, "values": [row[i + 1] for row in table]} for i, name in enumerate(names)]


FIGURES = {
    "volume": volume_figure,
    "outcomes": outcomes_figure,
    "feedback": feedback_figure,
    "confidence": confidence_figure,
    "latency": latency_figure,
    "latency_total": latency_total_figure,
    "unanswered": unanswered_figure,
    "top_pairs": top_pairs_figure,
    "worst_pairs": worst_pairs_figure,
    "versions": versions_figure,
    "satisfaction": satisfaction_figure,
    "handoff_times": handoff_times_figure,
}


def figures_compute(*, period: Period, only: str = "", rollups: bool = True) -> list[Figure]:
    """The period's figures; `rollups=False` reads every day from the messages (the rollups' own check)."""
    source = source_open(period=period, rollups=rollups)
    figures = [build(source) for key, build in FIGURES.items() if not only or key == only]
    markers = [{"day": row[2][:10], "label": row[0]} for row in figures_by_key(figures).get("versions", _NONE).rows]
    for figure in figures:
        if figure.chart and figure.chart["kind"] in ("line", "stacked"):
            figure.chart["markers"] = markers
    return figures


_NONE = Figure(key="", title="", meaning="", columns=[], rows=[])


def figures_by_key(figures: list[Figure]) -> dict[str, Figure]:
    return {figure.key: figure for figure in figures}
