import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from hypothesis import settings as hypothesis_settings

ROOT = Path(__file__).resolve().parent.parent

# The fuzz tests explore new inputs on every run; CI (HYPOTHESIS_PROFILE=ci in .ci/run) replays a fixed
# sequence, so that a new find fails a developer's run, not an unrelated submission.
hypothesis_settings.register_profile("ci", derandomize=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker):  # noqa: ANN001
    """A test database for every run, holding the demo knowledge base and a trained model for the session.

    Replaces pytest-django's fixture, which creates databases only when a collected test has the
    django_db mark; the tests that talk to real processes use `committed_db` instead.
    """
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        config = setup_databases(verbosity=0, interactive=False, serialized_aliases=[])
        redis.Redis.from_url(settings.REDIS_URL).flushdb()
        call_command("load_demo", verbosity=0)
    yield
    with django_db_blocker.unblock():
        _disconnect_others()
        teardown_databases(config, verbosity=0)


def _disconnect_others() -> None:
    """Connections left open by other threads (the consumer's) would block dropping the test database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    connection.close()


@pytest.fixture(autouse=True)
def fresh_address_limits() -> None:
    """Each test starts with no per-address connection counts or rate buckets.

    They live in Redis (production mode, as here), shared by every web process; many tests share one address
    (WebsocketCommunicator sets no client address: every such connection comes from "unknown") and some
    change the limits' settings, so one test's connections and frames must not count against the next's.
    """
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(f"{settings.REDIS_PREFIX}chatbot:ip:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def fresh_pairs_cache() -> Iterator[None]:
    """This process's pairs cache reloads in the test (inside its transaction) and after it: a test that runs
    on-commit callbacks in a transaction that is rolled back would leave the cache holding rows that are gone."""
    from chatbot.knowledge import selectors

    selectors._cache["loaded_at"] = float("-inf")
    yield
    selectors._cache["loaded_at"] = float("-inf")


@pytest.fixture
def committed_db(django_db_setup, django_db_blocker) -> Iterator[None]:  # noqa: ANN001
    """Database access without a wrapping transaction, for code that runs in other threads or processes."""
    with django_db_blocker.unblock():
        yield


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def subprocess_env() -> dict[str, str]:
    database = settings.DATABASES["default"]
    env = dict(os.environ)
    env["DATABASE_URL"] = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    env["DJANGO_SETTINGS_MODULE"] = "chatbot.settings"
    env["PYTHONUNBUFFERED"] = "1"
    # Customer messages whose task was lost with a killed worker are queued again from PostgreSQL: sweep
    # every 2 s for messages unanswered 15 s after they were stored (production: 30 s and 60 s).
    env.setdefault("CHATBOT_RECOVERY_SECONDS", "2")
    env.setdefault("CHATBOT_RECOVERY_AFTER_SECONDS", "15")
    env.setdefault("CHATBOT_REVIEW_REFRESH_SECONDS", "1")
    return env


@dataclass
class Stack:
    port: int
    worker: subprocess.Popen
    web: subprocess.Popen
    logs: Path

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/chat/"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def replace_worker(self, name: str) -> None:
        """Kill the worker and its pool processes at once (SIGKILL), then start and wait for a new one."""
        children = child_pids(self.worker.pid)
        self.worker.send_signal(signal.SIGKILL)
        for child in children:
            os.kill(child, signal.SIGKILL)
        self.worker.wait(timeout=10)
        self.worker = start_worker(self.logs, name=name)
        wait_for_worker(self.logs, name=name)


def child_pids(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(child) for child in handle.read().split()]
    except FileNotFoundError:
        return []


def start_worker(logs: Path, name: str = "worker") -> subprocess.Popen:
    log = open(logs / f"{name}.log", "ab")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "chatbot",
            "worker",
            "--queues",
            "inference,training",
            "--pool",
            "prefork",
            "--concurrency",
            "1",
            "--loglevel",
            "INFO",
            "--hostname",
            f"{name}@%h",
        ],
        cwd=ROOT,
        env=subprocess_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_for_worker(logs: Path, name: str = "worker", timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if b" ready." in (logs / f"{name}.log").read_bytes():
            return
        time.sleep(0.2)
    raise RuntimeError(f"celery worker did not start:\n{(logs / f'{name}.log').read_text()[-3000:]}")


def wait_for_http(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"daphne did not listen on {port}")


@pytest.fixture(scope="module")
def stack(django_db_setup, tmp_path_factory) -> Iterator[Stack]:  # noqa: ANN001
    """Real processes: daphne (web) and a Celery worker, on the test database and Redis; one set per
    test module, so that no worker answers the messages of tests that talk to the consumer alone."""
    logs = tmp_path_factory.mktemp("stack-logs")
    port = free_port()
    worker = start_worker(logs)
    web = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "chatbot.asgi:application"],
        cwd=ROOT,
        env=subprocess_env(),
        stdout=open(logs / "web.log", "ab"),
        stderr=subprocess.STDOUT,
    )
    running = Stack(port=port, worker=worker, web=web, logs=logs)
    try:
        wait_for_worker(logs)
        wait_for_http(port)
        yield running
    finally:
        for process in (running.web, running.worker):
            process.terminate()
        for process in (running.web, running.worker):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def operator_client(django_user_model) -> object:  # noqa: ANN001
    """A client logged in as a staff user in the Operators group (not a superuser)."""
    from django.contrib.auth.models import Group
    from django.test import Client

    from chatbot.roles import roles_ensure

    roles_ensure()
    user = django_user_model.objects.create_user("operator-client", password="unused-pw-123", is_staff=True)
    user.groups.add(Group.objects.get(name="Operators"))
    client = Client()
    client.force_login(user)
    return client
