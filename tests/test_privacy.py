"""Personal data: redacted before storage, conversations deleted on request and after the retention period."""

import datetime

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from chatbot.conversations import services
from chatbot.conversations.models import Conversation, Message
from chatbot.privacy import cn_id_ok, luhn_ok, pii_redact
from chatbot.schedules import RETENTION


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail me at john.doe+shop@example.co.uk please", "mail me at [email] please"),
        ("邮箱john@example.com谢谢", "邮箱[email]谢谢"),
        ("my card is 4111 1111 1111 1111", "my card is [card]"),
        ("card 5500-0000-0000-0004 expires", "card [card] expires"),
        ("身份证 11010519491231002X 号", "身份证 [id] 号"),
        ("电话13812345678谢谢", "电话[phone]谢谢"),
        ("call 138 1234 5678 or +86 139-1234-5678", "call [phone] or [phone]"),
        ("call (555) 123-4567 or +44 20 7946 0958", "call [phone] or [phone]"),
    ],
)
def test_it_redacts_personal_data(text, expected):
    assert pii_redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 4111111111111112 never arrived",  # fails Luhn: an order number, kept
        "id 110105194912310021",  # wrong check character
        "order number 20231128123456",
        "tracking SF1234567890123",
        "I want 2 items for 30 yuan, size 42",
    ],
)
def test_it_keeps_numbers_that_are_not_personal_data(text):
    assert pii_redact(text) == text


def test_the_checksums():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert cn_id_ok("11010519491231002X") and not cn_id_ok("110105194912310021")


def test_redaction_is_configurable(settings):
    settings.CHATBOT_REDACT_PII = ["email"]
    assert pii_redact("a@b.com 13812345678") == "[email] 13812345678"
    settings.CHATBOT_REDACT_PII = []
    assert pii_redact("a@b.com") == "a@b.com"


@pytest.mark.django_db
def test_a_customer_message_is_stored_redacted():
    conversation = Conversation.objects.create()
    message, _ = services.message_receive(
        conversation=conversation,
        client_id="c1",
        text="my phone is 13812345678, mail a@b.cn",
        suggestion=None,
        enqueue=lambda pk: None,
    )
    message.refresh_from_db()
    assert message.text == "my phone is [phone], mail [email]"


@pytest.mark.django_db
def test_an_operator_deletes_one_conversation_by_token():
    # given
    keep, drop = Conversation.objects.create(), Conversation.objects.create()
    Conversation.objects.filter(pk=drop.pk).update(token="-" + drop.token[1:])  # tokens may start with a dash
    drop.refresh_from_db()
    for conversation in (keep, drop):
        Message.objects.create(conversation=conversation, sender="customer", text="hello", client_id="x")
    # when: as the README writes it
    call_command("delete_conversation", f"--token={drop.token}", stdout=open("/dev/null", "w"))
    # then
    assert not Conversation.objects.filter(pk=drop.pk).exists()
    assert not Message.objects.filter(conversation_id=drop.pk).exists()
    assert Message.objects.filter(conversation=keep).exists()


@pytest.mark.django_db
def test_retention_deletes_old_conversations_only(settings):
    # given
    settings.CHATBOT_RETENTION_DAYS = 30
    old, recent = Conversation.objects.create(), Conversation.objects.create()
    Message.objects.create(conversation=old, sender="customer", text="old", client_id="o")
    Conversation.objects.filter(pk=old.pk).update(last_seen_at=timezone.now() - datetime.timedelta(days=31))
    # when
    from chatbot.conversations.tasks import conversations_purge_task

    deleted = conversations_purge_task()
    # then
    assert deleted == 1
    assert not Conversation.objects.filter(pk=old.pk).exists() and Conversation.objects.filter(pk=recent.pk).exists()


@pytest.mark.django_db
def test_retention_runs_on_a_schedule():
    task = PeriodicTask.objects.get(name=RETENTION.name)
    assert task.task == "chatbot.conversations.tasks.conversations_purge_task" and task.enabled
