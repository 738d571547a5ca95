"""Where an inference worker's time goes, per message, in one process (no broker, no WebSocket).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chatbot_bench REDIS_URL=redis://127.0.0.1:6379/2 \\
    SECRET_KEY=... ALLOWED_HOSTS=127.0.0.1 python bench/profile_worker.py

Run after bench/serving.py (which leaves that database with the demo model). Prints, in ms per
message: the model's forward pass alone for batches of 1, 8 and 32 texts (is micro-batching worth
it?), composing the reply, the whole answer task with the real model and with the no-op floor.
"""

import json
import os
import sys
import time
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
django.setup()

from django.conf import settings  # noqa: E402
from load import DEFAULT_QUESTIONS, load_questions  # noqa: E402

from chatbot.conversations.models import Conversation, Message  # noqa: E402
from chatbot.conversations.replies import reply_compose  # noqa: E402
from chatbot.conversations.tasks import answer_message_task  # noqa: E402
from chatbot.registry.engine import engine_get  # noqa: E402


def per_item_ms(fn, items: list, repeat: int = 3) -> float:  # noqa: ANN001
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, (time.perf_counter() - started) * 1000)
    return best


def main() -> None:
    questions = load_questions(DEFAULT_QUESTIONS)[:96]
    model = engine_get().model
    result = {}
    for size in (1, 8, 32):
        batches = [questions[i : i + size] for i in range(0, len(questions), size)]
        result[f"forward_batch{size}_ms_per_text"] = round(
            per_item_ms(lambda batch: model.predict(batch, k=10), batches) / len(questions), 3
        )
    ranked = [(text, model.predict([text], k=10)[0]) for text in questions]
    result["reply_compose_ms"] = round(
        per_item_ms(lambda item: reply_compose(text=item[0], ranked=item[1], decide=model.decide), ranked)
        / len(ranked),
        3,
    )
    conversation = Conversation.objects.create()
    for mode in ("model", "floor"):
        settings.CHATBOT_NOOP_MODEL = mode == "floor"
        ids = [
            Message.objects.create(conversation=conversation, sender="customer", text=text, client_id=f"{mode}{n}").pk
            for n, text in enumerate(questions)
        ]
        for pk in ids[:8]:  # warm: connection, caches
            answer_message_task.run(pk)
        started = time.perf_counter()
        for pk in ids[8:]:
            answer_message_task.run(pk)
        result[f"answer_task_{mode}_ms"] = round((time.perf_counter() - started) * 1000 / len(ids[8:]), 3)
    conversation.delete()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
