"""Load a running chat server: N concurrent WebSocket clients, each asking M questions one after another.

    python bench/load.py --url ws://127.0.0.1:8000/ws/chat/ --clients 50 --messages 20
    python bench/load.py --url ws://127.0.0.1:8000/ws/chat/ --idle 5000 --pids web=1234

Questions come from a `text,...` CSV (real customer questions, not one repeated string).
Reports round trip p50/p95/p99/max, answers/s, lost replies, errors and the resident memory of the
server processes named with --pids (each with its children) as one JSON line with --json.
--idle N opens N connections that send nothing, holds them, checks they are all still open, and
reports the web process's memory per connection.
"""

import argparse
import asyncio
import csv
import json
import random
import statistics
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import websockets

DEFAULT_QUESTIONS = Path(__file__).resolve().parent / "data" / "demo_paraphrases.csv"


def load_questions(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [row["text"] for row in csv.DictReader(handle) if row["text"].strip()]


def rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants, in KiB (0 when it is gone)."""
    total = 0
    try:
        with open(f"/proc/{pid}/status") as handle:
            total += next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:"))
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += rss_kb(int(child))
    except (OSError, StopIteration):
        pass
    return total


def parse_pids(value: str) -> dict[str, int]:
    return {name: int(pid) for name, pid in (item.split("=") for item in value.split(",") if item)}


async def client(args: argparse.Namespace, questions: list[str], seed: int, stats: dict) -> None:
    rng = random.Random(seed)
    origin = "http://" + urlparse(args.url).netloc
    try:
        async with websockets.connect(args.url, origin=origin, open_timeout=120, max_queue=None) as ws:
            json.loads(await ws.recv())  # welcome
            for _ in range(args.messages):
                client_id = uuid.uuid4().hex
                started = time.perf_counter()
                await ws.send(json.dumps({"type": "message", "id": client_id, "text": rng.choice(questions)}))
                stats["sent"] += 1
                try:
                    frame = await asyncio.wait_for(_reply(ws, client_id), timeout=args.timeout)
                except TimeoutError:
                    stats["lost"] += 1
                    continue
                if frame["type"] == "answer":
                    stats["rtt"].append((time.perf_counter() - started) * 1000)
                else:
                    stats["errors"][frame.get("code", "?")] = stats["errors"].get(frame.get("code", "?"), 0) + 1
    except (OSError, websockets.WebSocketException) as error:
        stats["connect_errors"].append(type(error).__name__)


async def _reply(ws: websockets.ClientConnection, client_id: str) -> dict:
    while True:
        frame = json.loads(await ws.recv())
        if frame.get("reply_to") == client_id and frame["type"] in ("answer", "error"):
            return frame


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


async def steady(args: argparse.Namespace) -> dict:
    questions = load_questions(args.questions)
    stats: dict = {"sent": 0, "lost": 0, "rtt": [], "errors": {}, "connect_errors": []}
    started = time.perf_counter()
    await asyncio.gather(*(client(args, questions, seed, stats) for seed in range(args.clients)))
    seconds = time.perf_counter() - started
    rtt = stats["rtt"]
    return {
        "clients": args.clients,
        "messages_per_client": args.messages,
        "sent": stats["sent"],
        "answered": len(rtt),
        "lost": stats["lost"],
        "errors": stats["errors"],
        "connect_errors": len(stats["connect_errors"]),
        "seconds": round(seconds, 2),
        "answers_per_s": round(len(rtt) / seconds, 1),
        "p50_ms": percentile(rtt, 0.50),
        "p95_ms": percentile(rtt, 0.95),
        "p99_ms": percentile(rtt, 0.99),
        "max_ms": round(max(rtt), 2) if rtt else None,
        "mean_ms": round(statistics.fmean(rtt), 2) if rtt else None,
        **{f"rss_mb_{name}": round(rss_kb(pid) / 1024, 1) for name, pid in parse_pids(args.pids).items()},
    }


async def idle(args: argparse.Namespace) -> dict:
    """Open --idle connections (a hundred at a time), hold them, count the ones still open."""
    origin = "http://" + urlparse(args.url).netloc
    web = parse_pids(args.pids).get("web")
    before = rss_kb(web) if web else 0
    sockets: list = []
    failures: dict[str, int] = {}

    async def open_one() -> None:
        try:
            ws = await websockets.connect(args.url, origin=origin, open_timeout=120, max_queue=None)
            json.loads(await ws.recv())
            sockets.append(ws)
        except (OSError, websockets.WebSocketException, TimeoutError) as error:
            failures[type(error).__name__] = failures.get(type(error).__name__, 0) + 1

    started = time.perf_counter()
    for start in range(0, args.idle, 100):
        await asyncio.gather(*(open_one() for _ in range(start, min(args.idle, start + 100))))
    opened_s = time.perf_counter() - started
    await asyncio.sleep(args.hold)
    after = rss_kb(web) if web else 0
    alive = 0
    for ws in sockets:  # a ping answered after the hold: the server kept the connection
        try:
            await asyncio.wait_for(await ws.ping(), timeout=30)
            alive += 1
        except (websockets.WebSocketException, TimeoutError, OSError):
            pass
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return {
        "idle_connections": args.idle,
        "opened": len(sockets),
        "open_failures": failures,
        "open_seconds": round(opened_s, 1),
        "held_seconds": args.hold,
        "alive_after_hold": alive,
        "web_rss_mb_before": round(before / 1024, 1),
        "web_rss_mb_after": round(after / 1024, 1),
        "kb_per_connection": round((after - before) / max(1, len(sockets)), 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="ws://127.0.0.1:8000/ws/chat/")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a reply counts as lost")
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    parser.add_argument("--pids", default="", help="server processes to measure, e.g. web=123,worker=456")
    parser.add_argument("--idle", type=int, default=0, help="hold this many idle connections instead")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds to hold the idle connections")
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    result = asyncio.run(idle(arguments) if arguments.idle else steady(arguments))
    print(json.dumps(result) if arguments.json else "\n".join(f"{k:>20}: {v}" for k, v in result.items()))
