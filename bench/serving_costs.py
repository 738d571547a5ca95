"""CPU cost of each step of a message's path, measured in-process (no load, no broker consumer).

    python bench/serving_costs.py          # against the benchmark database that bench/serving.py prepares

Prints, per step, CPU ms (time.process_time) and wall ms per call, averaged over N calls: the ORM's SELECT of
the answer task in its old form (select_related) and the SQL it uses now, the ORM INSERT, Celery's publish,
the customer message's storage before (ORM, four statements) and now (one), the answer's INSERT in SQL, the
not-sure streak check before (ORM) and now (SQL), a connection health check, a Redis GET, the consumer's thread
hop and Channels' per-event connection-check hop, PII redaction, the answer frame and one JSON log line. Uses the database and Redis db of bench/serving.py; the publish goes to a queue nobody reads
(deleted at the end).
"""

import asyncio
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.update(
    DATABASE_URL=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chatbot_bench"),
    REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8"),
    DJANGO_SETTINGS_MODULE="chatbot.settings",
    SECRET_KEY="bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz-0123456789",
    ALLOWED_HOSTS="127.0.0.1",
    SECURE_SSL_REDIRECT="0",
)
import django  # noqa: E402

django.setup()

from channels.db import aclose_old_connections  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import DateTimeField, Subquery, Value  # noqa: E402
from django.db.models.functions import Coalesce  # noqa: E402

from chatbot.celery import app  # noqa: E402
from chatbot.connections import db_async  # noqa: E402
from chatbot.console.models import Handoff  # noqa: E402
from chatbot.console.services import EPOCH, _auto_reason  # noqa: E402
from chatbot.conversations import services  # noqa: E402
from chatbot.conversations.answering import _message_to_answer  # noqa: E402
from chatbot.conversations.models import Conversation, Message  # noqa: E402
from chatbot.logs import JsonFormatter  # noqa: E402
from chatbot.privacy import pii_redact  # noqa: E402
from chatbot.redis_client import redis_client  # noqa: E402

TEXT = "Hi, where is my parcel? I ordered it last week and it still has not arrived"


def cost(name: str, step: Callable[[], object], calls: int = 300) -> None:
    step()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        step()
    cpu_ms, wall_ms = 1000 * (time.process_time() - cpu) / calls, 1000 * (time.perf_counter() - wall) / calls
    print(f"| {name} | {cpu_ms:.3f} | {wall_ms:.3f} |", flush=True)


async def hops(calls: int, hop: Callable[[], object]) -> float:
    cpu = time.process_time()
    for _ in range(calls):
        await hop()
    return 1000 * (time.process_time() - cpu) / calls


def store_orm(conversation: Conversation) -> None:
    """The customer message's storage before: BEGIN, SELECT ... FOR UPDATE of the owner, INSERT, COMMIT."""
    with transaction.atomic():
        Conversation.objects.select_for_update().filter(pk=conversation.pk).values_list("owner", "operator_id").get()
        Message.objects.create(conversation=conversation, client_id=uuid.uuid4().hex, sender="customer", text=TEXT)


def streak_orm(conversation_id: int) -> list:
    """The not-sure streak check before (the ORM's form of chatbot.console.services._auto_reason's query)."""
    last = Handoff.objects.filter(conversation_id=conversation_id).order_by("-requested_at").values("requested_at")[:1]
    since = Coalesce(Subquery(last), Value(EPOCH, output_field=DateTimeField()))
    return list(
        Message.objects.filter(conversation_id=conversation_id, sender=Message.Sender.BOT, created_at__gt=since)
        .order_by("-created_at", "-id")
        .values_list("outcome", "helpful")[:2]
    )


def main() -> None:
    conversation = Conversation.objects.create(language="en")
    customer = Message.objects.create(conversation=conversation, sender="customer", client_id="c", text=TEXT)
    bot = Message.objects.create(conversation=conversation, sender="bot", reply_to=customer, text="It is on its way.")
    record = logging.makeLogRecord({"msg": "message received", "levelname": "INFO", "conversation_id": 1})
    print(f"load average {os.getloadavg()[0]:.2f}\n\n| step | CPU ms | wall ms |\n|---|---|---|")
    select = Message.objects.select_related("suggested_pair", "reply")
    cost("answer task SELECT, ORM select_related (before)", lambda: select.filter(pk=customer.pk).first())
    cost("answer task SELECT, SQL (now)", lambda: _message_to_answer(customer.pk))
    cost("ORM INSERT of a message", lambda: Message.objects.create(
        conversation=conversation, client_id=uuid.uuid4().hex, sender="customer", text=TEXT))  # fmt: skip
    cost(
        "customer message stored: BEGIN, SELECT FOR UPDATE, INSERT, COMMIT, ORM (before)",
        lambda: store_orm(conversation),
    )
    cost("customer message stored: one statement (now)", lambda: services.message_receive(
        conversation=conversation, client_id=uuid.uuid4().hex, text=TEXT, suggestion=None, enqueue=lambda _: None))  # fmt: skip
    cost("answer INSERT, SQL (now)", lambda: services.message_insert(Message(
        conversation=conversation, sender="bot", text="It is on its way.", outcome="answer")))  # fmt: skip
    cost("not-sure streak check, ORM (before)", lambda: streak_orm(conversation.pk))
    cost("not-sure streak check, SQL (now)", lambda: _auto_reason(conversation.pk))
    cost("Celery publish (send_task)", lambda: app.send_task("bench.nothing", args=[1], queue="bench-nothing"))
    cost("connection health check (SELECT 1)", lambda: connection.cursor().execute("SELECT 1"))
    cost("Redis GET", lambda: redis_client().get("bench-nothing-key"))
    cost("PII redaction", lambda: pii_redact(TEXT))
    cost("answer frame (answer_payload)", lambda: services.answer_payload(bot))
    cost("JSON log line", lambda: JsonFormatter().format(record), 1000)
    print(f"| thread hop (db_async, nothing in it) | {asyncio.run(hops(300, db_async(lambda: None))):.3f} | |")
    print(
        f"| Channels' close_old_connections hop per event (before) | {asyncio.run(hops(300, aclose_old_connections)):.3f} | |"
    )
    redis_client().delete("bench-nothing")
    conversation.delete()


if __name__ == "__main__":
    main()
