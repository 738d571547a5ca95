"""Bringing the review queue up to date, in a worker: which logged messages need a human, grouped by the model's
own embedding and ranked. Runs as `tasks.review_queue_sync_task`; it loads the model, so the web process never
calls it."""

import math
from typing import Any

import torch
from django.conf import settings
from django.utils import timezone

from chatbot.conversations.models import Message
from chatbot.registry.engine import engine_get
from chatbot.review.models import ReviewItem

MAX_CLUSTERED = 5000


def review_flags(reply: Message | None) -> dict[str, Any]:
    """Why a customer message needs a human, from the bot's reply to it."""
    if reply is None:
        return {"no_answer": True}
    scores = [item.get("score", 0.0) for item in reply.candidates or []]
    confidence = reply.confidence
    return {
        "confidence": confidence,
        "no_answer": reply.outcome == Message.Outcome.UNSURE,
        "low_confidence": confidence is not None and confidence < settings.CHATBOT_REVIEW_LOW_CONFIDENCE,
        "near_tie": len(scores) >= 2 and scores[0] - scores[1] < settings.CHATBOT_REVIEW_NEAR_TIE,
        "negative_feedback": reply.helpful is False,
    }


def review_priority(item: ReviewItem) -> float:
    """How much a label would help: feedback, unanswered and a person's answer first, then uncertainty, then how
    often it is asked. A suggested pair ranks with the unanswered: the bot could not answer it, a person did."""
    confidence = item.confidence if item.confidence is not None else 0.0
    suggested = item.kind == ReviewItem.Kind.SUGGESTED
    score = 3.0 * item.negative_feedback + 2.0 * (item.no_answer or suggested) + item.low_confidence + item.near_tie
    return round(score + (1.0 - confidence) + math.log2(max(1, item.cluster_size)), 3)


def _new_items() -> int:
    """One item per answered customer message (those the customer picked from suggestions never need review)."""
    messages = (
        Message.objects.filter(sender=Message.Sender.CUSTOMER, review__isnull=True, reply__isnull=False)
        .select_related("reply")
        .order_by("id")[:MAX_CLUSTERED]
    )
    items = []
    for message in messages:
        flags = {} if message.suggested_pair_id else review_flags(message.reply)
        needs = any(flags.get(key) for key in ("no_answer", "low_confidence", "near_tie", "negative_feedback"))
        items.append(ReviewItem(message=message, needs_review=needs, **flags))
    ReviewItem.objects.bulk_create(items, ignore_conflicts=True)
    return len(items)


def _late_feedback() -> None:
    """A thumbs down (or "none of these") can come after the item was made: it sends the message to the queue."""
    ReviewItem.objects.filter(
        negative_feedback=False, message__reply__helpful=False, message__suggested_pair__isnull=True
    ).update(negative_feedback=True, needs_review=True)


def clusters_greedy(vectors: torch.Tensor, similarity: float) -> list[int]:
    """vectors (n, d) L2-normalised, oldest first -> for each row the index of its cluster's first row."""
    leaders: list[int] = []
    assigned: list[int] = []
    for i in range(len(vectors)):
        if leaders:
            sims = vectors[leaders] @ vectors[i]  # (n_leaders,)
            best = int(sims.argmax())
            if float(sims[best]) >= similarity:
                assigned.append(leaders[best])
                continue
        leaders.append(i)
        assigned.append(i)
    return assigned


def _cluster_and_rank() -> None:
    items = list(
        ReviewItem.objects.filter(status=ReviewItem.Status.PENDING, needs_review=True)
        .select_related("message")
        .order_by("-message_id")[:MAX_CLUSTERED]
    )[::-1]
    if not items:
        return
    loaded = engine_get()
    if loaded is None:
        leaders = list(range(len(items)))
    else:
        leaders = clusters_greedy(
            loaded.model.embed([item.text for item in items]), settings.CHATBOT_REVIEW_CLUSTER_SIMILARITY
        )
    sizes: dict[int, int] = {}
    for leader in leaders:
        sizes[leader] = sizes.get(leader, 0) + 1
    now = timezone.now()
    for item, leader in zip(items, leaders, strict=True):
        if item.cluster != items[leader].message_id:  # the dashboard counts the groups: a move dates them
            item.cluster, item.clustered_at = items[leader].message_id, now
        item.cluster_size = sizes[leader]
        item.priority = review_priority(item)
    ReviewItem.objects.bulk_update(items, ["cluster", "clustered_at", "cluster_size", "priority"], batch_size=500)


def review_queue_sync() -> None:
    """Bring the queue up to date with the conversations: new messages, late feedback, groups, ranks."""
    _new_items()
    _late_feedback()
    _cluster_and_rank()
