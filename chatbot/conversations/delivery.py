"""Sending answers from a worker to the browser's connection through the channel layer."""

import asyncio
import os
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None
_loop_lock = threading.Lock()


def _worker_loop() -> asyncio.AbstractEventLoop:
    """One event loop per worker process, kept running: async_to_sync per task would build a loop,
    a thread and a Redis pool every call."""
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid():
            _loop, _loop_pid = asyncio.new_event_loop(), os.getpid()
            threading.Thread(target=_loop.run_forever, name="channel-layer", daemon=True).start()
        return _loop


def group_send(group: str, message: dict[str, Any]) -> None:
    """Deliver to every connection of a conversation (one PUBLISH to its group: chatbot.settings CHANNEL_LAYERS).

    The answer is in the database either way: a connection that missed it gets it when it resumes.
    """
    layer = get_channel_layer()
    if settings.CHATBOT_INLINE_INFERENCE:
        async_to_sync(layer.group_send)(group, message)
    else:
        asyncio.run_coroutine_threadsafe(layer.group_send(group, message), _worker_loop()).result(timeout=10)
