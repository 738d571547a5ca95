"""Hand-off benchmark: operators and customers on the production stack, messages both ways through people.

    python bench/handoff.py                                   # 20 operators, 200 customers, 40 handed off
    python bench/handoff.py --operators 20 --customers 200 --handoffs 40 --exchanges 5

Starts daphne and a Celery worker (the real model) on a benchmark database and Redis db, makes the operator
accounts and their sessions, then in one asyncio process: every operator opens the console and sets
themselves available; every customer connects; the customers who are not handed off chat with the bot
(`--bot-messages` each) while the handed-off ones ask for a person; operators claim from the live queue
(racing each other: a lost race is the `taken` error) and each held conversation exchanges `--exchanges`
messages in each direction. Delivery time is from the sender's send to the receiver's frame, both ends in
this process (one clock). A message not received within `--timeout` seconds is lost. One JSON line is
appended to bench/results/handoff.jsonl and printed.
"""

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import ROOT, production_env, web_command, worker_command  # noqa: E402

RESULTS = ROOT / "bench" / "results"

QUESTIONS = [
    "where is my parcel",
    "how do I return an item",
    "怎么申请退货？",
    "do you ship abroad",
    "支持哪些付款方式",
]
MAKE_OPERATORS = """
import django, json; django.setup()
from django.contrib.auth.models import Group, User
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
group, cookies = Group.objects.get(name="Operators"), []
for i in range({n}):
    user, _ = User.objects.get_or_create(username=f"bench-op-{{i}}", defaults={{"is_staff": True, "first_name": f"Op{{i}}"}})
    user.groups.add(group)
    session = SessionStore()
    session[SESSION_KEY], session[BACKEND_SESSION_KEY] = str(user.pk), "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    cookies.append(session.session_key)
print(json.dumps(cookies))
"""


def bench_env(args: argparse.Namespace) -> dict[str, str]:
    return production_env(
        database_url=args.database_url,
        redis_url=args.redis_url,
        var_dir=os.environ.get("CHATBOT_VAR_DIR", "/tmp/chatbot-bench"),
        secret="bench",
        LOG_LEVEL="WARNING",
        CHATBOT_CONSOLE_RATE_BURST="100000",
        CHATBOT_CONSOLE_RATE_PER_SECOND="100000",
    )


def run(cmd: list[str], env: dict[str, str], **kwargs: object) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=env, check=True, **kwargs)  # type: ignore[call-overload]


def prepare(env: dict[str, str], args: argparse.Namespace) -> None:
    """The benchmark database (made once, migrated, demo data with a trained model) and an empty Redis db."""
    name = args.database_url.rsplit("/", 1)[1]
    admin = args.database_url.rsplit("/", 1)[0] + "/postgres"
    query = f"SELECT 1 FROM pg_database WHERE datname='{name}'"
    if not run(["psql", admin, "-tAc", query], env, capture_output=True, text=True).stdout.strip():
        run(["psql", admin, "-qc", f'CREATE DATABASE "{name}"'], env)
    run([sys.executable, "-c", f"import redis; redis.Redis.from_url({args.redis_url!r}).flushdb()"], env)
    run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env)
    run([sys.executable, "manage.py", "load_demo", "-v0"], env)


def start_web(env: dict[str, str], port: int) -> subprocess.Popen:
    web = subprocess.Popen(
        web_command(port), cwd=ROOT, env=env, stdout=open(RESULTS / "web.log", "ab"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return web
        except urllib.error.HTTPError:  # 503 before a worker reports: daphne is up
            return web
        except OSError:
            if time.monotonic() > deadline:
                stop(web)
                raise RuntimeError("daphne did not answer /healthz") from None
            time.sleep(0.5)


def start_worker(env: dict[str, str], concurrency: int) -> subprocess.Popen:
    return subprocess.Popen(
        worker_command("bench-handoff", concurrency=concurrency, loglevel="WARNING"),
        cwd=ROOT,
        env=env,
        stdout=open(RESULTS / "worker.log", "ab"),
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sent: dict[str, float] = {}  # marker -> send time
        self.c2o: list[float] = []  # customer -> operator delivery, seconds
        self.o2c: list[float] = []
        self.bot: list[float] = []
        self.claims = {"won": 0, "taken": 0}
        self.c2o_sent = 0
        self.done = asyncio.Event()

    def received(self, marker: str, into: list[float]) -> None:
        started = self.sent.pop(marker, None)
        if started is not None:
            into.append(time.perf_counter() - started)


async def operator(run: Run, cookie: str, index: int) -> None:
    args = run.args
    headers = {"Cookie": f"sessionid={cookie}"}
    async with websockets.connect(
        args.console_url, origin=args.origin, additional_headers=headers, max_size=2**22
    ) as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello", hello
        await ws.send(json.dumps({"type": "status", "status": "available"}))
        mine: set[int] = set()
        while not run.done.is_set():
            try:
                frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=1))
            except TimeoutError:
                continue
            kind = frame["type"]
            if kind == "queue" and len(mine) < args.per_operator:
                waiting = frame["conversations"]
                if waiting:  # operators spread over the queue; two on the same one race, and one gets `taken`
                    item = waiting[index % len(waiting)]
                    await ws.send(json.dumps({"type": "claim", "conversation": item["conversation"]}))
            elif kind == "claimed":
                run.claims["won"] += 1
            elif kind == "error" and frame["code"] == "taken":
                run.claims["taken"] += 1
            elif kind == "conversation" and frame.get("owner") == "operator":
                mine.add(frame["conversation"])
            elif kind == "customer_message":
                text = frame["message"]["text"]
                run.received(text, run.c2o)
                marker = f"o2c-{uuid.uuid4().hex}"
                run.sent[marker] = time.perf_counter()
                await ws.send(json.dumps({"type": "reply", "conversation": frame["conversation"], "text": marker}))


async def handed_off_customer(run: Run) -> int:
    """Ask for a person, wait to be joined, then send `exchanges` messages; each is answered by the operator."""
    args = run.args
    async with websockets.connect(args.chat_url, origin=args.origin, open_timeout=args.timeout) as ws:
        json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "handoff_request"}))
        deadline = time.monotonic() + args.timeout
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=max(0.1, deadline - time.monotonic())))
            if frame["type"] == "handoff" and frame["status"] == "joined":
                break
        answered = 0
        for _ in range(args.exchanges):
            marker = f"c2o-{uuid.uuid4().hex}"
            run.sent[marker] = time.perf_counter()
            run.c2o_sent += 1
            await ws.send(json.dumps({"type": "message", "id": marker, "text": marker}))
            reply_deadline = time.monotonic() + args.timeout
            while time.monotonic() < reply_deadline:
                try:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=reply_deadline - time.monotonic()))
                except TimeoutError:
                    break
                if frame["type"] == "agent_message":
                    run.received(frame["text"], run.o2c)
                    answered += 1
                    break
        return answered


async def bot_customer(run: Run, seed: int) -> int:
    args = run.args
    async with websockets.connect(args.chat_url, origin=args.origin, open_timeout=args.timeout) as ws:
        json.loads(await ws.recv())
        answered = 0
        for index in range(args.bot_messages):
            client_id = uuid.uuid4().hex
            started = time.perf_counter()
            text = QUESTIONS[(seed + index) % len(QUESTIONS)]
            await ws.send(json.dumps({"type": "message", "id": client_id, "text": text}))
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=args.timeout))
                if frame.get("reply_to") == client_id and frame["type"] == "answer":
                    run.bot.append(time.perf_counter() - started)
                    answered += 1
                    break
        return answered


async def staggered(delay: float, coroutine: object) -> object:
    await asyncio.sleep(delay)
    return await coroutine


async def scenario(args: argparse.Namespace, cookies: list[str]) -> dict:
    run = Run(args)
    operators = [asyncio.ensure_future(operator(run, cookie, index)) for index, cookie in enumerate(cookies)]
    await asyncio.sleep(2)  # every console open and available before the first request
    started = time.perf_counter()
    # Customers arrive over --ramp seconds (a burst of hundreds of handshakes at once measures the handshake).
    customers = [staggered(i * args.ramp / args.customers, handed_off_customer(run)) for i in range(args.handoffs)]
    customers += [
        staggered((args.handoffs + seed) * args.ramp / args.customers, bot_customer(run, seed))
        for seed in range(args.customers - args.handoffs)
    ]
    results = await asyncio.gather(*customers, return_exceptions=True)
    elapsed = time.perf_counter() - started
    run.done.set()
    await asyncio.gather(*operators, return_exceptions=True)
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    handed = [r for r in results[: args.handoffs] if isinstance(r, int)]
    expected = run.c2o_sent
    return {
        "operators": args.operators,
        "customers": args.customers,
        "handoffs": args.handoffs,
        "exchanges": args.exchanges,
        "c2o_sent": expected,
        "c2o_received": len(run.c2o),
        "o2c_received": len(run.o2c),
        "lost_c2o": expected - len(run.c2o),
        "lost_o2c": len(run.c2o) - len(run.o2c),
        "answered_by_person": sum(handed),
        "c2o_p50_ms": percentile(run.c2o, 0.5),
        "c2o_p99_ms": percentile(run.c2o, 0.99),
        "o2c_p50_ms": percentile(run.o2c, 0.5),
        "o2c_p99_ms": percentile(run.o2c, 0.99),
        "bot_answers": len(run.bot),
        "bot_p50_ms": percentile(run.bot, 0.5),
        "bot_p99_ms": percentile(run.bot, 0.99),
        "claims": run.claims,
        "client_errors": len(errors),
        "client_error_kinds": sorted(set(errors))[:3],
        "elapsed_s": round(elapsed, 1),
    }


def main(args: argparse.Namespace) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    env = bench_env(args)
    prepare(env, args)
    code = MAKE_OPERATORS.format(n=args.operators)
    cookies = json.loads(run([sys.executable, "-c", code], env, capture_output=True, text=True).stdout)
    args.chat_url = f"ws://127.0.0.1:{args.port}/ws/chat/"
    args.console_url = f"ws://127.0.0.1:{args.port}/ws/console/"
    args.origin = f"http://127.0.0.1:{args.port}"
    web = start_web(env, args.port)
    worker = start_worker(env, concurrency=args.workers)
    try:
        time.sleep(5)  # the worker loads the model
        result = asyncio.run(scenario(args, cookies))
    finally:
        stop(web)
        stop(worker)
    result.update(date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), load=os.getloadavg()[0], cpus=os.cpu_count())
    with open(RESULTS / "handoff.jsonl", "a") as out:
        out.write(json.dumps(result) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--operators", type=int, default=20)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--handoffs", type=int, default=40)
    parser.add_argument("--exchanges", type=int, default=5, help="messages each way per handed-off customer")
    parser.add_argument("--bot-messages", type=int, default=3, help="messages per customer who stays with the bot")
    parser.add_argument("--per-operator", type=int, default=3, help="conversations an operator claims at most")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--ramp", type=float, default=20.0, help="seconds over which the customers connect")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8775)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_HANDOFF_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chatbot_bench_handoff"
        ),
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_HANDOFF_REDIS_URL", "redis://127.0.0.1:6379/7"))
    main(parser.parse_args())
