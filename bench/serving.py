"""Serving benchmark: the production stack with the real model, side by side with its no-op floor.

    python bench/serving.py                      # levels 1 50 200, then 5000 idle connections
    python bench/serving.py --levels 1 50 200 1000 --idle 5000

Starts one daphne (web) on a benchmark database and Redis db, then for every level runs the same
load twice, alternating: against a Celery worker started with CHATBOT_NOOP_MODEL=1 (answers the
first pair without running the model: the floor of Channels + Celery + Redis + PostgreSQL here)
and against a worker running the real model. Each JSON result goes to bench/results/serving.jsonl;
a Markdown table with the ratios is printed at the end.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import ROOT, production_env, web_command, worker_command  # noqa: E402

RESULTS = ROOT / "bench" / "results"

MESSAGES = {1: 200, 50: 20, 200: 10, 1000: 4}


def bench_env(args: argparse.Namespace) -> dict[str, str]:
    return production_env(
        database_url=args.database_url,
        redis_url=args.redis_url,
        var_dir=os.environ.get("CHATBOT_VAR_DIR", "/tmp/chatbot-bench"),
        secret="bench",
        LOG_LEVEL="WARNING",
    )


def run(cmd: list[str], env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:  # noqa: ANN003
    return subprocess.run(cmd, cwd=ROOT, env=env, check=True, **kwargs)


def prepare(env: dict[str, str], args: argparse.Namespace) -> None:
    name = args.database_url.rsplit("/", 1)[1]
    admin = args.database_url.rsplit("/", 1)[0] + "/postgres"
    exists = subprocess.run(
        ["psql", admin, "-tAc", f"SELECT 1 FROM pg_database WHERE datname='{name}'"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not exists:
        run(["psql", admin, "-qc", f'CREATE DATABASE "{name}"'], env)
    run([sys.executable, "-c", f"import redis; redis.Redis.from_url({args.redis_url!r}).flushdb()"], env)
    run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env)
    run([sys.executable, "manage.py", "load_demo", "-v0"], env)
    loads = (
        "import django;django.setup();from chatbot.registry.engine import engine_get;print(engine_get() is not None)"
    )
    if run([sys.executable, "-c", loads], env, capture_output=True, text=True).stdout.strip() != "True":
        run([sys.executable, "manage.py", "load_demo", "--retrain", "-v0"], env)  # saved by an older format


def start_web(env: dict[str, str], port: int) -> subprocess.Popen:
    web = subprocess.Popen(
        web_command(port), cwd=ROOT, env=env, stdout=open(RESULTS / "web.log", "ab"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while subprocess.run(["curl", "-sf", "-o", "/dev/null", f"http://127.0.0.1:{port}/healthz"]).returncode:
        if time.monotonic() > deadline:
            raise RuntimeError("daphne did not answer /healthz")
        time.sleep(0.5)
    return web


def start_worker(env: dict[str, str], noop: bool, concurrency: int) -> subprocess.Popen:
    return subprocess.Popen(
        worker_command(f"bench{int(noop)}", concurrency=concurrency, loglevel="WARNING"),
        cwd=ROOT,
        env={**env, "CHATBOT_NOOP_MODEL": "1" if noop else "0"},
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


def load(url: str, clients: int, messages: int, pids: str, extra: list[str] | None = None) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "load.py"),
            "--url",
            url,
            "--clients",
            str(clients),
            "--messages",
            str(messages),
            "--pids",
            pids,
            "--json",
            *(extra or []),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(args: argparse.Namespace) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    env = bench_env(args)
    prepare(env, args)
    url = f"ws://127.0.0.1:{args.port}/ws/chat/"
    web = start_web(env, args.port)
    rows: list[dict] = []
    try:
        for level, _round in [(level, r) for level in args.levels for r in range(args.rounds)]:
            for mode in ("floor", "model"):
                worker = start_worker(env, noop=mode == "floor", concurrency=args.workers)
                pids = f"web={web.pid},worker={worker.pid}"
                try:
                    load(url, 1, 1, pids, ["--timeout", "120"])  # the worker is up and the model loaded
                    load(url, 20, 5, pids)  # warm-up: every pool process has loaded the model
                    result = {"mode": mode, **load(url, level, MESSAGES.get(level, 10), pids)}
                finally:
                    stop(worker)
                rows.append(result)
                print(json.dumps(result), flush=True)
        if args.idle:
            result = {
                "mode": "idle",
                **load(url, 0, 0, f"web={web.pid}", ["--idle", str(args.idle), "--hold", str(args.hold)]),
            }
            rows.append(result)
            print(json.dumps(result), flush=True)
    finally:
        stop(web)
    with open(RESULTS / "serving.jsonl", "a") as handle:
        for row in rows:
            handle.write(json.dumps({"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **row}) + "\n")
    print(table(rows))


def table(rows: list[dict]) -> str:
    lines = [
        "| clients | mode | msgs | answers/s | p50 ms | p95 ms | p99 ms | max ms | lost | errors | "
        "web RSS MB | worker RSS MB |",
        "|" + "---|" * 12,
    ]
    by: dict[tuple[str, int], dict] = {}
    for mode, clients in {(row["mode"], row.get("clients")) for row in rows if row["mode"] != "idle"}:
        rounds = [row for row in rows if row["mode"] == mode and row.get("clients") == clients]
        by[(mode, clients)] = {
            key: statistics.median(row[key] for row in rounds) for key in ("answers_per_s", "p50_ms")
        }
    for row in rows:
        if row["mode"] == "idle":
            continue
        lines.append(
            f"| {row['clients']} | {row['mode']} | {row['sent']} | {row['answers_per_s']} | {row['p50_ms']} | "
            f"{row['p95_ms']} | {row['p99_ms']} | {row['max_ms']} | {row['lost']} | "
            f"{sum(row['errors'].values()) + row['connect_errors']} | {row.get('rss_mb_web')} | "
            f"{row.get('rss_mb_worker')} |"
        )
    lines.append("")
    for (mode, clients), row in sorted(by.items(), key=lambda item: item[0][1]):
        floor = by.get(("floor", clients))
        if mode == "model" and floor and floor["answers_per_s"]:
            lines.append(
                f"- {clients} clients (medians of the rounds): model/floor answers/s = "
                f"{row['answers_per_s'] / floor['answers_per_s']:.0%}; p50 model - floor = "
                f"{row['p50_ms'] - floor['p50_ms']:+.2f} ms"
            )
    for row in rows:
        if row["mode"] == "idle":
            lines.append(
                f"- idle: {row['opened']}/{row['idle_connections']} opened, {row['alive_after_hold']} alive "
                f"after {row['held_seconds']} s; web RSS {row['web_rss_mb_before']} -> "
                f"{row['web_rss_mb_after']} MB, {row['kb_per_connection']} KB per connection"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", type=int, nargs="*", default=[1, 50, 200])
    parser.add_argument("--idle", type=int, default=5000, help="idle connections to hold at the end (0: skip)")
    parser.add_argument("--hold", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=1, help="floor/model pairs per level (the summary takes medians)")
    parser.add_argument("--workers", type=int, default=2, help="worker pool processes (cores)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chatbot_bench"),
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2"))
    parser.add_argument("--summarize", nargs="*", type=Path, help="print the table of saved JSON lines and exit")
    arguments = parser.parse_args()
    if arguments.summarize:
        saved = [json.loads(line) for path in arguments.summarize for line in open(path) if line.startswith("{")]
        print(table(saved))
    else:
        main(arguments)
