"""The never-rules of docs/architecture.md, each checked in a fresh interpreter."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "chatbot.settings",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "SECRET_KEY": "layers-test-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ",
    "ALLOWED_HOSTS": "support.example.com",
}


def modules_after(code: str, env: dict[str, str]) -> set[str]:
    """The names in sys.modules after running `code` in a new interpreter (nothing inherited but PATH)."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    clean = {"PATH": os.environ.get("PATH", ""), **env}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_web_process_never_imports_torch():
    # when: the web process loads its application (settings, every app, the admin, the URL routes)
    loaded = modules_after(
        "from chatbot.asgi import application\nfrom django.urls import get_resolver\nget_resolver().url_patterns",
        PRODUCTION,
    )
    # then: neither PyTorch nor the model code is loaded
    assert "torch" not in loaded
    assert not {name for name in loaded if name.startswith("training.")} - {
        "training.text",
        "training.config",
        "training.data",
    }


def test_training_never_imports_django():
    modules = sorted(
        f"training.{path.stem}"
        for path in (ROOT / "training").glob("*.py")
        if path.stem not in {"__init__", "__main__"}
    )
    loaded = modules_after("\n".join(f"import {name}" for name in modules), {})
    assert "django" not in loaded
    assert not {name for name in loaded if name.startswith("chatbot")}
