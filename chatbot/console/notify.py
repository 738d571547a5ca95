"""Frames to customers' and operators' sockets, sent through the channel layer once the change is committed.

The database holds the truth either way: a socket that misses a frame gets the state again when it reconnects.
"""

import logging
from typing import Any

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from chatbot.conversations.delivery import group_send

logger = logging.getLogger(__name__)
STAFF = "console.staff"  # every open console


def operator_group(user_id: int) -> str:
    return f"console.operator.{user_id}"


def _send(group: str, event: dict[str, Any]) -> None:
    try:
        if _in_consumer_thread():
            # Called from a consumer (sync_to_async): send on the web process's own event loop, whose Redis
            # connections the channel layer already holds; a second loop's sends queue behind them under load.
            async_to_sync(get_channel_layer().group_send)(group, event)
        else:  # a worker's task
            group_send(group, event)
    except Exception:  # the channel layer is down: the state is in the database and is sent on reconnect
        logger.warning("frame to %s not sent (channel layer unavailable)", group, exc_info=True)


def _in_consumer_thread() -> bool:
    return getattr(SyncToAsync.threadlocal, "main_event_loop", None) is not None


def customer_send(conversation_id: int, frame: dict[str, Any], *, deliver: int | None = None) -> None:
    """To every socket of the conversation's customer; `deliver`: the operator message this frame carries,
    marked delivered once sent."""
    from chatbot.conversations.services import conversation_group  # that module routes messages through this app

    event = {"type": "handoff.frame", "frame": frame, "deliver": deliver}
    transaction.on_commit(lambda: _send(conversation_group(conversation_id), event))


def console_send(group: str, frame: dict[str, Any]) -> None:
    transaction.on_commit(lambda: _send(group, {"type": "console.frame", "frame": frame}))
