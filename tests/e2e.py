"""Helpers for talking to the running stack over a real WebSocket."""

import json
import shutil
import time
import uuid
from typing import Any

from websockets.sync.client import ClientConnection, connect

# Debian's Chromium for the browser tests, with the flags it needs on a machine without a network or a screen
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# A customer writing in a language and script the demo knowledge base never uses: no n-gram the model knows,
# so "not sure" at any calibrated operating point (Latin gibberish scored 0.09 with one training, 0.48 with another).
UNANSWERABLE = "Здравствуйте где ближайший банкомат"


def ws_open(stack: Any, token: str | None = None) -> tuple[ClientConnection, dict]:
    url = stack.ws_url + (f"?conversation={token}" if token else "")
    ws = connect(url, origin=stack.origin, open_timeout=10)
    welcome = json.loads(ws.recv(timeout=10))
    assert welcome["type"] == "welcome"
    return ws, welcome


def ws_ask(ws: ClientConnection, text: str, **extra: Any) -> dict:
    """Send a message and wait for its answer (errors are returned too)."""
    client_id = uuid.uuid4().hex
    ws.send(json.dumps({"type": "message", "id": client_id, "text": text, **extra}))
    return ws_wait(ws, client_id)


def ws_wait(ws: ClientConnection, client_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if frame.get("reply_to") == client_id and frame["type"] in ("answer", "error"):
            return frame
