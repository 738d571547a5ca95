"""Load a running chat server: N concurrent WebSocket clients, each asking M questions one after another.

    python bench/load.py --url ws://127.0.0.1:8000/ws/chat/ --clients 50 --messages 20

Questions come from a `text,...` CSV (real customer questions, not one repeated string).
Reports round trip p50/p95/p99/max, answers/s, lost replies and errors as one JSON line with --json.
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


async def client(args: argparse.Namespace, questions: list[str], seed: int, stats: dict) -> None:
    rng = random.Random(seed)
    origin = "http://" + urlparse(args.url).netloc
    try:
        async with websockets.connect(args.url, origin=origin, open_timeout=60, max_queue=None) as ws:
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


async def main(args: argparse.Namespace) -> dict:
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
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="ws://127.0.0.1:8000/ws/chat/")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a reply counts as lost")
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    parser.add_argument("--json", action="store_true")
    result = asyncio.run(main(parser.parse_args()))
    print(json.dumps(result) if parser.parse_args().json else "\n".join(f"{k:>20}: {v}" for k, v in result.items()))
