"""Small, deterministic versions of the fault drills in bench/faults/ (which run the whole stack)."""

import time

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from chatbot import connections
from chatbot.conversations import answering, services, tasks
from chatbot.conversations.models import Conversation, Message
from chatbot.health import heartbeat_once
from chatbot.registry.artifacts import sha256
from chatbot.registry.engine import engine_get
from chatbot.registry.models import ModelVersion
from chatbot.registry.services import model_version_activate

pytestmark = pytest.mark.django_db


def activate_copy(active: ModelVersion, *, data: bytes | None, checksum: str) -> ModelVersion:
    name = default_storage.save("models/fault-test.tar.gz", ContentFile(data or b"x"))
    if data is None:
        default_storage.delete(name)
    version = ModelVersion.objects.create(
        parent=active,
        encoder=active.encoder,
        artifact=name,
        checksum=checksum,
        threshold=active.threshold,
        margin=active.margin,
    )
    model_version_activate(version)
    return version


@pytest.mark.parametrize("kind", ["corrupted", "missing"])
def test_a_bad_artifact_leaves_the_previous_model_in_service_and_healthz_says_so(client, kind):
    # given: the model in service, loaded
    active = ModelVersion.objects.get(is_active=True)
    assert engine_get().version_id == active.pk
    with default_storage.open(active.artifact.name, "rb") as handle:
        data = handle.read()
    # when: a new version whose artifact does not match its checksum (half the bytes), or is gone, is activated
    damaged = data[: len(data) // 2] if kind == "corrupted" else None
    bad = activate_copy(active, data=damaged, checksum=sha256(data + b"retrained"))
    report = heartbeat_once()
    # then: the worker keeps serving the previous model, and /healthz reports it
    assert engine_get().version_id == active.pk
    assert report["loaded_version"] == active.pk and report["error"]
    body = client.get("/healthz").json()
    assert body["status"] == "unhealthy" and body["model"]["active_version"] == bad.pk
    assert body["model"]["serving_versions"] == [active.pk]
    assert ("checksum" if kind == "corrupted" else "missing") in body["model"]["error"]
    model_version_activate(active)


def test_a_message_whose_enqueue_failed_is_enqueued_again_when_resent(django_capture_on_commit_callbacks):
    # given: the broker is down when the message arrives
    conversation, enqueued = Conversation.objects.create(), []

    def broken(message_id: int) -> None:
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError), django_capture_on_commit_callbacks(execute=True):
        services.message_receive(
            conversation=conversation, client_id="m1", text="refund", suggestion=None, enqueue=broken
        )
    # when: the page sends it again with the same id
    message, created = services.message_receive(
        conversation=conversation, client_id="m1", text="refund", suggestion=None, enqueue=enqueued.append
    )
    # then: stored once, enqueued again
    assert not created and enqueued == [message.pk]
    assert Message.objects.filter(conversation=conversation, client_id="m1").count() == 1


def test_an_answered_message_is_not_enqueued_again(django_capture_on_commit_callbacks):
    conversation, enqueued = Conversation.objects.create(), []
    with django_capture_on_commit_callbacks(execute=True):
        message, _ = services.message_receive(
            conversation=conversation,
            client_id="m2",
            text="where is my parcel",
            suggestion=None,
            enqueue=enqueued.append,
        )
    first = answering.message_answer(message.pk)
    services.message_receive(
        conversation=conversation, client_id="m2", text="where is my parcel", suggestion=None, enqueue=enqueued.append
    )
    assert enqueued == [message.pk] and answering.message_answer(message.pk).pk == first.pk


def test_a_message_left_unanswered_is_queued_again_from_the_database_a_few_times_at_most(settings, monkeypatch):
    # given: a message whose task was lost long ago, one just stored, and one answered long ago
    settings.CHATBOT_RECOVERY_SECONDS, settings.CHATBOT_RECOVERY_AFTER_SECONDS = 0.2, 0.5
    settings.CHATBOT_RECOVERY_ATTEMPTS = 2
    conversation = Conversation.objects.create()
    lost, just_stored, answered = (
        Message.objects.create(conversation=conversation, sender=Message.Sender.CUSTOMER, client_id=name, text=text)
        for name, text in [("lost", "refund"), ("new", "hello"), ("answered", "where is my parcel")]
    )
    answering.message_answer(answered.pk)
    Message.objects.filter(pk__in=[lost.pk, answered.pk]).update(
        created_at=timezone.now() - timezone.timedelta(minutes=5)
    )
    Message.objects.filter(pk=just_stored.pk).update(created_at=timezone.now() + timezone.timedelta(minutes=5))
    queued: list[int] = []
    monkeypatch.setattr(tasks, "close_old_connections", lambda: None)  # it would close the test's transaction
    monkeypatch.setattr(tasks.answer_message_task, "apply_async", lambda args: queued.append(args[0]))
    # when / then: queued again at once, not again within CHATBOT_RECOVERY_AFTER_SECONDS
    assert tasks.recover_unanswered_task() == 1 and queued == [lost.pk]
    time.sleep(0.25)  # the sweep's lock has expired
    assert tasks.recover_unanswered_task() == 0
    # and again later, up to CHATBOT_RECOVERY_ATTEMPTS times in all
    time.sleep(0.5)
    assert tasks.recover_unanswered_task() == 1
    time.sleep(0.55)
    assert tasks.recover_unanswered_task() == 0 and queued == [lost.pk, lost.pk]


def test_a_task_queued_again_for_a_delivered_answer_sends_nothing(monkeypatch):
    conversation = Conversation.objects.create()
    message = Message.objects.create(
        conversation=conversation, sender=Message.Sender.CUSTOMER, client_id="d", text="hi"
    )
    sent: list[dict] = []
    monkeypatch.setattr(connections, "close_old_connections", lambda: None)  # it would close the test's transaction
    monkeypatch.setattr(tasks, "group_send", lambda group, event: sent.append(event))
    tasks.answer_message_task(message.pk)
    assert [event["answer"]["reply_to"] for event in sent] == ["d"]
    tasks.answer_message_task(message.pk)  # redelivered before the browser got it: sent again
    services.answers_mark_delivered([sent[0]["answer"]["message_id"]])
    tasks.answer_message_task(message.pk)  # after delivery: nothing
    assert len(sent) == 2
