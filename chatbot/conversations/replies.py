"""Composing the bot's reply from the model's ranking: answer, not sure, or hand over to a person."""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings

from chatbot.conversations.frames import Candidate, Suggestion
from chatbot.knowledge.models import QAPair
from chatbot.knowledge.selectors import active_pairs, pair_followups
from chatbot.knowledge.text import detect_language

NOT_SURE = {
    "en": "I'm not sure I understood. Did you mean one of these? You can also ask to talk to a person.",
    "zh": "抱歉，我不太确定您的意思。您是想问下面的问题吗？也可以选择联系人工客服。",
}
NO_MODEL = {
    "en": "Sorry, I can't answer right now. A person can help you: choose the option below.",
    "zh": "抱歉，我现在无法回答。人工客服可以帮助您，请选择下面的选项。",
}


@dataclass
class Reply:
    outcome: str
    text: str
    pair: QAPair | None = None
    confidence: float | None = None
    candidates: list[Candidate] = field(default_factory=list)
    suggestions: list[Suggestion] = field(default_factory=list)


def reply_for_pair(pair: QAPair, confidence: float, candidates: list[Candidate]) -> Reply:
    """An answer with the pair's active follow-ups; they are stored where suggestions are (the pairs a bot
    message offers as buttons), so clicking one is an offered suggestion like any other."""
    outcome = "handoff" if pair.handoff else "answer"
    pairs = active_pairs()
    followups = [
        Suggestion(id=pairs[pk].pk, question=pairs[pk].question) for pk in pair_followups(pair.pk) if pk in pairs
    ]
    return Reply(
        outcome=outcome,
        text=pair.answer,
        pair=pair,
        confidence=confidence,
        candidates=candidates,
        suggestions=followups,
    )


def reply_compose(
    *, text: str, ranked: list[tuple[str, float]] | None, decide: Callable[[list[tuple[str, float]]], bool] | None
) -> Reply:
    """`ranked` is the model's top-k (label, score); None when no model is in service."""
    language = detect_language(text)
    if ranked is None:
        return Reply(outcome="unsure", text=NO_MODEL[language], suggestions=_handoff_suggestion(language, []))
    pairs = active_pairs()
    live = [(pairs[int(label)], score) for label, score in ranked if label.isdigit() and int(label) in pairs]
    candidates: list[Candidate] = [
        {"pair": pair.pk, "question": pair.question, "score": round(score, 4)} for pair, score in live
    ]
    if live and decide is not None and decide([(str(pair.pk), score) for pair, score in live]):
        return reply_for_pair(live[0][0], live[0][1], candidates)
    same_language = [pair for pair, _ in live if pair.language == language and not pair.handoff]
    others = [pair for pair, _ in live if pair.language != language and not pair.handoff]
    # Suggestions in the customer's language; the other language only when the model offers none.
    chosen = (same_language or others)[: settings.CHATBOT_SUGGESTIONS]
    suggestions: list[Suggestion] = [{"id": pair.pk, "question": pair.question} for pair in chosen]
    suggestions += _handoff_suggestion(language, suggestions)
    confidence = live[0][1] if live else 0.0
    return Reply(
        outcome="unsure", text=NOT_SURE[language], confidence=confidence, candidates=candidates, suggestions=suggestions
    )


def _handoff_suggestion(language: str, existing: list[Suggestion]) -> list[Suggestion]:
    handoffs = sorted((p for p in active_pairs().values() if p.handoff), key=lambda p: (p.category, p.question))
    pair = next((p for p in handoffs if p.language == language), None) or next(iter(handoffs), None)
    if pair is None or any(item["id"] == pair.pk for item in existing):
        return []
    return [{"id": pair.pk, "question": pair.question}]
