"""Database round trips of one answered customer message, pinned: a query more on either side is a regression
of every message's cost (see the serving section of BENCHMARKS.md)."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chatbot.conversations import services
from chatbot.conversations.answering import message_answer
from tests.e2e import UNANSWERABLE

pytestmark = pytest.mark.usefixtures("committed_db")


def receive(conversation: object, text: str, enqueued: list[int]) -> object:
    message, created = services.message_receive(
        conversation=conversation, client_id=uuid.uuid4().hex, text=text, suggestion=None, enqueue=enqueued.append
    )
    assert created
    return message


def test_one_answered_message_costs_one_statement_in_the_web_process_and_two_in_the_worker():
    # given: a conversation that has had its first message, and a worker that has loaded the model
    conversation = services.conversation_start(token=uuid.uuid4().hex, text="hello")
    enqueued: list[int] = []
    message_answer(receive(conversation, "where is my parcel", enqueued).pk)
    # when: the next message is received (web), answered (worker) and its answer marked delivered (web)
    with CaptureQueriesContext(connection) as web:
        message = receive(conversation, "how do I return an item", enqueued)
    with CaptureQueriesContext(connection) as worker:
        bot = message_answer(message.pk)
    with CaptureQueriesContext(connection) as delivered:
        services.answers_mark_delivered([bot.pk])
    # then: one statement that reads the owner under a row lock (a claim cannot slip between routing and storing)
    # and inserts the message, queued after it; a SELECT and an INSERT; one UPDATE (per batch)
    assert [query["sql"].split()[0] for query in web.captured_queries] == ["WITH"]
    assert "FOR UPDATE" in web.captured_queries[0]["sql"] and "INSERT" in web.captured_queries[0]["sql"]
    assert enqueued[-1] == message.pk
    assert [query["sql"].split()[0] for query in worker.captured_queries] == ["SELECT", "INSERT"]
    assert [query["sql"].split()[0] for query in delivered.captured_queries] == ["UPDATE"]


def test_a_not_sure_answer_that_asks_for_nobody_costs_one_more_select_and_no_transaction():
    # given: a conversation whose previous answer was sure
    conversation = services.conversation_start(token=uuid.uuid4().hex, text="hello")
    enqueued: list[int] = []
    message_answer(receive(conversation, "where is my parcel", enqueued).pk)
    message = receive(conversation, UNANSWERABLE, enqueued)
    in_transaction: list[bool] = []

    def spy(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        in_transaction.append(connection.in_atomic_block)
        return execute(sql, params, many, context)

    # when: the worker answers a message it is not sure about, which completes no streak
    with CaptureQueriesContext(connection) as worker, connection.execute_wrapper(spy):
        bot = message_answer(message.pk)
    # then: the message, the streak (its conversation's previous answers: WITH ... SELECT), the insert; no BEGIN or
    # COMMIT
    assert bot.outcome == "unsure" and not bot.conversation.handed_off
    assert [query["sql"].split()[0] for query in worker.captured_queries] == ["SELECT", "WITH", "INSERT"]
    assert in_transaction == [False, False, False]


def test_the_one_statement_writes_the_row_the_orm_would_and_routes_by_the_owner_it_read():
    # given: a conversation the bot answers, and one an operator holds
    from chatbot.conversations.models import Conversation, Message

    bots = services.conversation_start(token=uuid.uuid4().hex, text="hello")
    held = services.conversation_start(token=uuid.uuid4().hex, text="hello")
    Conversation.objects.filter(pk=held.pk).update(owner=Conversation.Owner.QUEUE)
    enqueued: list[int] = []
    # when: a message is received on each, and the same message is saved by the ORM
    stored = receive(bots, "my card 4111 1111 1111 1111 was charged twice", enqueued)
    to_person = receive(held, "still there?", enqueued)
    orm = Message.objects.create(
        conversation=bots, client_id="orm", sender=Message.Sender.CUSTOMER, text=stored.text, for_person=False
    )

    # then: the rows are the same but for their ids, client ids and times; the PII is redacted before storage;
    # the bot's message is queued, the person's is not, and is marked theirs
    def row(message: Message) -> dict:
        values = Message.objects.filter(pk=message.pk).values().get()
        return {k: v for k, v in values.items() if k not in ("id", "client_id", "created_at")}

    assert row(stored) == row(orm)
    assert "4111" not in Message.objects.get(pk=stored.pk).text
    assert Message.objects.get(pk=stored.pk).created_at is not None
    assert enqueued == [stored.pk]
    assert to_person.for_person and Message.objects.get(pk=to_person.pk).for_person
    # and a re-sent client id is stored once and queued again (it has no answer yet)
    again, created = services.message_receive(
        conversation=bots, client_id=stored.client_id, text="x", suggestion=None, enqueue=enqueued.append
    )
    assert (again.pk, created, enqueued) == (stored.pk, False, [stored.pk, stored.pk])


def test_the_answer_insert_writes_the_row_the_orm_would():
    from chatbot.conversations.models import Message

    conversation = services.conversation_start(token=uuid.uuid4().hex, text="hello")
    enqueued: list[int] = []
    bot = message_answer(receive(conversation, "where is my parcel", enqueued).pk)
    fields = {f.attname: getattr(bot, f.attname) for f in Message._meta.concrete_fields if f.attname != "id"}
    fields["reply_to_id"] = None
    orm = Message.objects.create(**fields)
    stored = Message.objects.filter(pk=bot.pk).values().get()
    again = Message.objects.filter(pk=orm.pk).values().get()
    assert {k: v for k, v in stored.items() if k not in ("id", "reply_to_id", "created_at")} == {
        k: v for k, v in again.items() if k not in ("id", "reply_to_id", "created_at")
    }
    assert stored["reply_to_id"] == enqueued[0] and stored["created_at"] is not None


def test_a_connection_prepares_the_statements_of_every_message_once():
    # given: production settings (server-side binding, psycopg's prepare threshold: Django turns it off by default)
    conversation = services.conversation_start(token=uuid.uuid4().hex, text="hello")
    enqueued: list[int] = []
    # when: one connection stores and answers a few messages
    for _ in range(6):
        message_answer(receive(conversation, "where is my parcel", enqueued).pk)
    # then: PostgreSQL holds the statements prepared, so it no longer parses and plans them for each message
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any(sql.startswith("WITH owner AS") for sql in prepared)  # the web side's statement
    assert any(sql.startswith("SELECT m.id") for sql in prepared)  # the worker's read of the message
    assert any(sql.startswith('INSERT INTO "conversations_message"') for sql in prepared)  # the worker's answer


def test_messages_leave_room_on_their_page_for_the_delivered_update():
    # the update that marks answers delivered can then stay on the row's page (no new index entries)
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'conversations_message'")
        assert cursor.fetchone()[0] == ["fillfactor=70"]
