"""Merging pairs into one topic, for the admin action and for the data migration that merged the demo's twins.

Written against a model getter (`django.apps.apps.get_model`, or a migration's `apps.get_model`) so that the
migration runs it on its historical models; it saves with queryset updates (no signals): callers that serve
answers bump the pairs cache themselves.
"""

from collections.abc import Callable, Iterable
from typing import Any

ModelGetter = Callable[[str, str], Any]

# Every foreign key to a pair that says which pair a message, its answer or a review decision was about.
REFERENCES = (
    ("conversations", "Message", "pair"),
    ("conversations", "Message", "suggested_pair"),
    ("review", "ReviewItem", "pair"),
)


def pairs_merge_rows(model: ModelGetter, *, survivor_id: int, merged_ids: Iterable[int]) -> list[int]:
    """Move everything of the `merged_ids` pairs to the survivor and leave each as an inactive redirect to it.

    The survivor keeps its question, category, hand-off flag and its answer in each language it has; a merged
    pair's question becomes an alternate, its alternates, answers in other languages and follow-ups move, and the
    messages, answers and review decisions that named it name the survivor. Returns the ids merged."""
    pair_model = model("knowledge", "QAPair")
    alternate_model = model("knowledge", "AlternateQuestion")
    answer_model = model("knowledge", "PairAnswer")
    followup_model = model("knowledge", "FollowUp")
    merged = [pk for pk in dict.fromkeys(merged_ids) if pk != survivor_id]
    if not merged:
        return []
    survivor = pair_model.objects.get(pk=survivor_id)
    for pair in pair_model.objects.filter(pk__in=merged).order_by("pk"):
        # questions: the merged pair's becomes an alternate; its alternates move unless the survivor has the text
        texts = set(alternate_model.objects.filter(pair_id=survivor_id).values_list("text", flat=True))
        texts.add(survivor.question)
        for alternate in alternate_model.objects.filter(pair_id=pair.pk).order_by("pk"):
            if alternate.text in texts:
                alternate.delete()
            else:
                alternate_model.objects.filter(pk=alternate.pk).update(pair_id=survivor_id)
                texts.add(alternate.text)
        if pair.question not in texts:
            alternate_model.objects.create(pair_id=survivor_id, text=pair.question)
        # answers: the survivor's stays where it has one in that language
        have = set(answer_model.objects.filter(pair_id=survivor_id).values_list("language", flat=True))
        answer_model.objects.filter(pair_id=pair.pk).exclude(language__in=have).update(pair_id=survivor_id)
        answer_model.objects.filter(pair_id=pair.pk).delete()
        _followups_move(followup_model, survivor_id=survivor_id, merged_id=pair.pk)
        for app, name, field in REFERENCES:
            model(app, name).objects.filter(**{f"{field}_id": pair.pk}).update(**{f"{field}_id": survivor_id})
        pair_model.objects.filter(merged_into_id=pair.pk).update(merged_into_id=survivor_id)
        pair_model.objects.filter(pk=pair.pk).update(is_active=False, merged_into_id=survivor_id)
    return merged


def _followups_move(followup_model: Any, *, survivor_id: int, merged_id: int) -> None:
    """The merged pair's follow-ups go after the survivor's; pairs that offered it offer the survivor."""
    links = followup_model.objects
    current = list(links.filter(pair_id=survivor_id).values_list("followup_id", flat=True))
    order = max(links.filter(pair_id=survivor_id).values_list("order", flat=True), default=-1)
    for link in links.filter(pair_id=merged_id).order_by("order", "id"):
        if link.followup_id not in (survivor_id, merged_id, *current):
            order += 1
            links.create(pair_id=survivor_id, followup_id=link.followup_id, order=order)
            current.append(link.followup_id)
    links.filter(pair_id=merged_id).delete()
    for link in links.filter(followup_id=merged_id):
        offers = links.filter(pair_id=link.pair_id, followup_id=survivor_id).exists()
        if link.pair_id == survivor_id or offers:
            link.delete()
        else:
            links.filter(pk=link.pk).update(followup_id=survivor_id)
