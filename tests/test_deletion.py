"""Deleting a conversation deletes what was made from it; the nightly clean-up purges import previews and the
artifacts of old model versions."""

import datetime
import os

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from chatbot.conversations.models import Conversation, Message
from chatbot.conversations.tasks import conversations_purge_task
from chatbot.knowledge.models import AlternateQuestion, OutOfScopeExample, QAPair
from chatbot.registry.models import ModelVersion, TrainingRun
from chatbot.retention import IMPORT_PREVIEW_FOLDER, gate_disagreements_held, import_previews_purge
from chatbot.review.models import ReviewItem
from chatbot.review.services import review_attach, review_out_of_scope
from tests.fresh_database import fresh_database_run

pytestmark = pytest.mark.django_db


def customer_message(conversation: Conversation, text: str) -> ReviewItem:
    message = Message.objects.create(conversation=conversation, sender="customer", text=text, client_id=text[:90])
    return ReviewItem.objects.create(message=message, needs_review=True)


@pytest.fixture
def learned(admin_user):
    """Two customers; from each, one message attached to a pair and one marked out of scope; a training run
    whose gate disagreed on all four texts."""
    pair = QAPair.objects.first()
    made = {}
    for who in ("gone", "stays"):
        conversation = Conversation.objects.create()
        attach = customer_message(conversation, f"{who}: my parcel 17 went to the wrong   house")
        oos = customer_message(conversation, f"{who}: can you fix my neighbour's bike")
        review_attach(items=[attach], pair=pair, user=admin_user)
        review_out_of_scope(items=[oos], user=admin_user)
        made[who] = conversation
    texts = [f"{who}: my parcel 17 went to the wrong house" for who in made] + [
        f"{who}: can you fix my neighbour's bike" for who in made
    ]
    disagreements = [{"text": t, "gold": "oos", "candidate": "oos", "active": "1"} for t in texts]
    run = TrainingRun.objects.create(trigger="admin", gate={"passed": True, "disagreements": disagreements})
    return made, run


def remaining(run: TrainingRun) -> set[str]:
    """Which customers' texts are left anywhere: alternates, out-of-scope examples, the run's gate record."""
    run.refresh_from_db()
    texts = [
        *AlternateQuestion.objects.values_list("text", flat=True),
        *OutOfScopeExample.objects.values_list("text", flat=True),
        *(row["text"] for row in run.gate["disagreements"]),
    ]
    return {text.split(":")[0] for text in texts if text.startswith(("gone:", "stays:"))}


def test_the_review_queue_links_what_it_makes_to_the_message(learned):
    made, _ = learned
    for model in (AlternateQuestion, OutOfScopeExample):
        row = model.objects.get(text__startswith="gone:")
        assert row.source_message.conversation == made["gone"] and row.source == "log"


def test_delete_conversation_removes_alternates_examples_and_gate_texts(learned):
    # given
    made, run = learned
    assert remaining(run) == {"gone", "stays"}
    # when
    call_command("delete_conversation", f"--token={made['gone'].token}")
    # then
    assert remaining(run) == {"stays"}
    assert not Message.objects.filter(conversation=made["gone"]).exists()


def test_the_admin_delete_action_removes_them_too(learned, admin_client):
    made, run = learned
    response = admin_client.post(
        "/admin/conversations/conversation/",
        {"action": "delete_selected", "_selected_action": [made["gone"].pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert remaining(run) == {"stays"}


def test_retention_removes_them_with_old_conversations(learned, settings):
    made, run = learned
    old = timezone.now() - datetime.timedelta(days=settings.CHATBOT_RETENTION_DAYS + 1)
    Conversation.objects.filter(pk=made["gone"].pk).update(last_seen_at=old)
    assert conversations_purge_task() == 1
    assert remaining(run) == {"stays"}


def test_rows_kept_as_curated_stay_and_say_who_kept_them(learned, admin_client, admin_user):
    # given: an operator keeps the alternate made from the message that will be deleted
    made, run = learned
    kept = AlternateQuestion.objects.get(text__startswith="gone:")
    response = admin_client.post(
        "/admin/knowledge/alternatequestion/", {"action": "keep_as_curated", "_selected_action": [kept.pk]}
    )
    assert response.status_code == 302
    # when
    call_command("delete_conversation", f"--id={made['gone'].pk}")
    # then
    kept.refresh_from_db()
    assert kept.source == "curated" and kept.source_message is None
    assert kept.kept_by == admin_user and kept.kept_at is not None
    assert not OutOfScopeExample.objects.filter(text__startswith="gone:").exists()


def test_a_run_does_not_record_texts_deleted_while_it_trained(learned):
    made, run = learned
    gate = dict(run.gate)
    made["gone"].delete()  # as if deleted between the data set being read and the gate being stored
    kept = gate_disagreements_held(gate)["disagreements"]
    assert {row["text"].split(":")[0] for row in kept} == {"stays"}


def test_import_previews_left_for_a_day_are_purged(settings):
    old = default_storage.save(f"{IMPORT_PREVIEW_FOLDER}/left-behind", ContentFile(b"question,answer\nq,a\n"))
    fresh = default_storage.save(f"{IMPORT_PREVIEW_FOLDER}/just-uploaded", ContentFile(b"question,answer\n"))
    a_day_ago = (timezone.now() - datetime.timedelta(hours=settings.CHATBOT_IMPORT_PREVIEW_HOURS + 1)).timestamp()
    os.utime(default_storage.path(old), (a_day_ago, a_day_ago))
    assert import_previews_purge() >= 1
    assert not default_storage.exists(old) and default_storage.exists(fresh)


def test_artifacts_of_old_versions_are_pruned_and_cannot_be_put_in_service(admin_client, settings):
    # given: the active version, older than four retired ones; versions other tests made stay the newest
    # (their files are shared with them), so the limit counts them in
    days_ago = lambda days: timezone.now() - datetime.timedelta(days=days)  # noqa: E731
    active = ModelVersion.objects.get(is_active=True)
    ModelVersion.objects.filter(pk=active.pk).update(created_at=days_ago(200))
    settings.CHATBOT_KEEP_VERSIONS = ModelVersion.objects.filter(is_active=False).count() + 2
    template = {"encoder": "ngram", "checksum": "0" * 64, "threshold": 0.5, "margin": 0.0, "status": "retired"}
    names = []
    for n in range(4):
        name = default_storage.save(f"models/old-{n}.tar.gz", ContentFile(b"not a model"))
        version = ModelVersion.objects.create(artifact=name, **template)
        ModelVersion.objects.filter(pk=version.pk).update(created_at=days_ago(100 - n))
        names.append(name)
    # when
    conversations_purge_task()
    # then: the two newest and the active one keep their artifacts
    assert [default_storage.exists(name) for name in names] == [False, False, True, True]
    assert ModelVersion.objects.get(pk=active.pk).pruned_at is None
    pruned = ModelVersion.objects.filter(artifact="", pruned_at__isnull=False, checksum="0" * 64)
    assert pruned.count() == 2
    # and a pruned version is refused with a clear message, the active one staying in service
    admin_client.post(f"/admin/registry/modelversion/{pruned[0].pk}/activate/")
    response = admin_client.get(f"/admin/registry/modelversion/{pruned[0].pk}/change/")
    assert "cannot serve: its artifact was deleted (CHATBOT_KEEP_VERSIONS)" in response.content.decode()
    assert ModelVersion.objects.get(is_active=True).pk == active.pk


def test_the_migration_links_existing_rows_and_deletes_those_of_deleted_conversations():
    # a database of its own: the migration runs from the state before it
    rows = fresh_database_run("tests.migration_links")
    assert rows == [
        ["where is my parcel", "log", "parcel"],
        ["curated", "curated", None],
        ["fix my bike", "log", "bike"],
    ]
