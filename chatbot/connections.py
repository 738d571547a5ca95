"""Database connections of long-lived processes: the web process's consumer threads and Celery workers.

Django's `close_old_connections()` drops a connection that had an error or is older than CONN_MAX_AGE, and makes
the next query check the connection first (CONN_HEALTH_CHECKS: a `SELECT 1` round trip). Channels' database
helper and the answer task called it around every message, so every message paid one more round trip. Here it
runs at most once a second per thread, and at once after a database error, so that a connection broken by a
database restart is still replaced before the next message (or the task's retry) uses it.
"""

import contextlib
import functools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import DatabaseError, close_old_connections, transaction

CHECK_SECONDS = 1.0
_checked = threading.local()
T = TypeVar("T")


def connections_refresh() -> None:
    now = time.monotonic()
    if now - getattr(_checked, "at", float("-inf")) >= CHECK_SECONDS:
        _checked.at = now
        close_old_connections()


def connections_after_error() -> None:
    _checked.at = time.monotonic()
    close_old_connections()  # a connection that had an error is tested and dropped if broken


def with_connection(function: Callable[..., T]) -> Callable[..., T]:
    """Run `function` on a checked connection; after a database error, have the connection tested."""

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> T:
        connections_refresh()
        try:
            return function(*args, **kwargs)
        except (DatabaseError, ConnectionError):
            connections_after_error()
            raise

    return call


def db_async(function: Callable[..., T]) -> Callable[..., Any]:
    """`function` as a coroutine run in a thread of the default pool, like Channels' database_sync_to_async
    (thread_sensitive=False) without its two connection checks per call."""
    return sync_to_async(with_connection(function), thread_sensitive=False)


def single_statement() -> contextlib.AbstractContextManager:
    """For one INSERT whose IntegrityError the caller handles: in autocommit the statement is its own transaction,
    without BEGIN and COMMIT round trips; inside a caller's transaction, a savepoint keeps a failed statement from
    breaking it."""
    return transaction.atomic() if transaction.get_connection().in_atomic_block else contextlib.nullcontext()
