"""Database round trips of one answered customer message, pinned: a query more on either side is a regression
of every message's cost (see the serving section of BENCHMARKS.md)."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chatbot.conversations import services
from chatbot.conversations.answering import message_answer

pytestmark = pytest.mark.usefixtures("committed_db")


def receive(conversation: object, text: str, enqueued: list[int]) -> object:
    message, created = services.message_receive(
        conversation=conversation, client_id=uuid.uuid4().hex, text=text, suggestion=None, enqueue=enqueued.append
    )
    assert created
    return message


def test_one_answered_message_costs_one_locked_routing_and_an_insert_in_the_web_process_and_two_in_the_worker():
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
    # then: the owner read under a row lock (a claim cannot slip between routing and storing) and the INSERT, in
    # one transaction, queued after it; a SELECT and an INSERT; one UPDATE (per batch)
    assert [query["sql"].split()[0] for query in web.captured_queries] == ["BEGIN", "SELECT", "INSERT", "COMMIT"]
    assert "FOR UPDATE" in web.captured_queries[1]["sql"]
    assert enqueued[-1] == message.pk
    assert [query["sql"].split()[0] for query in worker.captured_queries] == ["SELECT", "INSERT"]
    assert [query["sql"].split()[0] for query in delivered.captured_queries] == ["UPDATE"]
