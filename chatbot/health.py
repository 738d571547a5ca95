"""Worker health: each inference process loads the active model at start and reports what it serves.

Every pool process runs a small thread that, every CHATBOT_HEARTBEAT_SECONDS, asks the engine for the
active model (loading it when it changed, keeping the previous one when it cannot be loaded) and
writes {version, error, at} to a Redis hash that /healthz reads. `python manage.py worker_health`
exits non-zero when no worker reported recently or one cannot load the active model.
"""

import json
import logging
import os
import socket
import threading
import time
from typing import Any

from django.conf import settings
from django.db import close_old_connections

from chatbot.redis_client import redis_client, redis_key

logger = logging.getLogger(__name__)
_started: set[int] = set()


def _key() -> str:
    return redis_key("workers")


def heartbeat_once() -> dict[str, Any]:
    from chatbot.registry.engine import active_version_id, engine_get, engine_status

    try:
        loaded = engine_get()
        status = engine_status()
        if loaded and loaded.version_id == active_version_id():
            status["error"] = ""  # an earlier failure no longer matters: the active version is in service
    except Exception as error:  # the database or the storage is down: say so, try again next beat
        status = {**engine_status(), "error": f"{type(error).__name__}: {error}"}
    report = {**status, "at": time.time()}
    if settings.REDIS_URL:
        redis_client().hset(_key(), f"{socket.gethostname()}:{os.getpid()}", json.dumps(report))
    return report


def heartbeat_start() -> None:
    """Start the heartbeat thread of this process (once)."""
    if os.getpid() in _started or not settings.REDIS_URL:
        return
    _started.add(os.getpid())

    def beat() -> None:
        while True:
            try:
                close_old_connections()  # a connection broken by a database restart is replaced
                heartbeat_once()
            except Exception:
                logger.warning("worker heartbeat failed", exc_info=True)
            time.sleep(settings.CHATBOT_HEARTBEAT_SECONDS)

    threading.Thread(target=beat, name="heartbeat", daemon=True).start()


def workers_status() -> list[dict[str, Any]]:
    """Workers that reported in the last three heartbeats; older entries are removed."""
    if not settings.REDIS_URL:
        return []
    client, now, alive = redis_client(), time.time(), []
    for name, raw in client.hgetall(_key()).items():
        report = json.loads(raw)
        if now - report.get("at", 0) > 3 * settings.CHATBOT_HEARTBEAT_SECONDS:
            client.hdel(_key(), name)
            continue
        alive.append({"worker": name, **report})
    return sorted(alive, key=lambda item: item["worker"])
