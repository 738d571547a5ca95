"""The mode is decided once and fails closed: what starts embedded, what refuses to start, and why."""

import os
import shlex
import subprocess
import sys

import pytest

from tests.conftest import ROOT

STRONG_KEY = "k9-Jq2vP7x-rT4mZ8wL1nB6cY3hF0sD5gA2eU9iO7pK4jH1lM8qW3zX6vC0bN5tR"
CLEARED = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS", "DEBUG", "CHATBOT_MODE", "LOG_FORMAT")


def django_setup(tmp_path, **env: str) -> subprocess.CompletedProcess:  # noqa: ANN001
    """`django.setup()` in a new interpreter with only these variables set (plus PATH and a var dir of its own)."""
    clean = {key: value for key, value in os.environ.items() if key not in CLEARED and not key.startswith("CHATBOT_")}
    clean.update(DJANGO_SETTINGS_MODULE="chatbot.settings", CHATBOT_VAR_DIR=str(tmp_path), **env)
    code = "import django; django.setup(); from django.conf import settings; print(settings.MODE, settings.DEBUG)"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True)


def procfile_env(process: str) -> dict[str, str]:
    """The variables a Procfile line sets in front of its command."""
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith(f"{process}:"))
    words = shlex.split(line.split(":", 1)[1])
    return dict(word.split("=", 1) for word in words[: next(i for i, w in enumerate(words) if "=" not in w)])


def test_make_run_starts_embedded_with_no_variables(tmp_path):
    done = django_setup(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["embedded", "True"]


def test_local_hosts_alone_still_start_embedded(tmp_path):
    done = django_setup(tmp_path, ALLOWED_HOSTS="localhost,127.0.0.1,[::1]")
    assert done.returncode == 0 and done.stdout.split() == ["embedded", "True"], done.stderr


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"ALLOWED_HOSTS": "support.example.com"}, "ALLOWED_HOSTS=support.example.com"),
        ({"REDIS_URL": "redis://10.0.0.5:6379/0"}, "REDIS_URL"),
        ({"ALLOWED_HOSTS": "localhost,support.example.com", "REDIS_URL": "redis://r:6379/0"}, "REDIS_URL"),
    ],
)
def test_a_deployment_that_forgot_database_url_refuses_to_start(tmp_path, env, named):
    done = django_setup(tmp_path, **env)
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and "DATABASE_URL is not set" in done.stderr and named in done.stderr


@pytest.mark.parametrize("process", ["web", "worker", "trainer", "beat"])
def test_the_procfiles_processes_refuse_to_start_without_database_url(tmp_path, process):
    env = procfile_env(process)
    assert env == {"CHATBOT_MODE": "production"}
    done = django_setup(tmp_path, **env, SECRET_KEY=STRONG_KEY)
    assert done.returncode != 0 and "CHATBOT_MODE=production needs DATABASE_URL" in done.stderr


def test_embedded_on_purpose_may_listen_on_a_public_name(tmp_path):
    done = django_setup(tmp_path, CHATBOT_MODE="embedded", ALLOWED_HOSTS="demo.example.com")
    assert done.returncode == 0 and done.stdout.split() == ["embedded", "True"], done.stderr


def test_embedded_on_purpose_refuses_production_services(tmp_path):
    done = django_setup(tmp_path, CHATBOT_MODE="embedded", REDIS_URL="redis://127.0.0.1:6379/0")
    assert done.returncode != 0 and "CHATBOT_MODE=embedded runs without" in done.stderr


@pytest.mark.parametrize(
    ("key", "accepted"),
    [
        (STRONG_KEY, True),
        (STRONG_KEY[:49], False),  # too short
        ("abcd" * 20, False),  # long, but four distinct characters
        ("embedded-only-not-for-production", False),
    ],
)
def test_production_refuses_a_weak_secret_key(tmp_path, key, accepted):
    done = django_setup(
        tmp_path,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/unused",
        ALLOWED_HOSTS="s.example.com",
        SECRET_KEY=key,
    )
    assert (done.returncode == 0) is accepted, done.stderr
    if accepted:
        assert done.stdout.split() == ["production", "False"]
    else:
        assert "SECRET_KEY" in done.stderr


def test_an_unknown_mode_is_refused(tmp_path):
    done = django_setup(tmp_path, CHATBOT_MODE="prod")
    assert done.returncode != 0 and "CHATBOT_MODE must be" in done.stderr
