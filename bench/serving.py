"""Serving benchmark: the product beside the bare floor rig (../shared/floor-rig), in one run, alternating.

    python bench/serving.py                                   # 1x100, 50x10, 200x10; 3 rounds
    python bench/serving.py --loads 1x100,50x10,200x10,1000x4 --rounds 3
    python bench/serving.py --modes product --webs 2 --workers 2 --loads 200x10   # scale-out, no floor
    python bench/serving.py --summarize bench/results/serving.jsonl
    git worktree add /tmp/before <commit> && python bench/serving.py --modes floor,baseline,product --baseline /tmp/before

`--baseline DIR` with the mode `baseline`: the product as checked out in DIR (another commit, same database
schema), started the same way with this checkout's virtualenv, alternated with the others in the same run.

The floor is the rig's own stack (daphne -> Celery over Redis -> both messages written to PostgreSQL ->
channel layer -> client, no model), started with the rig's functions and its tuned settings. The product
runs in production mode (daphne + Celery worker(s) as in the Procfile, PostgreSQL, Redis) on the demo
knowledge base. Both are loaded by the rig's `wsload.py` with the same arguments (questions drawn from
bench/data/demo_paraphrases.csv), on the same port, one after the other: each round runs every load on
one, then on the other, and the next round starts with the other one. CPU seconds of every process
(web, worker, Redis, PostgreSQL: utime+stime from /proc, as the rig does) are taken around each load.
One JSON line per measurement goes to bench/results/serving.jsonl; the table prints medians over rounds
and the product/floor ratios. The machine is shared: the 1-minute load average is recorded per line.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import DAPHNE_OPTIONS, ROOT, production_env, worker_command  # noqa: E402

RIG = ROOT.parent / "shared" / "floor-rig"
os.environ.setdefault("FLOOR_VENV", str(ROOT / ".venv"))
sys.path.insert(0, str(RIG))
import bench as rig  # noqa: E402  the rig's orchestrator: process control and /proc readings

RESULTS = ROOT / "bench" / "results"
QUESTIONS = ROOT / "bench" / "data" / "demo_paraphrases.csv"
FLOOR_ENV = {"CL_CAPACITY": "2000", "RIG_SENDER": "loop", "CONN_MAX_AGE": "600", "CELERY_DB_REUSE_MAX": "1000"}
BASE_PORT = rig.PORT


class Group:
    """Several started processes measured as one (two web processes, two workers)."""

    def __init__(self, members: list[rig.Started]) -> None:
        self.members = members

    def pids(self) -> list[int]:
        return [pid for member in self.members for pid in member.pids()]

    def stop(self) -> None:
        for member in self.members:
            member.stop()


def redis_pids() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "redis-server":
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def cpu_snapshot(groups: dict[str, Group]) -> dict[str, float]:
    snapshot = {name: sum(rig.proc_cpu(pid) for pid in group.pids()) for name, group in groups.items()}
    snapshot["redis"] = sum(rig.proc_cpu(pid) for pid in redis_pids())
    snapshot["postgres"] = rig.pg_cpu()
    return snapshot


def wsload(port: int, conns: int, msgs: int, extra: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [
            f"{rig.VENV}/python",
            str(RIG / "wsload.py"),
            "--url",
            f"ws://127.0.0.1:{port}/ws/chat/",
            "--conns",
            str(conns),
            "--msgs",
            str(msgs),
            "--texts-file",
            str(QUESTIONS),
            "--json",
            "--timeout",  # a reply slower than this counts as lost: the machine is shared and can be slow
            "60",
            "--max-time",
            "900",
            *extra,
        ],  # fmt: skip
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def measure(groups: dict[str, Group], ports: list[int], conns: int, msgs: int, extra: list[str] = ()) -> dict:
    """One load, split evenly over the web processes' ports, with the CPU each process spent meanwhile."""
    load_average = os.getloadavg()[0]
    before = cpu_snapshot(groups)
    started = time.perf_counter()
    shares = [conns // len(ports) + (i < conns % len(ports)) for i in range(len(ports))]
    clients = [wsload(port, share, msgs, list(extra)) for port, share in zip(ports, shares, strict=True) if share]
    outputs = [json.loads(client.communicate(timeout=900)[0].strip().splitlines()[-1]) for client in clients]
    seconds = time.perf_counter() - started
    after = cpu_snapshot(groups)
    answered = sum(out.get("answered") or 0 for out in outputs)
    cpu = {name: round(after[name] - before[name], 3) for name in after}
    return {
        "conns": conns,
        "msgs_per_conn": msgs,
        "answered": answered,
        "lost": sum(out.get("lost") or 0 for out in outputs),
        "connect_failed": sum(out.get("connect_failed") or 0 for out in outputs),
        "msgs_per_s": round(sum(out.get("msgs_per_s") or 0 for out in outputs), 1),
        # Per web process's clients; with one web process these are the run's own percentiles.
        **{key: statistics.median(out[key] for out in outputs) for key in ("p50_ms", "p95_ms", "p99_ms")},
        "cpu_s": cpu,
        "cpu_ms_per_msg": {name: round(1000 * value / max(1, answered), 2) for name, value in cpu.items()},
        "seconds": round(seconds, 2),
        "load_average_1m": round(load_average, 2),
        "errors": [out.get("errors") for out in outputs if out.get("errors")],
    }


def floor_start() -> tuple[dict[str, Group], list[int]]:
    rig.reset_state("celery_db")
    env = rig.base_env({**FLOOR_ENV, "RIG_MODE": "celery_db"})
    server = rig.start_server("daphne", env, "floor")
    try:
        worker = rig.start_worker("threads", 2, env, "floor")
    except BaseException:
        server.stop()
        raise
    return {"web": Group([server]), "worker": Group([worker])}, [BASE_PORT]


def product_env(args: argparse.Namespace) -> dict[str, str]:
    return production_env(
        database_url=args.database_url,
        redis_url=args.redis_url,
        var_dir=os.environ.get("CHATBOT_VAR_DIR", "/tmp/chatbot-bench"),
        secret="bench",
        LOG_LEVEL=args.loglevel,
        CHATBOT_ENCODER=args.encoder,
        **dict(item.split("=", 1) for item in args.env),
    )


def product_prepare(args: argparse.Namespace) -> None:
    env, name = product_env(args), args.database_url.rsplit("/", 1)[1]
    admin = args.database_url.rsplit("/", 1)[0] + "/postgres"
    query = f"SELECT 1 FROM pg_database WHERE datname='{name}'"
    if not subprocess.run(["psql", admin, "-tAc", query], capture_output=True, text=True, check=True).stdout.strip():
        subprocess.run(["psql", admin, "-qc", f'CREATE DATABASE "{name}"'], check=True)
    for command in (["migrate", "--noinput", "-v0"], ["load_demo", "-v0"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=args.root, env=env, check=True)


def product_start(args: argparse.Namespace) -> tuple[dict[str, Group], list[int]]:
    env = product_env(args)
    subprocess.run(
        [sys.executable, "-c", f"import redis; redis.Redis.from_url({args.redis_url!r}).flushdb()"], check=True
    )
    ports = [BASE_PORT + i for i in range(args.webs)]
    webs = Group(
        [
            rig.Started(
                f"product-web-{port}",
                [
                    sys.executable,
                    "-m",
                    "daphne",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    *DAPHNE_OPTIONS,
                    "chatbot.asgi:application",
                ],
                env,
                cwd=str(args.root),
            )  # fmt: skip
            for port in ports
        ]
    )
    workers = Group(
        [
            rig.Started(
                f"product-worker-{i}",
                worker_command(
                    f"bench{i}",
                    concurrency=args.concurrency,
                    loglevel=args.loglevel,
                    pool=args.pool,
                    queues="inference",
                ),
                env,
                cwd=str(args.root),
            )  # fmt: skip
            for i in range(args.workers)
        ]
    )
    groups = {"web": webs, "worker": workers}
    try:
        for port in ports:
            _wait_http(f"http://127.0.0.1:{port}/healthz")
            ready = wsload(port, 1, 1, ["--timeout", "180"]).communicate(timeout=300)[0]  # model loaded, worker up
            if '"lost": 0' not in ready:
                raise RuntimeError(f"product did not answer on port {port}: {ready[-500:]}")
    except BaseException:
        webs.stop()
        workers.stop()
        raise
    return groups, ports


def _wait_http(url: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:  # 503 before the workers report: it is up
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer")


def run_side(mode: str, args: argparse.Namespace, loads: list[tuple[int, int]], round_: int) -> list[dict]:
    """One side of a round. `product:threads` (or `:prefork`, `:solo`) is the product with that worker pool."""
    if mode.startswith("product:"):
        args = argparse.Namespace(**{**vars(args), "pool": mode.split(":", 1)[1]})
    if mode == "baseline":
        args = _baseline(args)
    groups, ports = floor_start() if mode == "floor" else product_start(args)
    rows = []
    try:
        measure(groups, ports, 5, 20, ["--timeout", "20"])  # warm-up, as the rig does
        for conns, msgs in loads:
            row = {"mode": mode, "round": round_, **measure(groups, ports, conns, msgs)}
            if mode != "floor":
                row["config"] = _product_config(args)
            rows.append(row)
            print(json.dumps(row), flush=True)
            time.sleep(1)
    finally:
        for group in groups.values():
            group.stop()
    return rows


def idle_probe(args: argparse.Namespace) -> dict:
    """Idle connections held by one product web process (bench/load.py --idle): how many, and memory per one."""
    groups, ports = product_start(args)
    try:
        command = [sys.executable, str(ROOT / "bench" / "load.py"), "--url", f"ws://127.0.0.1:{ports[0]}/ws/chat/"]
        command += ["--idle", str(args.idle), "--hold", str(args.hold), "--pids", f"web={groups['web'].members[0].pid}"]
        out = subprocess.run([*command, "--json"], capture_output=True, text=True, check=True, timeout=1800).stdout
    finally:
        for group in groups.values():
            group.stop()
    row = {"mode": "idle", **json.loads(out.strip().splitlines()[-1])}
    print(json.dumps(row), flush=True)
    return row


def _baseline(args: argparse.Namespace) -> argparse.Namespace:
    """The baseline's side: its own checkout and its own database, migrated by its own code (a schema change of
    the product under test, an index dropped or added, must not be measured on the baseline's side too)."""
    url = args.baseline_database_url or f"{args.database_url}_baseline"
    return argparse.Namespace(**{**vars(args), "root": args.baseline, "database_url": url})


def _product_config(args: argparse.Namespace) -> dict:
    keys = ("webs", "workers", "pool", "concurrency", "encoder", "env", "loglevel")
    return {key: getattr(args, key) for key in keys} | {"root": str(args.root)}


def main(args: argparse.Namespace) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the processes this run started (finally blocks)
    RESULTS.mkdir(parents=True, exist_ok=True)
    loads = [tuple(int(x) for x in item.split("x")) for item in args.loads.split(",")]
    modes = args.modes.split(",")
    if any(mode.startswith("product") for mode in modes):
        product_prepare(args)
    if "baseline" in modes:
        product_prepare(_baseline(args))
    rows, stamp = [], time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for round_ in range(args.rounds):
        order = modes if round_ % 2 == 0 else list(reversed(modes))
        for mode in order:
            rows += run_side(mode, args, loads, round_)
    if args.idle:
        rows.append(idle_probe(args))
    with open(RESULTS / "serving.jsonl", "a") as handle:
        for row in rows:
            handle.write(json.dumps({"date": stamp, "command": " ".join(sys.argv), **row}) + "\n")
    print(table(rows))


def _medians(rows: list[dict]) -> dict[tuple[str, int], dict]:
    by: dict[tuple[str, int], dict] = {}
    rows = [row for row in rows if row["mode"] != "idle"]
    for key in {(row["mode"], row["conns"]) for row in rows}:
        rounds = [row for row in rows if (row["mode"], row["conns"]) == key]
        names = sorted({name for row in rounds for name in row["cpu_ms_per_msg"]})
        by[key] = {
            "n": len(rounds),
            "msgs": rounds[0]["msgs_per_conn"],
            "lost": sum(row["lost"] + row["connect_failed"] for row in rounds),
            **{k: statistics.median(row[k] for row in rounds) for k in ("msgs_per_s", "p50_ms", "p95_ms", "p99_ms")},
            "cpu": {name: statistics.median(row["cpu_ms_per_msg"].get(name, 0) for row in rounds) for name in names},
            "load": statistics.median(row["load_average_1m"] for row in rounds),
        }
    return by


def table(rows: list[dict]) -> str:
    by = _medians(rows)
    lines = [
        "| clients x msgs | mode | rounds | answers/s | p50 ms | p95 ms | p99 ms | lost | "
        "CPU ms/msg web / worker / Redis / PostgreSQL | load 1m |",
        "|" + "---|" * 10,
    ]
    for (mode, conns), m in sorted(by.items(), key=lambda item: (item[0][1], item[0][0])):
        cpu = " / ".join(f"{m['cpu'].get(name, 0):.2f}" for name in ("web", "worker", "redis", "postgres"))
        lines.append(
            f"| {conns}x{m['msgs']} | {mode} | {m['n']} | {m['msgs_per_s']:.1f} | {m['p50_ms']:.2f} | "
            f"{m['p95_ms']:.2f} | {m['p99_ms']:.2f} | {m['lost']} | {cpu} | {m['load']:.2f} |"
        )
    lines.append("")
    for (mode, conns), m in sorted(by.items(), key=lambda item: item[0][1]):
        floor = by.get(("floor", conns))
        if mode != "floor" and floor and floor["msgs_per_s"]:
            lines.append(
                f"- {conns} clients, medians: {mode}/floor answers/s = {m['msgs_per_s'] / floor['msgs_per_s']:.0%}; "
                f"p50 {mode} - floor = {m['p50_ms'] - floor['p50_ms']:+.2f} ms"
            )
        baseline = by.get(("baseline", conns))
        if mode.startswith("product") and baseline and baseline["msgs_per_s"]:
            lines.append(
                f"- {conns} clients, medians: {mode}/baseline answers/s = "
                f"{m['msgs_per_s'] / baseline['msgs_per_s']:.0%}; CPU ms/msg web {baseline['cpu']['web']:.2f} -> "
                f"{m['cpu']['web']:.2f}, worker {baseline['cpu']['worker']:.2f} -> {m['cpu']['worker']:.2f}"
            )
    for row in rows:
        if row["mode"] == "idle":
            lines.append(
                f"- idle: {row['opened']}/{row['idle_connections']} opened, {row['alive_after_hold']} alive after "
                f"{row['held_seconds']} s; web RSS {row['web_rss_mb_before']} -> {row['web_rss_mb_after']} MB, "
                f"{row['kb_per_connection']} KB per connection"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loads", default="1x100,50x10,200x10", help="clients x messages, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=int, default=0, help="then hold this many idle connections on the product")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds to hold them")
    parser.add_argument("--modes", default="floor,product", help="e.g. floor,product:prefork,product:threads")
    parser.add_argument("--webs", type=int, default=1, help="product web processes (ports 8000, 8001, ...)")
    parser.add_argument("--workers", type=int, default=1, help="product worker processes")
    parser.add_argument("--pool", default="threads", choices=["prefork", "threads", "solo"], help="as in the Procfile")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="pool size of each product worker (the Procfile's WORKER_CONCURRENCY default)",
    )
    parser.add_argument("--encoder", default="ngram")
    parser.add_argument("--loglevel", default="INFO", help="the product's log level (the Procfile's: INFO)")
    parser.add_argument("--env", action="append", default=[], help="K=V for the product's processes")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chatbot_bench"),
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8"))
    parser.add_argument("--baseline", type=Path, help="a checkout of another commit, run as the mode `baseline`")
    parser.add_argument(
        "--baseline-database-url", help="the baseline's own database (default: --database-url with _baseline appended)"
    )
    parser.add_argument("--summarize", nargs="*", type=Path, help="print the table of saved JSON lines and exit")
    arguments = parser.parse_args()
    arguments.root = ROOT
    if arguments.summarize:
        print(table([json.loads(line) for path in arguments.summarize for line in open(path) if line.startswith("{")]))
    else:
        main(arguments)
