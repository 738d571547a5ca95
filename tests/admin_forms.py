"""The POST data of a pair's admin change page, as the browser sends it."""

from chatbot.knowledge.models import QAPair


def pair_form(pair: QAPair, answers: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """The pair's fields, its answers as the inline's rows (existing ones first), no alternates or follow-ups."""
    existing = list(pair.translations.order_by("id"))
    answers = pair.answer_texts() if answers is None else answers
    rows = [(row.pk, row.language) for row in existing] + [
        (None, code) for code in answers if code not in {row.language for row in existing}
    ]
    data = {
        "question": pair.question,
        "category": pair.category,
        "is_active": "on",
        "translations-TOTAL_FORMS": str(len(rows)),
        "translations-INITIAL_FORMS": str(len(existing)),
        "alternates-TOTAL_FORMS": "0",
        "alternates-INITIAL_FORMS": "0",
        "followup_links-TOTAL_FORMS": "0",
        "followup_links-INITIAL_FORMS": "0",
    }
    for number, (pk, code) in enumerate(rows):
        data[f"translations-{number}-id"] = str(pk or "")
        data[f"translations-{number}-pair"] = str(pair.pk)
        data[f"translations-{number}-language"] = code
        data[f"translations-{number}-text"] = answers.get(code, "")
    return {**data, **extra}
