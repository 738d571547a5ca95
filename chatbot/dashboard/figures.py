"""The dashboard's figures, from the per-day counts in tallies.py (closed days rolled up, the rest live) and,
for the unanswered questions, one aggregation over the period's messages; never messages loaded into Python."""

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import (
    Avg,
    Case,
    CharField,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Max,
    Min,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Cast, Concat, Lower
from django.urls import reverse

from chatbot.console.models import Handoff
from chatbot.conversations.models import Message
from chatbot.dashboard.periods import Period
from chatbot.dashboard.tallies import (
    BUCKETS,
    CONFIDENCE,
    LATENCY,
    PAIRS,
    REPLIES,
    VERSIONS,
    VOLUME,
    Slot,
    Source,
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


def _scoped(found: QuerySet, period: Period, conversation: str) -> QuerySet:
    """`found` narrowed to the period's language and site, through its `conversation` relation."""
    if period.language:
        found = found.filter(**{f"{conversation}__language": period.language})
    return found.filter(**{f"{conversation}__site_id": period.site}) if period.site else found


def messages_in(period: Period, sender: str) -> QuerySet:
    found = Message.objects.filter(sender=sender, created_at__gte=period.start, created_at__lt=period.end)
    return _scoped(found, period, "conversation")


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
    table = _by_day(source.counts(VOLUME, by_day=True), source.period, ["conversations", "messages"])
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
    replies, liked, disliked = (totals.get(name, 0) for name in ("replies", "liked", "disliked"))
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
    period = source.period
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


def _pair_rows(source: Source, *, worst: bool) -> tuple[list[list[Any]], list[str]]:
    counts = {int(key): n for (_, key), n in source.counts(PAIRS, by_day=False).items()}
    questions = dict(QAPair.objects.filter(pk__in=counts).values_list("pk", "question"))  # gone: not counted
    found = [(pk, n) for pk, n in counts.items() if pk in questions and (n["disliked"] or not worst)]
    if worst:
        found.sort(key=lambda item: (-item[1]["disliked"] / item[1]["rated"], -item[1]["disliked"], item[0]))
    else:
        found.sort(key=lambda item: (-item[1]["answers"], item[0]))
    table = [
        [questions[pk], n["answers"], n["liked"], n["disliked"], _share(n["disliked"], n["rated"])]
        for pk, n in found[:TOP]
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


def _percentiles(tenths: dict[int, int]) -> tuple[float, float, int]:
    """Nearest-rank p50 and p95 (PostgreSQL's percentile_disc) of latencies counted per 0.1 ms."""
    total = sum(tenths.values())
    ranks, found, running = {"p50": (total * 50 + 99) // 100, "p95": (total * 95 + 99) // 100}, {}, 0
    for value in sorted(tenths):
        running += tenths[value]
        found.update({name: value / 10 for name, rank in ranks.items() if name not in found and running >= rank})
    return found.get("p50", 0.0), found.get("p95", 0.0), total


def latency_figure(source: Source) -> Figure:
    per_day: dict[str, dict[int, int]] = {}
    for (day, key), n in source.counts(LATENCY, by_day=True).items():
        per_day.setdefault(str(day), {})[int(key)] = n["n"]
    table = [[str(day), *_percentiles(per_day.get(str(day), {}))] for day in source.period.days]
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
        rows=[["whole period", *_percentiles(tenths)]],
    )


def versions_figure(source: Source) -> Figure:
    counts = {int(key): n for (_, key), n in source.counts(VERSIONS, by_day=False).items()}
    encoders = dict(ModelVersion.objects.filter(pk__in=counts).values_list("pk", "encoder"))  # gone: not counted
    found = sorted(((pk, n) for pk, n in counts.items() if pk in encoders), key=lambda item: item[1]["first"])
    table = [[f"v{pk} ({encoders[pk]})", n["replies"], _minute(n["first"]), _minute(n["last"])] for pk, n in found]
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


def _since_request(later: str) -> Any:
    return ExpressionWrapper(F(later) - F("requested_at"), output_field=DurationField())


def handoff_times_figure(source: Source) -> Figure:
    totals = handoffs_in(source.period).aggregate(
        requested=Count("id"),
        claimed=Count("claimed_at"),
        answered=Count("first_response_at"),
        wait_mean=Avg(_since_request("claimed_at")),
        wait_max=Max(_since_request("claimed_at")),
        first_mean=Avg(_since_request("first_response_at")),
        first_max=Max(_since_request("first_response_at")),
    )
    table = [
        ["wait: request to a person taking it", totals["claimed"], _s(totals["wait_mean"]), _s(totals["wait_max"])],
        [
            "first response: request to a person's first words",
            totals["answered"],
            _s(totals["first_mean"]),
            _s(totals["first_max"]),
        ],
        ["requests (taken or not)", totals["requested"], None, None],
    ]
    return Figure(
        key="handoff_times",
        title="Hand-off wait and first response (s)",
        meaning="How long customers who asked for a person waited for one to take the conversation, and to write.",
        columns=["time", "hand-offs", "mean s", "longest s"],
        rows=table,
    )


def _s(duration: dt.timedelta | None) -> float | None:
    return None if duration is None else round(duration.total_seconds(), 1)


def _minute(moment: str) -> str:
    return f"{dt.datetime.fromisoformat(moment).astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"


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
