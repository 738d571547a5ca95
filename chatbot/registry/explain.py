"""Plain names and a one-line meaning for the numbers a training run and a model version keep."""

from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

MEANINGS: dict[str, tuple[str, str]] = {
    # data counts
    "pairs": ("Q&A pairs", "Curated answers the model chooses from."),
    "answers": ("answers", "The pairs' answers, one per language: learned too, their words are often the customer's."),
    "alternates": ("alternate questions", "Other ways customers ask a pair's question, curated or reviewed."),
    "reviewed_messages": ("reviewed customer messages", "Messages an operator attached to a pair in the review queue."),
    "out_of_scope": (
        "out-of-scope examples",
        "Questions the shop does not answer: they teach the bot to say it is not sure.",
    ),
    "examples": ("examples in all", "Every question the run used, for training and for the held-out check."),
    "train": ("training examples", "What the model learned from."),
    "held_out": ("held-out examples", "Kept aside to measure the new model against the one in service."),
    "held_out_reviewed": ("held-out customer messages", "The most recent reviewed messages, kept aside."),
    "held_out_oos": ("held-out out-of-scope questions", "Out-of-scope examples kept aside."),
    # metrics
    "n": ("held-out questions", "How many questions the check used."),
    "n_in_scope": ("answerable questions", "Held-out questions the knowledge base answers."),
    "n_oos": ("unanswerable questions", "Held-out questions it does not answer."),
    "accuracy": ("accuracy", "Share of answerable questions given the right answer (not sure counts as wrong)."),
    "oos_precision": (
        "not-sure precision",
        "When the bot says it is not sure, how often the question was really unanswerable.",
    ),
    "oos_recall": ("not-sure recall", "Share of unanswerable questions on which the bot said it was not sure."),
    "oos_f1": ("not-sure F1", "One number for the two above (their harmonic mean)."),
    "oos_weight": ("out-of-scope weight", "How much an unanswerable question counts, for the expected share of them."),
    "train_seconds": ("training time (s)", "Wall-clock seconds the training took."),
    "train_cpu_seconds": ("training CPU time (s)", "Processor seconds the training used."),
    "threshold": ("not-sure threshold", "Below this confidence the bot says it is not sure."),
    "margin": ("near-tie margin", "Top two answers closer than this count as a tie."),
    "languages": ("per language", "A language's own threshold and margin, where its held-out questions allowed one."),
    "temperature": ("temperature", "Calibration: how the model's scores become confidences."),
    "encoder": ("encoder", "The kind of model that reads the question."),
    "epochs": ("epochs", "Passes over the training data."),
    "val_accuracy": ("validation accuracy", "Accuracy on the validation split during training."),
}


def _rows(values: dict[str, Any], prefix: str = "") -> list[tuple[str, str, str]]:
    rows = []
    for key, value in values.items():
        name, meaning = MEANINGS.get(key, (key.replace("_", " "), ""))
        if isinstance(value, dict):
            rows += _rows(value, prefix=f"{prefix}{name}: ")
        elif not isinstance(value, list):  # curves and per-label lists have their own charts and tables
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            rows.append((prefix + name, shown, meaning))
    return rows


def numbers_table(values: dict[str, Any]) -> SafeString:
    """A labelled table (name, value, meaning) instead of a raw JSON dict."""
    rows = _rows(values or {})
    if not rows:
        return format_html("<p>{}</p>", "None recorded.")
    body = format_html_join("", "<tr><th scope='row'>{}</th><td class='number'>{}</td><td>{}</td></tr>", rows)
    return format_html(
        "<table class='numbers'><thead><tr><th>what</th><th>value</th><th>meaning</th></tr></thead><tbody>{}</tbody></table>",
        body,
    )
