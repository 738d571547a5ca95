"""One training at a time, across processes and machines.

PostgreSQL: a session advisory lock. SQLite (embedded, one machine): an flock on a file. Both are
released by the operating system or the database when the holder dies, so a killed training worker
never leaves the lock taken; a run still marked running without the lock held is therefore stale.
"""

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)
TRAINING_LOCK_KEY = 0x6C756D656E  # "lumen"
CREATE_LOCK_KEY = TRAINING_LOCK_KEY + 1


@contextmanager
def training_lock() -> Iterator[bool]:
    """Yields True when this process holds the training lock, False when another one does. Never waits."""
    if connection.vendor == "postgresql":
        with _advisory_lock(TRAINING_LOCK_KEY) as held:
            yield held
    else:
        with _file_lock(Path(settings.VAR_DIR) / "training.lock") as held:
            yield held


@contextmanager
def _advisory_lock(key: int) -> Iterator[bool]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        held = bool(cursor.fetchone()[0])
    try:
        yield held
    finally:
        if held:
            _advisory_unlock(key)


def _advisory_unlock(key: int) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
    except Exception:  # the connection is gone, and the lock with it
        logger.warning("training lock: connection lost before unlock")


@contextmanager
def _file_lock(path: Path) -> Iterator[bool]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def serialise_in_transaction(key: int = CREATE_LOCK_KEY) -> None:
    """Inside transaction.atomic(): make concurrent callers take turns until commit (SQLite already does)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
