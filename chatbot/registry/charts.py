"""Small line charts as inline SVG, drawn on the server: no JavaScript library, nothing fetched from a CDN."""

from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT, PAD = 560, 240, 40
COLOURS = ("#417690", "#c0392b", "#27ae60", "#8e44ad")


@dataclass
class Series:
    name: str
    points: list[tuple[float, float]]
    dashed: bool = False


def _scale(value: float, low: float, high: float, start: float, end: float) -> float:
    span = (high - low) or 1.0
    return start + (value - low) / span * (end - start)


def line_chart(
    series: list[Series],
    *,
    x_label: str,
    y_label: str,
    y_range: tuple[float, float] | None = None,
    marker_x: float | None = None,
    marker_label: str = "",
) -> SafeString:
    """An SVG with one polyline per series, axes with min/max ticks, a legend and an optional vertical marker."""
    points = [p for s in series for p in s.points]
    if not points:
        return mark_safe('<p class="help">No data yet.</p>')
    xs, ys = [x for x, _ in points], [y for _, y in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = y_range or (min(0.0, min(ys)), max(ys))

    def at(x: float, y: float) -> str:
        return f"{_scale(x, x0, x1, PAD, WIDTH - 10):.1f},{_scale(y, y0, y1, HEIGHT - PAD, 10):.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img" aria-label="{escape(y_label)} by {escape(x_label)}" '
        'style="font:11px sans-serif;background:#fff">',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - 10}" y2="{HEIGHT - PAD}" stroke="#999"/>',
        f'<line x1="{PAD}" y1="10" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>',
        f'<text x="{PAD}" y="{HEIGHT - PAD + 14}">{x0:g}</text>',
        f'<text x="{WIDTH - 10}" y="{HEIGHT - PAD + 14}" text-anchor="end">{x1:g}</text>',
        f'<text x="{(WIDTH + PAD) / 2}" y="{HEIGHT - 8}" text-anchor="middle">{escape(x_label)}</text>',
        f'<text x="{PAD - 4}" y="{HEIGHT - PAD}" text-anchor="end">{y0:.3g}</text>',
        f'<text x="{PAD - 4}" y="18" text-anchor="end">{y1:.3g}</text>',
        f'<text x="12" y="{HEIGHT / 2}" transform="rotate(-90 12 {HEIGHT / 2})" text-anchor="middle">'
        f"{escape(y_label)}</text>",
    ]
    if marker_x is not None and x0 <= marker_x <= x1:
        x = _scale(marker_x, x0, x1, PAD, WIDTH - 10)
        parts.append(
            f'<line x1="{x:.1f}" y1="10" x2="{x:.1f}" y2="{HEIGHT - PAD}" stroke="#e67e22" stroke-dasharray="4 3"/>'
        )
        # on the right half the label runs leftwards, so it never leaves the chart or crosses the legend
        anchor, dx = ("end", -3) if x > (WIDTH + PAD) / 2 else ("start", 3)
        parts.append(
            f'<text x="{x + dx:.1f}" y="22" text-anchor="{anchor}" fill="#e67e22">{escape(marker_label)}</text>'
        )
    for i, item in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        dash = ' stroke-dasharray="6 4"' if item.dashed else ""
        path = " ".join(at(x, y) for x, y in item.points)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{path}"/>')
        if len(item.points) <= 30:  # few points: mark each
            parts += [
                f'<circle cx="{xy.split(",")[0]}" cy="{xy.split(",")[1]}" r="2.5" fill="{colour}"/>'
                for xy in path.split()
            ]
        parts.append(
            f'<text x="{WIDTH - 14}" y="{HEIGHT - PAD - 8 - 14 * i}" text-anchor="end" fill="{colour}">'
            f"{escape(item.name)}</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))


def training_curves(history: list[dict]) -> SafeString:
    """Loss per epoch (training and validation) and validation accuracy of a run."""
    series = [Series("training loss", [(h["epoch"], h["train_loss"]) for h in history if "train_loss" in h])]
    val = [(h["epoch"], h["val_loss"]) for h in history if "val_loss" in h]
    if val:
        series.append(Series("validation loss", val, dashed=True))
    accuracy = [(h["epoch"], h["val_accuracy"]) for h in history if "val_accuracy" in h]
    if accuracy:
        series.append(Series("validation accuracy", accuracy))
    return line_chart(series, x_label="epoch", y_label="loss / accuracy")


def operating_point_words(calibration: dict, threshold: float) -> str:
    """The operating point in a sentence, from the held-out point nearest the threshold in use."""
    points = [p for p in calibration.get("points") or [] if p.get("coverage") is not None]
    if not points:
        return ""
    point = min(points, key=lambda p: abs(p["threshold"] - threshold))
    said = (
        f"At this threshold ({threshold:.3f}) the bot answers {100 * point['coverage']:.0f} % of the questions it "
        "has an answer for"
    )
    if point.get("precision") is None:
        return said + "."
    return said + (
        f", and is right on {100 * point['precision']:.0f} % of its answers (answering a question it has no "
        "answer for counts as wrong). Measured on the held-out questions of its training."
    )


def tradeoff_chart(calibration: dict, threshold: float) -> SafeString:
    points = calibration.get("points") or []
    coverage = [(p["threshold"], p["coverage"]) for p in points if p.get("coverage") is not None]
    precision = [(p["threshold"], p["precision"]) for p in points if p.get("precision") is not None]
    return line_chart(
        [Series("coverage", coverage), Series("precision", precision)],
        x_label="threshold",
        y_label="share",
        y_range=(0.0, 1.0),
        marker_x=threshold,
        marker_label=f"in use {threshold:.2f}",
    )
