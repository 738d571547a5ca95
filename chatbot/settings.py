"""Settings for the chatbot, driven by environment variables, one section per concern.

With nothing set, the product runs embedded on one machine: SQLite, an in-memory channel layer, inference inside
the web process and a file-system Celery broker for training and the schedule. DATABASE_URL (PostgreSQL) selects
production mode, with REDIS_URL for the broker and the channel layer: separate web, worker and beat processes.
Anything that looks like a deployment without DATABASE_URL refuses to start (see `_mode`).
"""

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CHATBOT_VAR_DIR", BASE_DIR / "var"))

_Number = TypeVar("_Number", int, float)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {value!r}")


def env_int(name: str, default: int) -> int:
    return _env_number(name, default, int, "an integer")


def env_float(name: str, default: float) -> float:
    return _env_number(name, default, float, "a number")


def _env_number(name: str, default: _Number, parse: Callable[[str], _Number], kind: str) -> _Number:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return parse(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be {kind}, got {value!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


# --- Mode ---------------------------------------------------------------------------------------
# Decided once, here, and failing closed: production when DATABASE_URL is set (or CHATBOT_MODE=production, as the
# Procfile's processes say); embedded only when nothing production-like is configured (or CHATBOT_MODE=embedded).
LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}
EMBEDDED_SECRET_KEY = "embedded-only-not-for-production"
DATABASE_URL = os.environ.get("DATABASE_URL", "")
REDIS_URL = os.environ.get("REDIS_URL", "")


def _mode() -> str:
    mode = os.environ.get("CHATBOT_MODE", "")
    if mode not in ("", "embedded", "production"):
        raise ImproperlyConfigured(f"CHATBOT_MODE must be 'embedded' or 'production', got {mode!r}")
    if mode == "production" and not DATABASE_URL:
        raise ImproperlyConfigured("CHATBOT_MODE=production needs DATABASE_URL (PostgreSQL); it is not set.")
    if mode == "embedded" and (DATABASE_URL or REDIS_URL):
        raise ImproperlyConfigured("CHATBOT_MODE=embedded runs without DATABASE_URL and REDIS_URL: unset them.")
    if mode or DATABASE_URL:
        return mode or "production"
    public = sorted(set(env_list("ALLOWED_HOSTS", [])) - LOCAL_HOSTS)
    if REDIS_URL or public:
        found = ", ".join((["REDIS_URL"] if REDIS_URL else []) + [f"ALLOWED_HOSTS={host}" for host in public])
        raise ImproperlyConfigured(
            f"DATABASE_URL is not set, but {found} looks like a production deployment: set DATABASE_URL, or "
            "CHATBOT_MODE=embedded to run embedded (SQLite, debug pages, a public secret key) on purpose."
        )
    return "embedded"


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY", "")
    if not PRODUCTION:
        return key or EMBEDDED_SECRET_KEY
    if not key or key == EMBEDDED_SECRET_KEY:
        raise ImproperlyConfigured("Set SECRET_KEY: production mode has no default.")
    if len(key) < 50 or len(set(key)) < 5:
        raise ImproperlyConfigured("SECRET_KEY is too weak for production: use 50 or more random characters.")
    return key


MODE = _mode()
PRODUCTION = MODE == "production"
USE_REDIS = bool(REDIS_URL)  # the Celery broker and the channel layer; else a file-system broker, in-memory layer
# Prefix for the channel layer's Redis keys (give each deployment its own Redis database for Celery).
REDIS_PREFIX = os.environ.get("CHATBOT_REDIS_PREFIX", "")

# --- Security ------------------------------------------------------------------------------------
DEBUG = env_bool("DEBUG", default=not PRODUCTION)
if PRODUCTION and DEBUG and not env_bool("CHATBOT_ALLOW_DEBUG", False):
    raise ImproperlyConfigured("DEBUG must be off in production mode.")
SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else sorted(LOCAL_HOSTS - {"::1"}))
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# The chat page's content-security policy (the page has no inline script or style).
CHATBOT_CHAT_CSP = os.environ.get(
    "CHATBOT_CHAT_CSP",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
)
# Who may read GET /metrics besides staff users.
CHATBOT_METRICS_ALLOWED_IPS = env_list("CHATBOT_METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"])
# Reverse proxies (addresses or networks) whose X-Forwarded-For is believed; empty: the socket peer is the client.
CHATBOT_TRUSTED_PROXIES = env_list("CHATBOT_TRUSTED_PROXIES", [])
# New WebSocket connections per address: a burst, then this many a second (open-close loops are refused).
CHATBOT_IP_CONNECT_BURST = env_int("CHATBOT_IP_CONNECT_BURST", 20)
CHATBOT_IP_CONNECTS_PER_SECOND = env_float("CHATBOT_IP_CONNECTS_PER_SECOND", 1.0)

# --- Django --------------------------------------------------------------------------------------
INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_celery_beat",
    "import_export",
    "chatbot.knowledge",
    "chatbot.conversations",
    "chatbot.registry",
    "chatbot.review",
    "chatbot.dashboard",
    "chatbot.sites",
    "chatbot.console",
    "chatbot",
    "django_prometheus",
]

# Prometheus: HTTP metrics from django-prometheus (the outermost middleware), product metrics from chatbot.metrics.
MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "chatbot.urls"
ASGI_APPLICATION = "chatbot.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if PRODUCTION:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=600, conn_health_checks=True)}
    # Server-side binding with prepared statements (Django turns psycopg's off by default): a statement is
    # prepared the fifth time a connection runs it, so every message's statements are parsed and planned once per
    # connection instead of each time (most of PostgreSQL's CPU for them; the serving section of BENCHMARKS.md).
    # DATABASE_SERVER_SIDE_BINDING=0 behind a pooler that cannot keep prepared statements (PgBouncer < 1.21).
    if env_bool("DATABASE_SERVER_SIDE_BINDING", True):
        DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "db.sqlite3"),
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if USE_REDIS:
    # Redis pub/sub: an answer is one PUBLISH to its conversation's group, pushed to the web process that
    # holds the connection; the list-based layer (channels_redis.core) took four round trips and a Lua script
    # per group send and polled with BZPOPMIN (the serving section of BENCHMARKS.md). Nothing waits in Redis
    # for a connection that is gone: answers are in PostgreSQL, and a resumed connection gets the undelivered
    # ones. Pub/sub ignores Redis' database numbers, hence the number in the prefix: two deployments on one
    # Redis server, on different databases, never hear each other.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                # socket_timeout None: redis-py's default read timeout would drop idle subscriptions.
                "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
                "prefix": f"{REDIS_PREFIX}asgi{urlsplit(REDIS_URL).path.strip('/') or '0'}:",
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
# Static files are served by the web process (WhiteNoise); `collectstatic` is optional.
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Celery --------------------------------------------------------------------------------------
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, int | str]
if USE_REDIS:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT = "chatbot.broker:Transport"  # kombu's Redis transport, one client object per channel
    # A killed worker's unacknowledged task is restored once it is this old; kombu's default sweep runs
    # only every tenth call of a 10 s timer: sweep every 5 s instead.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CHATBOT_VISIBILITY_TIMEOUT", 3600),
        "unacked_restore_interval": 5,
        "unacked_restore_throttle": 1,
    }
    # No global_keyprefix for the broker: kombu does not restore a killed worker's task under one.
else:
    _broker_dir = VAR_DIR / "broker"
    _broker_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "control_folder": str(_broker_dir / "control"),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ROUTES = {
    "chatbot.conversations.tasks.*": {"queue": "inference"},
    "chatbot.registry.tasks.*": {"queue": "training"},
    # The review queue's refresh runs the model over thousands of messages: not beside customers' answers.
    "chatbot.review.tasks.*": {"queue": "training"},
}
CELERY_TASK_DEFAULT_QUEUE = "inference"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes the DB connection around every task unless told to reuse it.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)

# --- Logging -------------------------------------------------------------------------------------
# Structured logs in production: one JSON object a line with the ids of the conversation and message.
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOG_FORMAT = os.environ.get("LOG_FORMAT", "json" if PRODUCTION else "plain")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'json' or 'plain', got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "chatbot.logs.JsonFormatter"},
    },
    "filters": {
        "answer_task_routine": {
            "()": "chatbot.logs.TaskRoutine",
            "task": "chatbot.conversations.tasks.answer_message_task",
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "daphne": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
        # the answer task's "received" and "succeeded": two lines a message besides its own (chatbot.logs)
        "celery.worker.strategy": {"filters": ["answer_task_routine"]},
        "celery.app.trace": {"filters": ["answer_task_routine"]},
    },
}

# --- The chat (web process) ------------------------------------------------------------------------
CHATBOT_SHOP_NAME = os.environ.get("CHATBOT_SHOP_NAME", "Lumen Store")
# Embedded mode has no cross-process channel layer, so the web process answers itself.
CHATBOT_INLINE_INFERENCE = env_bool("CHATBOT_INLINE_INFERENCE", not USE_REDIS)
CHATBOT_MAX_MESSAGE_CHARS = env_int("CHATBOT_MAX_MESSAGE_CHARS", 2000)
CHATBOT_MAX_FRAME_BYTES = env_int("CHATBOT_MAX_FRAME_BYTES", 16384)
CHATBOT_RATE_BURST = env_int("CHATBOT_RATE_BURST", 8)
CHATBOT_RATE_PER_SECOND = env_float("CHATBOT_RATE_PER_SECOND", 1.0)
# Abuse limits of one web process: frames per IP address (all its connections), open connections per
# IP address, and seconds without a frame after which a connection is closed (0: never).
CHATBOT_IP_RATE_BURST = env_int("CHATBOT_IP_RATE_BURST", 40)
CHATBOT_IP_RATE_PER_SECOND = env_float("CHATBOT_IP_RATE_PER_SECOND", 10.0)
CHATBOT_IP_MAX_CONNECTIONS = env_int("CHATBOT_IP_MAX_CONNECTIONS", 50)
CHATBOT_IDLE_SECONDS = env_float("CHATBOT_IDLE_SECONDS", 900.0)
CHATBOT_SUGGESTIONS = env_int("CHATBOT_SUGGESTIONS", 3)
# The languages a pair is answered in (one answer each, edited side by side; import/export columns answer_<code>),
# in order of preference when a pair lacks the customer's: codes of knowledge.models.Language.
CHATBOT_LANGUAGES = env_list("CHATBOT_LANGUAGES", ["en", "zh"])
if not CHATBOT_LANGUAGES or not set(CHATBOT_LANGUAGES) <= {"en", "zh"}:
    raise ImproperlyConfigured(f"CHATBOT_LANGUAGES must list en and/or zh, got {CHATBOT_LANGUAGES!r}")

# --- Inference workers and the model --------------------------------------------------------------
CHATBOT_ENCODER = os.environ.get("CHATBOT_ENCODER", "")
# Any other field of training.ModelConfig, as a JSON object, e.g. '{"finetune_objective": "classify"}'.
try:
    CHATBOT_MODEL_OPTIONS = json.loads(os.environ.get("CHATBOT_MODEL_OPTIONS") or "{}")
except ValueError as error:
    raise ImproperlyConfigured(f"CHATBOT_MODEL_OPTIONS must be a JSON object: {error}") from None
if not isinstance(CHATBOT_MODEL_OPTIONS, dict):
    raise ImproperlyConfigured("CHATBOT_MODEL_OPTIONS must be a JSON object")
# Where workers unpack model versions and convert the encoders that come as packages (training.e5).
CHATBOT_MODEL_CACHE = Path(os.environ.get("CHATBOT_MODEL_CACHE", VAR_DIR / "model-cache"))
# Benchmark floor only: answer every message with the first pair without running the model.
CHATBOT_NOOP_MODEL = env_bool("CHATBOT_NOOP_MODEL", False)
# torch intra-op threads per worker process: several pool processes on few cores must not oversubscribe.
CHATBOT_TORCH_THREADS = env_int("CHATBOT_TORCH_THREADS", 1)
# Each worker process reloads the active model and reports to /healthz this often.
CHATBOT_HEARTBEAT_SECONDS = env_float("CHATBOT_HEARTBEAT_SECONDS", 10.0)
# A worker asks which model version is active at most this often (a new version is live within it).
CHATBOT_MODEL_CHECK_SECONDS = env_float("CHATBOT_MODEL_CHECK_SECONDS", 1.0)
# Workers keep the active Q&A pairs in memory; a saved pair is live at once, a bulk update within this.
CHATBOT_PAIRS_CACHE_SECONDS = env_float("CHATBOT_PAIRS_CACHE_SECONDS", 5.0)
# Customer messages whose answer task was lost between Redis and a killed worker (kombu's BRPOP takes a task
# off the queue before it is recorded as unacknowledged) are queued again from PostgreSQL: every
# CHATBOT_RECOVERY_SECONDS each worker asks for a sweep (0: never); a message unanswered this many seconds
# after it was stored counts as lost, up to the horizon, at most CHATBOT_RECOVERY_ATTEMPTS times.
CHATBOT_RECOVERY_SECONDS = env_float("CHATBOT_RECOVERY_SECONDS", 30.0)
CHATBOT_RECOVERY_AFTER_SECONDS = env_float("CHATBOT_RECOVERY_AFTER_SECONDS", 60.0)
CHATBOT_RECOVERY_HORIZON_SECONDS = env_float("CHATBOT_RECOVERY_HORIZON_SECONDS", 6 * 3600.0)
CHATBOT_RECOVERY_ATTEMPTS = env_int("CHATBOT_RECOVERY_ATTEMPTS", 3)
CHATBOT_RECOVERY_LIMIT = env_int("CHATBOT_RECOVERY_LIMIT", 500)

# --- Privacy --------------------------------------------------------------------------------------
# Personal data redacted from customer messages before they are stored: email, cn_id, card, phone.
CHATBOT_REDACT_PII = env_list("CHATBOT_REDACT_PII", ["email", "cn_id", "card", "phone"])
# Conversations not seen for this many days are deleted nightly (0 keeps them forever).
CHATBOT_RETENTION_DAYS = env_int("CHATBOT_RETENTION_DAYS", 180)
CHATBOT_RETENTION_CRONTAB = os.environ.get("CHATBOT_RETENTION_CRONTAB", "30 4 * * *")

# --- Dashboard ------------------------------------------------------------------------------------
# Closed days' figures are counted by this periodic task; today and days not counted yet are read live.
CHATBOT_DASHBOARD_ROLLUP_CRONTAB = os.environ.get("CHATBOT_DASHBOARD_ROLLUP_CRONTAB", "*/10 * * * *")

# --- Learning loop --------------------------------------------------------------------------------
CHATBOT_RETRAIN_CRONTAB = os.environ.get("CHATBOT_RETRAIN_CRONTAB", "0 3 * * *")
# A candidate is put in service only when it is not worse than the active model by more than this
# (accuracy and out-of-scope F1 on the held-out set, as fractions).
CHATBOT_GATE_MARGIN = env_float("CHATBOT_GATE_MARGIN", 0.02)
# ... and only when the loss is beyond chance on the held-out rows (paired McNemar z; 1.64: one-sided 95 %).
CHATBOT_GATE_CONFIDENCE_Z = env_float("CHATBOT_GATE_CONFIDENCE_Z", 1.64)
# Share of reviewed messages (the most recent) and of curated examples (a stable hash) held out for the gate.
CHATBOT_GATE_HOLDOUT_SHARE = env_float("CHATBOT_GATE_HOLDOUT_SHARE", 0.15)
# Out-of-scope examples are few, so a larger share of them is held out.
CHATBOT_GATE_OOS_HOLDOUT_SHARE = env_float("CHATBOT_GATE_OOS_HOLDOUT_SHARE", 0.4)
# The share of customer questions the shop cannot answer, as the gate weighs them when it picks each model's
# not-sure threshold and scores out-of-scope F1.
CHATBOT_GATE_OOS_SHARE = env_float("CHATBOT_GATE_OOS_SHARE", 0.2)
# 0: the model's default number of epochs.
CHATBOT_TRAIN_EPOCHS = env_int("CHATBOT_TRAIN_EPOCHS", 0)
# torch threads while training in a worker (0: all cores); inference processes keep CHATBOT_TORCH_THREADS.
CHATBOT_TRAIN_THREADS = env_int("CHATBOT_TRAIN_THREADS", 0)
# The automatic choice of a model (training/auto.py) trains candidates cheap first within this many seconds; the
# default fits a nightly CLINC150-sized run (15,000 questions) in 15 minutes on 2 cores. CHATBOT_ENCODER or
# CHATBOT_MODEL_OPTIONS, when set, fix the recipe instead.
CHATBOT_TRAIN_BUDGET_SECONDS = env_float("CHATBOT_TRAIN_BUDGET_SECONDS", 840.0)
# The automatic choice's limit on a model's answer time (median ms for one question on one thread, measured on the
# held-out questions); 0 (default): no limit, the most accurate model wins however slow.
CHATBOT_MAX_ANSWER_MS = env_float("CHATBOT_MAX_ANSWER_MS", 0.0)
# Where fine-tuning runs: auto (a CUDA GPU when PyTorch sees one), cpu or cuda. Models are saved for, and served
# on, the CPU.
CHATBOT_TRAIN_DEVICE = os.environ.get("CHATBOT_TRAIN_DEVICE", "auto")
# Review queue: below this confidence, or a top-two gap below the second, a message needs a human.
CHATBOT_REVIEW_LOW_CONFIDENCE = env_float("CHATBOT_REVIEW_LOW_CONFIDENCE", 0.5)
CHATBOT_REVIEW_NEAR_TIE = env_float("CHATBOT_REVIEW_NEAR_TIE", 0.1)
# Cosine similarity of the model's embeddings above which messages share a cluster.
CHATBOT_REVIEW_CLUSTER_SIMILARITY = env_float("CHATBOT_REVIEW_CLUSTER_SIMILARITY", 0.75)
# A worker refreshes the review queue at most this often (after new answers, feedback, trainings, page views).
CHATBOT_REVIEW_REFRESH_SECONDS = env_float("CHATBOT_REVIEW_REFRESH_SECONDS", 30.0)

# --- Admin hardening and retention ----------------------------------------------
# Counters that every web process must share (admin log-in failures): Redis in production, this process's
# memory in embedded mode.
if USE_REDIS:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"{REDIS_PREFIX}cache",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Admin log-in: after this many failures of one account (or from one address) within the lock-out time,
# log-ins are refused, even with the right password, until it has passed.
CHATBOT_LOGIN_MAX_FAILURES_PER_ACCOUNT = env_int("CHATBOT_LOGIN_MAX_FAILURES_PER_ACCOUNT", 5)
CHATBOT_LOGIN_MAX_FAILURES_PER_ADDRESS = env_int("CHATBOT_LOGIN_MAX_FAILURES_PER_ADDRESS", 20)
CHATBOT_LOGIN_LOCKOUT_SECONDS = env_int("CHATBOT_LOGIN_LOCKOUT_SECONDS", 900)
# The largest file the admin's Q&A import accepts.
CHATBOT_IMPORT_MAX_BYTES = env_int("CHATBOT_IMPORT_MAX_BYTES", 5_000_000)
# An import preview that was never confirmed is deleted from storage after this many hours (nightly task).
CHATBOT_IMPORT_PREVIEW_HOURS = env_int("CHATBOT_IMPORT_PREVIEW_HOURS", 24)
# Model artifacts kept besides the active version's: the newest N versions (older ones are pruned nightly).
CHATBOT_KEEP_VERSIONS = env_int("CHATBOT_KEEP_VERSIONS", 5)
# The most an artifact may unpack to (bytes); a larger one is refused before anything is written.
CHATBOT_ARTIFACT_MAX_BYTES = env_int("CHATBOT_ARTIFACT_MAX_BYTES", 1024 * 1024 * 1024)
# --- People in the loop (chatbot.console) ---------------------------------------
# An operator whose every console socket has been gone this long loses their conversations back to the queue.
CHATBOT_HANDOFF_GRACE_SECONDS = env_float("CHATBOT_HANDOFF_GRACE_SECONDS", 60.0)
# A person is offered automatically after this many not-sure answers in a row (0: never), and after a
# thumbs-down followed by a not-sure answer (CHATBOT_HANDOFF_AFTER_THUMBS_DOWN).
CHATBOT_HANDOFF_AFTER_UNSURE = env_int("CHATBOT_HANDOFF_AFTER_UNSURE", 3)
CHATBOT_HANDOFF_AFTER_THUMBS_DOWN = env_bool("CHATBOT_HANDOFF_AFTER_THUMBS_DOWN", True)
# A customer waiting longer than this for a person is offered to leave a message instead (0: never).
CHATBOT_HANDOFF_WAIT_LIMIT_SECONDS = env_float("CHATBOT_HANDOFF_WAIT_LIMIT_SECONDS", 300.0)
# Frames per operator connection (burst, then per second).
CHATBOT_CONSOLE_RATE_BURST = env_int("CHATBOT_CONSOLE_RATE_BURST", 30)
CHATBOT_CONSOLE_RATE_PER_SECOND = env_float("CHATBOT_CONSOLE_RATE_PER_SECOND", 5.0)
