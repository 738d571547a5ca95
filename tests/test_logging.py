"""Logs of the real processes (daphne and a Celery worker, production settings, INFO, JSON): ids, never the
customer's words, e-mail address or phone number."""

import json
import os
import re
import time
import uuid

import pytest

from chatbot.conversations.models import Conversation, Message
from tests.e2e import ws_ask, ws_open

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("committed_db")]
PLAIN_RECORD = re.compile(r"\b(DEBUG|INFO|WARNING|ERROR|CRITICAL)\s+chatbot\.")


@pytest.fixture(scope="module", autouse=True)
def info_json_logs():
    """Before the module's stack starts: INFO, one JSON object a line (what production runs with)."""
    saved = {key: os.environ.get(key) for key in ("LOG_LEVEL", "LOG_FORMAT")}
    os.environ.update(LOG_LEVEL="INFO", LOG_FORMAT="json")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def log_records(path) -> tuple[list[dict], list[str]]:  # noqa: ANN001
    records, other = [], []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            other.append(line)
    return records, other


def test_customer_text_is_never_logged_at_info_but_the_ids_are(stack):
    # given: a message with a unique marker, an e-mail address and phone numbers
    marker = f"zq{uuid.uuid4().hex[:12]}"
    email, phone, mobile = f"{marker}.buyer@example.com", "+1 415 555 0134", "13812345678"
    ws, welcome = ws_open(stack)
    # when: it is answered by the worker
    answer = ws_ask(ws, f"where is my parcel {marker}? mail {email} or call {phone} / {mobile}")
    ws.close()
    assert answer["type"] == "answer", answer
    bot = Message.objects.select_related("reply_to").get(pk=answer["message_id"])
    customer, conversation = bot.reply_to, Conversation.objects.get(token=welcome["conversation"])
    assert marker in customer.text  # stored (redacted of the address and numbers), so it could have been logged
    time.sleep(1)  # the last lines reach the files

    # then: neither process wrote the text, the address or the numbers
    for name in ("web.log", "worker.log"):
        text = (stack.logs / name).read_text(encoding="utf-8", errors="replace")
        for secret in (marker, email, phone, mobile, "where is my parcel"):
            assert secret not in text, f"{secret!r} in {name}"

    # and each process's lines for this message are JSON with the conversation and message ids
    records, _ = log_records(stack.logs / "web.log")
    received = [r for r in records if r.get("message_id") == customer.pk]
    assert [r["conversation_id"] for r in received if r["level"] == "INFO"] == [conversation.pk], received
    records, _ = log_records(stack.logs / "worker.log")
    mine = [r for r in records if r.get("message_id") == customer.pk]
    assert mine, "no log line carries the message id"
    assert all(r["conversation_id"] == conversation.pk for r in mine), mine
    assert any(r.get("answer_id") == bot.pk and r["level"] == "INFO" for r in mine), mine
    # and Celery's own "received" / "succeeded" lines of the answer task, two a message, are not written
    celery = [r for r in records if r["logger"].startswith("celery.") and "answer_message_task[" in r["message"]]
    assert not [r for r in celery if r["message"].endswith(" received") or " succeeded in " in r["message"]], celery

    # and what the product itself logs (chatbot.*), in both processes, is structured JSON, not plain text
    for name in ("web.log", "worker.log"):
        records, other = log_records(stack.logs / name)
        plain = [line for line in other if PLAIN_RECORD.search(line)]
        assert not plain, f"plain log lines from the product in {name}: {plain[:5]}"
        assert all({"time", "level", "logger", "message"} <= set(r) for r in records)


def test_only_the_answer_tasks_routine_celery_lines_are_dropped():
    import logging

    from celery.app.trace import LOG_RECEIVED, LOG_RETRY, LOG_SUCCESS

    def kept(logger: str, fmt: str, task: str) -> bool:
        context = {"id": "1", "name": task, "runtime": 0.1, "return_value": None, "exc": "boom"}
        record = logging.getLogger(logger).makeRecord(logger, logging.INFO, "", 0, fmt, (context,), None)
        record.data = context
        return logging.getLogger(logger).filter(record)

    answer, other = "chatbot.conversations.tasks.answer_message_task", "chatbot.registry.tasks.train_task"
    assert not kept("celery.worker.strategy", LOG_RECEIVED, answer)
    assert not kept("celery.app.trace", LOG_SUCCESS, answer)
    assert kept("celery.app.trace", LOG_RETRY, answer)  # retries (a database outage) are still logged
    assert kept("celery.worker.strategy", LOG_RECEIVED, other) and kept("celery.app.trace", LOG_SUCCESS, other)
