"""What the benchmark and drill scripts share: the production processes' command lines and environment.

Imported by bench/serving.py and bench/faults/drill.py (with bench/ on sys.path), so that the daphne and
Celery worker they start are the same as the Procfile's.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# As in the Procfile: handshakes wait for the database under a connection storm; frames are capped at the server.
DAPHNE_OPTIONS = [
    "--websocket_connect_timeout",
    "30",
    "--websocket-max-message-size",
    "65536",
    "--websocket-max-frame-size",
    "65536",
]


def web_command(port: int) -> list[str]:
    return [
        sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), *DAPHNE_OPTIONS, "chatbot.asgi:application",
    ]  # fmt: skip


def worker_command(
    name: str,
    *,
    concurrency: int = 1,
    loglevel: str = "INFO",
    pool: str = "prefork",
    queues: str = "inference,training",
) -> list[str]:
    """An inference (and training) worker with `concurrency` pool processes (or threads), named `name@host`."""
    return [
        sys.executable, "-m", "celery", "-A", "chatbot", "worker", "-Q", queues, "--pool", pool,
        "--concurrency", str(concurrency), "--loglevel", loglevel, "--hostname", f"{name}@%h",
    ]  # fmt: skip


def production_env(*, database_url: str, redis_url: str, var_dir: str, secret: str, **extra: str) -> dict[str, str]:
    """Production mode on 127.0.0.1 without TLS, and with the abuse limits out of the way of the load clients
    (they all come from one address)."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="chatbot.settings",
        PYTHONUNBUFFERED="1",
        SECRET_KEY=f"{secret}-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz-0123456789",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        SECURE_COOKIES="0",
        CHATBOT_VAR_DIR=var_dir,
        CHATBOT_RATE_BURST="100000",
        CHATBOT_RATE_PER_SECOND="100000",
        CHATBOT_IP_RATE_BURST="1000000",
        CHATBOT_IP_RATE_PER_SECOND="1000000",
        CHATBOT_IP_MAX_CONNECTIONS="100000",
        CHATBOT_IP_CONNECT_BURST="100000",
        CHATBOT_IP_CONNECTS_PER_SECOND="100000",
        **extra,
    )
    return env
