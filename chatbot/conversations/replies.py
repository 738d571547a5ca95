"""Composing the bot's reply from the model's ranking: answer, not sure, or hand over to a person.

The reply is in the customer's language (their message's): a pair's answer in that language, or another
language's with a short note when the pair has none in theirs; buttons show each pair's question in it. Whether the
model is sure is decided by the rule of that same language (a language may have its own threshold and margin)."""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings

from chatbot.conversations.frames import Candidate, Suggestion
from chatbot.knowledge.models import QAPair
from chatbot.knowledge.selectors import PairsView, pair_answer, pairs_view, ranked_redirected
from chatbot.knowledge.text import detect_language

NOT_SURE = {
    "en": "I'm not sure I understood. Did you mean one of these? You can also ask to talk to a person.",
    "zh": "抱歉，我不太确定您的意思。您是想问下面的问题吗？也可以选择联系人工客服。",
}
NO_MODEL = {
    "en": "Sorry, I can't answer right now. A person can help you: choose the option below.",
    "zh": "抱歉，我现在无法回答。人工客服可以帮助您，请选择下面的选项。",
}
# Before an answer in another language than the customer's (the pair has none in theirs).
OTHER_LANGUAGE = {
    "en": "(This answer is not available in English yet; here it is in {language}.)",
    "zh": "（这个问题暂时没有中文回答，以下是{language}回答。）",
}
LANGUAGE_NAMES = {"en": {"en": "English", "zh": "Chinese"}, "zh": {"en": "英文", "zh": "中文"}}


@dataclass
class Reply:
    outcome: str
    text: str
    pair: QAPair | None = None
    confidence: float | None = None
    candidates: list[Candidate] = field(default_factory=list)
    suggestions: list[Suggestion] = field(default_factory=list)


def reply_for_pair(
    pair: QAPair, confidence: float, candidates: list[Candidate], *, language: str, view: PairsView | None = None
) -> Reply:
    """An answer in `language` (the customer's) with the pair's active follow-ups; they are stored where
    suggestions are (the pairs a bot message offers as buttons), so clicking one is an offered suggestion like
    any other."""
    outcome = "handoff" if pair.handoff else "answer"
    view = view or pairs_view()
    followups = [
        Suggestion(id=followup.pk, question=view.question(followup, language))
        for followup in view.followups_of(pair.pk)
    ]
    return Reply(
        outcome=outcome,
        text=answer_in(pair, language),
        pair=pair,
        confidence=confidence,
        candidates=candidates,
        suggestions=followups,
    )


def reply_compose(
    *, text: str, ranked: list[tuple[str, float]] | None, decide: Callable[[list[tuple[str, float]], str], bool] | None
) -> Reply:
    """`ranked` is the model's top-k (label, score); None when no model is in service. `decide(ranked, language)`
    (AnswerModel.decide): sure of the best answer to a message in `language`, the message's (reply_language)."""
    language, view = reply_language(text), pairs_view()
    if ranked is None:
        return Reply(outcome="unsure", text=NO_MODEL[language], suggestions=_handoff_suggestion(view, language, []))
    live = _live(view, ranked)
    candidates: list[Candidate] = [
        {"pair": pair.pk, "question": pair.question, "score": round(score, 4)} for pair, score in live
    ]
    if live and decide is not None and decide([(str(pair.pk), score) for pair, score in live], language):
        return reply_for_pair(live[0][0], live[0][1], candidates, language=language, view=view)
    chosen = [pair for pair, _ in live if not pair.handoff][: settings.CHATBOT_SUGGESTIONS]
    suggestions: list[Suggestion] = [{"id": pair.pk, "question": view.question(pair, language)} for pair in chosen]
    suggestions += _handoff_suggestion(view, language, suggestions)
    confidence = live[0][1] if live else 0.0
    return Reply(
        outcome="unsure", text=NOT_SURE[language], confidence=confidence, candidates=candidates, suggestions=suggestions
    )


def reply_language(text: str) -> str:
    """The language to answer a message in: the message's own (a customer may switch mid-conversation)."""
    return detect_language(text)


def answer_in(pair: QAPair, language: str) -> str:
    """The pair's answer in `language`, or another language's after a note saying so, in `language`."""
    text, found = pair_answer(pair, language)
    if found == language or language not in OTHER_LANGUAGE:
        return text
    note = OTHER_LANGUAGE[language].format(language=LANGUAGE_NAMES[language].get(found, found))
    return f"{note}\n\n{text}"


def _live(view: PairsView, ranked: list[tuple[str, float]]) -> list[tuple[QAPair, float]]:
    """The model's labels as active pairs, best first: a pair merged into another counts as that one (their
    probabilities add up), labels of pairs since deleted or deactivated are dropped."""
    return [
        (view.pairs[int(label)], score)
        for label, score in ranked_redirected(ranked, view.redirects)
        if label.isdigit() and int(label) in view.pairs
    ]


def _handoff_suggestion(view: PairsView, language: str, existing: list[Suggestion]) -> list[Suggestion]:
    handoffs = sorted((p for p in view.pairs.values() if p.handoff), key=lambda p: (p.category, p.question))
    pair = next(iter(handoffs), None)
    if pair is None or any(item["id"] == pair.pk for item in existing):
        return []
    return [{"id": pair.pk, "question": view.question(pair, language)}]
