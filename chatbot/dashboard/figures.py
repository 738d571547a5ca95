"""The dashboard's figures: each one database aggregation over the period, never messages loaded into Python."""

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import (
    Aggregate,
    Case,
    CharField,
    Count,
    F,
    FloatField,
    IntegerField,
    Max,
    Min,
    Q,
    QuerySet,
    Value,
    When,
    Window,
)
from django.db.models.functions import Cast, Concat, Floor, Least, Lower, RowNumber, TruncDate
from django.urls import reverse

from chatbot.conversations.models import Message
from chatbot.dashboard.periods import Period
from chatbot.registry.models import ModelVersion

BUCKETS = 20  # confidence histogram: 0.05 wide
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


def messages_in(period: Period, sender: str) -> QuerySet:
    found = Message.objects.filter(sender=sender, created_at__gte=period.start, created_at__lt=period.end)
    return found.filter(conversation__language=period.language) if period.language else found


def _by_day(rows: list[dict[str, Any]], period: Period, keys: list[str]) -> list[list[Any]]:
    """One row per day of the period, zeros where the database had no row."""
    found = {str(row["day"]): row for row in rows}
    return [[str(day)] + [found.get(str(day), {}).get(key) or 0 for key in keys] for day in period.days]


def _share(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def volume_figure(period: Period) -> Figure:
    rows = (
        messages_in(period, Message.Sender.CUSTOMER)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(conversations=Count("conversation_id", distinct=True), messages=Count("id"))
        .order_by("day")
    )
    table = _by_day(list(rows), period, ["conversations", "messages"])
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


def outcomes_figure(period: Period) -> Figure:
    rows = (
        messages_in(period, Message.Sender.BOT)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(
            answered=Count("id", filter=Q(outcome=Outcome.ANSWER)),
            unsure=Count("id", filter=Q(outcome=Outcome.UNSURE)),
            handoff=Count("id", filter=Q(outcome=Outcome.HANDOFF)),
        )
        .order_by("day")
    )
    counts = _by_day(list(rows), period, ["answered", "unsure", "handoff"])
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


def feedback_figure(period: Period) -> Figure:
    totals = messages_in(period, Message.Sender.BOT).aggregate(
        replies=Count("id"),
        liked=Count("id", filter=Q(helpful=True)),
        disliked=Count("id", filter=Q(helpful=False)),
    )
    rated = totals["liked"] + totals["disliked"]
    table = [
        ["helpful", totals["liked"], _share(totals["liked"], rated)],
        ["not helpful", totals["disliked"], _share(totals["disliked"], rated)],
        ["not rated", totals["replies"] - rated, None],
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


def confidence_figure(period: Period) -> Figure:
    # replies to a clicked button carry no ranking (candidates empty): they say nothing about the model
    bucket = Least(Cast(Floor(F("confidence") * BUCKETS), IntegerField()), Value(BUCKETS - 1))
    rows = (
        messages_in(period, Message.Sender.BOT)
        .filter(confidence__isnull=False)
        .exclude(candidates=[])
        .annotate(bucket=bucket)
        .values("bucket")
        .annotate(n=Count("id"))
        .order_by("bucket")
    )
    found = {row["bucket"]: row["n"] for row in rows}
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


def unanswered_figure(period: Period) -> Figure:
    # a review group where the review queue has made one, else the same words
    group = Case(
        When(review__cluster__isnull=False, then=Concat(Value("g"), Cast("review__cluster", CharField()))),
        default=Concat(Value("t"), Lower("text")),
        output_field=CharField(),
    )
    rows = (
        messages_in(period, Message.Sender.CUSTOMER)
        .filter(reply__outcome=Outcome.UNSURE, suggested_pair__isnull=True)
        .annotate(group=group)
        .values("group")
        .annotate(asked=Count("id"), question=Min("text"), cluster=Max("review__cluster"), last=Max("created_at"))
        .order_by("-asked", "-last")[:TOP]
    )
    queue = reverse("admin:review_reviewitem_changelist")
    table, links = [], []
    for row in rows:
        table.append([row["question"], row["asked"]])
        links.append(f"{queue}?cluster={row['cluster']}&status=all" if row["cluster"] else f"{queue}?reason=no_answer")
    return Figure(
        key="unanswered",
        title=f"Top {TOP} questions the bot could not answer",
        meaning="Grouped as the review queue groups them (similar messages together); each leads to its group.",
        columns=["question (one of the group)", "times asked"],
        rows=table,
        links=links,
    )


def _pairs_answered(period: Period) -> QuerySet:
    return (
        messages_in(period, Message.Sender.BOT)
        .filter(pair__isnull=False, outcome__in=[Outcome.ANSWER, Outcome.HANDOFF])
        .values("pair_id", "pair__question")
        .annotate(
            answers=Count("id"),
            liked=Count("id", filter=Q(helpful=True)),
            disliked=Count("id", filter=Q(helpful=False)),
            rated=Count("id", filter=Q(helpful__isnull=False)),
        )
    )


def _pair_rows(rows: QuerySet) -> tuple[list[list[Any]], list[str]]:
    table = [
        [
            r["pair__question"],
            r["answers"],
            r["liked"],
            r["disliked"],
            _share(r["disliked"], r["rated"]),
        ]
        for r in rows
    ]
    return table, [reverse("admin:knowledge_qapair_change", args=[r["pair_id"]]) for r in rows]


PAIR_COLUMNS = ["pair", "answers", "helpful", "not helpful", "not helpful %"]


def top_pairs_figure(period: Period) -> Figure:
    table, links = _pair_rows(_pairs_answered(period).order_by("-answers", "pair_id")[:TOP])
    return Figure(
        key="top_pairs",
        title=f"Top {TOP} answered pairs",
        meaning="The curated answers given most often.",
        columns=PAIR_COLUMNS,
        rows=table,
        links=links,
    )


def worst_pairs_figure(period: Period) -> Figure:
    rows = _pairs_answered(period).filter(disliked__gt=0)
    rows = rows.annotate(bad=F("disliked") * 1.0 / F("rated")).order_by("-bad", "-disliked", "pair_id")[:TOP]
    table, links = _pair_rows(rows)
    return Figure(
        key="worst_pairs",
        title="Pairs with the worst feedback",
        meaning="Answers customers marked not helpful, the highest share first: candidates for rewriting.",
        columns=PAIR_COLUMNS,
        rows=table,
        links=links,
    )


class Percentile(Aggregate):
    """Nearest-rank percentile, PostgreSQL's percentile_disc: the smallest value with at least that share of
    the rows at or below it (one sort inside the aggregate)."""

    function = "percentile_disc"
    template = "%(function)s(%(percentile)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def _latency_rows(found: QuerySet, *, by_day: bool) -> list[dict[str, Any]]:
    """p50, p95 and count of latency_ms, per day or for all of `found`."""
    found = found.filter(latency_ms__isnull=False).order_by()
    day = TruncDate("created_at") if by_day else Value("all")
    if connection.vendor == "postgresql":
        return list(
            found.annotate(day=day)
            .values("day")
            .annotate(
                p50=Percentile("latency_ms", percentile=0.5),
                p95=Percentile("latency_ms", percentile=0.95),
                answers=Count("id"),
            )
            .order_by("day")
        )
    return _latency_rows_windowed(found, day=day, by_day=by_day)


def _latency_rows_windowed(found: QuerySet, *, day: Any, by_day: bool) -> list[dict[str, Any]]:
    """The same nearest-rank percentiles with window functions, for SQLite (the embedded mode)."""
    partition = [TruncDate("created_at")] if by_day else None
    ranked = found.annotate(
        day=day,
        rn=Window(RowNumber(), partition_by=partition, order_by=F("latency_ms").asc()),
        n=Window(Count("id"), partition_by=partition),
    ).values("day", "latency_ms", "rn", "n")
    sql, params = ranked.query.sql_with_params()
    outer = (
        "SELECT day, MAX(CASE WHEN rn = (n * 50 + 99) / 100 THEN latency_ms END),"
        " MAX(CASE WHEN rn = (n * 95 + 99) / 100 THEN latency_ms END), MAX(n)"
        f" FROM ({sql}) ranked GROUP BY day ORDER BY day"
    )
    with connection.cursor() as cursor:
        cursor.execute(outer, params)
        return [{"day": d, "p50": p50, "p95": p95, "answers": n} for d, p50, p95, n in cursor.fetchall()]


def latency_figure(period: Period) -> Figure:
    found = _latency_rows(messages_in(period, Message.Sender.BOT), by_day=True)
    table = [
        [d, round(p50, 1), round(p95, 1), n] for d, p50, p95, n in _by_day(found, period, ["p50", "p95", "answers"])
    ]
    return Figure(
        key="latency",
        title="Answer latency per day (ms)",
        meaning="Time the model took to choose each reply: half are faster than p50, 95 % faster than p95.",
        columns=["day", "p50 ms", "p95 ms", "replies"],
        rows=table,
        chart={"kind": "line", "labels": [r[0] for r in table], "series": _series(table, ["p50", "p95"])},
    )


def latency_total_figure(period: Period) -> Figure:
    found = _latency_rows(messages_in(period, Message.Sender.BOT), by_day=False)
    row = found[0] if found else {"p50": None, "p95": None, "answers": 0}
    table = [["whole period", round(row["p50"] or 0, 1), round(row["p95"] or 0, 1), row["answers"] or 0]]
    return Figure(
        key="latency_total",
        title="Answer latency over the period (ms)",
        meaning="p50 and p95 of every reply in the period.",
        columns=["period", "p50 ms", "p95 ms", "replies"],
        rows=table,
    )


def versions_figure(period: Period) -> Figure:
    rows = (
        messages_in(period, Message.Sender.BOT)
        .filter(model_version__isnull=False)
        .values("model_version_id", "model_version__encoder")
        .annotate(first=Min("created_at"), last=Max("created_at"), replies=Count("id"))
        .order_by("first")
    )
    table = [
        [
            f"v{r['model_version_id']} ({r['model_version__encoder']})",
            r["replies"],
            _minute(r["first"]),
            _minute(r["last"]),
        ]
        for r in rows
    ]
    links = [reverse("admin:registry_modelversion_change", args=[r["model_version_id"]]) for r in rows]
    return Figure(
        key="versions",
        title="Model versions in service",
        meaning="Which model answered, from its first to its last reply in the period (markers on the charts).",
        columns=["version", "replies", "first reply", "last reply"],
        rows=table,
        links=links,
    )


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
}


def figures_compute(*, period: Period, only: str = "") -> list[Figure]:
    figures = [build(period) for key, build in FIGURES.items() if not only or key == only]
    markers = [{"day": row[2][:10], "label": row[0]} for row in figures_by_key(figures).get("versions", _NONE).rows]
    for figure in figures:
        if figure.chart and figure.chart["kind"] in ("line", "stacked"):
            figure.chart["markers"] = markers
    return figures


_NONE = Figure(key="", title="", meaning="", columns=[], rows=[])


def figures_by_key(figures: list[Figure]) -> dict[str, Figure]:
    return {figure.key: figure for figure in figures}
