"""Deleting customers' data completely, and the nightly clean-up of what is kept only for a while.

Deleting a conversation (delete_conversation, the admin's delete, the retention schedule) removes:
- the conversation, its messages and their review items (foreign keys, CASCADE);
- the alternate questions and out-of-scope examples made from its messages in the review queue (their
  `source_message`, CASCADE), unless an operator chose "keep as curated" for them, which cuts that link;
- its customers' texts from every training run's record of the held-out rows the gate disagreed on.
Nightly, besides: import previews never confirmed (older than CHATBOT_IMPORT_PREVIEW_HOURS) and the artifacts
of model versions that are neither active nor among the newest CHATBOT_KEEP_VERSIONS.
"""

import logging
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.storage import Storage, default_storage, storages
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from chatbot.conversations.models import Conversation, Message
from chatbot.knowledge.models import AlternateQuestion, OutOfScopeExample
from chatbot.registry.models import ModelVersion, TrainingRun

logger = logging.getLogger(__name__)
IMPORT_PREVIEW_FOLDER = "django-import-export"  # import-export's MediaStorage keeps previews there
TEXT_LIMIT = 500  # the review queue's question length


def _folded(text: str) -> str:
    """A text as the review queue stores it (whitespace folded, cut at the question length)."""
    return " ".join(text.split())[:TEXT_LIMIT]


def conversations_erase(*, conversations: QuerySet[Conversation]) -> dict[str, int]:
    """Delete these conversations and everything made from their messages; returns the deleted rows by model."""
    with transaction.atomic():
        # Locking the messages first makes a worker that is about to attach a row to one of them (a review item)
        # wait and then fail on its own, instead of this deletion failing at commit on the row it could not see.
        rows = Message.objects.select_for_update().filter(conversation__in=conversations).values_list("sender", "text")
        forgotten = {_folded(text) for sender, text in rows if sender == Message.Sender.CUSTOMER}
        _, by_model = conversations.delete()
        scrubbed = gate_texts_scrub(texts=forgotten)
    logger.info(
        "erased %s conversations, %s messages, %s alternates, %s out-of-scope examples; %s training runs scrubbed",
        by_model.get(Conversation._meta.label, 0),
        by_model.get(Message._meta.label, 0),
        by_model.get(AlternateQuestion._meta.label, 0),
        by_model.get(OutOfScopeExample._meta.label, 0),
        scrubbed,
    )
    return by_model


def gate_texts_scrub(*, texts: set[str]) -> int:
    """Remove the gate's disagreement rows whose text is one of `texts`; returns how many runs changed."""
    if not texts:
        return 0
    changed = 0
    runs = TrainingRun.objects.select_for_update().filter(gate__has_key="disagreements").only("gate")
    for run in runs:
        kept = [row for row in run.gate["disagreements"] if _folded(str(row.get("text", ""))) not in texts]
        if len(kept) != len(run.gate["disagreements"]):
            run.gate = {**run.gate, "disagreements": kept, "scrubbed_at": timezone.now().isoformat()}
            run.save(update_fields=["gate"])
            changed += 1
    return changed


def gate_disagreements_held(gate: dict[str, Any]) -> dict[str, Any]:
    """The gate's result without disagreement rows whose text is no longer an example: a conversation deleted
    while the run trained took its messages' alternates and out-of-scope examples with it."""
    rows = gate.get("disagreements")
    if not rows:
        return gate
    texts = [row["text"] for row in rows]
    held = {
        *AlternateQuestion.objects.filter(text__in=texts).values_list("text", flat=True),
        *OutOfScopeExample.objects.filter(text__in=texts).values_list("text", flat=True),
    }
    return {**gate, "disagreements": [row for row in rows if row["text"] in held]}


def log_rows_keep(*, rows: QuerySet, user: Any) -> int:
    """An operator's "keep as curated": these alternates or out-of-scope examples stay when the conversation
    they came from is deleted. Who and when are recorded."""
    return rows.filter(source_message__isnull=False).update(
        source_message=None, source=AlternateQuestion.Source.CURATED, kept_by=user, kept_at=timezone.now()
    )


def _import_storage() -> Storage:
    return storages["import_export"] if "import_export" in storages.backends else default_storage


def import_previews_purge(*, hours: int | None = None) -> int:
    """Delete uploaded import files whose preview was never confirmed; returns how many."""
    hours = settings.CHATBOT_IMPORT_PREVIEW_HOURS if hours is None else hours
    storage, cutoff = _import_storage(), timezone.now() - timedelta(hours=hours)
    try:
        _, names = storage.listdir(IMPORT_PREVIEW_FOLDER)
    except FileNotFoundError:
        return 0
    deleted = 0
    for name in names:
        path = f"{IMPORT_PREVIEW_FOLDER}/{name}"
        if storage.get_modified_time(path) < cutoff:
            storage.delete(path)
            deleted += 1
    return deleted


def artifacts_prune(*, keep: int | None = None) -> int:
    """Delete the artifacts of model versions that are neither active nor among the newest `keep`
    (CHATBOT_KEEP_VERSIONS); the versions stay, with their metrics, and can no longer be put in service."""
    keep = settings.CHATBOT_KEEP_VERSIONS if keep is None else keep
    newest = ModelVersion.objects.order_by("-created_at", "-id").values_list("id", flat=True)[:keep]
    old = ModelVersion.objects.filter(is_active=False, pruned_at__isnull=True).exclude(id__in=list(newest))
    pruned = 0
    for version in old:
        if version.artifact.name:
            default_storage.delete(version.artifact.name)
        shutil.rmtree(Path(settings.CHATBOT_MODEL_CACHE) / version.checksum, ignore_errors=True)
        ModelVersion.objects.filter(pk=version.pk).update(artifact="", pruned_at=timezone.now())
        pruned += 1
    return pruned


def retention_nightly() -> dict[str, int]:
    """The clean-ups of the retention schedule besides old conversations."""
    done = {"import_previews": import_previews_purge(), "artifacts": artifacts_prune()}
    logger.info("retention: %s import previews and %s model artifacts deleted", *done.values())
    return done
