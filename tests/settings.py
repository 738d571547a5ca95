"""Settings for the test suite: production mode against the PostgreSQL and Redis on this machine."""

import os
import tempfile

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("SECRET_KEY", "tests-only-" + "k" * 50)
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SECURE_COOKIES", "0")
os.environ.setdefault("CHATBOT_ENCODER", "ngram")
# A killed worker's unacknowledged task comes back after this many seconds.
os.environ.setdefault("CHATBOT_VISIBILITY_TIMEOUT", "10")
os.environ.setdefault("CHATBOT_VAR_DIR", tempfile.mkdtemp(prefix="chatbot-tests-"))
# Each run has its own test database and channel-layer keys; the Celery queues live in Redis db 15,
# emptied when the run starts.
os.environ.setdefault("CHATBOT_REDIS_PREFIX", f"test{os.getpid()}:")
RUN_ID = os.environ["CHATBOT_REDIS_PREFIX"].rstrip(":")

from chatbot.settings import *  # noqa: E402,F403

DATABASES["default"]["TEST"] = {"NAME": f"{RUN_ID}_chatbot"}  # noqa: F405
