"""Answers during hot swaps of the model in service, under a steady load of concurrent WebSocket clients.

    python bench/learning/hotswap.py [--clients 50] [--messages 20] [--every 1.0]

Starts the production stack (daphne + a Celery worker with 2 pool processes, PostgreSQL, Redis) on its own
database, trains two versions, then runs bench/load.py twice: once without swaps (baseline), once while
another process switches the active version back and forth every `--every` seconds. Prints both results
and how many answers each version gave during the swapping run. Lost or failed replies must be 0.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BENCH))

from serving import ROOT, bench_env, load, prepare, start_web, start_worker, stop  # noqa: E402

TOGGLE = """
import sys, time, django
django.setup()
from chatbot.registry.models import ModelVersion
from chatbot.registry.services import model_version_activate
versions = list(ModelVersion.objects.order_by("pk")[:2])
swaps, stop_file, every = 0, sys.argv[1], float(sys.argv[2])
import os
while not os.path.exists(stop_file):
    time.sleep(every)
    model_version_activate(versions[(swaps + 1) % 2])
    swaps += 1
print(swaps)
"""


def versions_used(env: dict[str, str], since: float) -> dict:
    code = (
        "import django,datetime;django.setup();from django.db.models import Count;"
        "from chatbot.conversations.models import Message as M;"
        f"t=datetime.datetime.fromtimestamp({since},datetime.timezone.utc);"
        "print(dict(M.objects.filter(sender='bot',created_at__gte=t).values_list('model_version')"
        ".annotate(n=Count('id')).order_by()))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return {f"v{key}": value for key, value in eval(out.stdout.strip()).items()}  # noqa: S307 - our own output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--every", type=float, default=1.0)
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--encoder", default="ngram", help="CHATBOT_ENCODER of the two versions swapped")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/chatbot_hotswap_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/3")
    args = parser.parse_args()
    env = {**bench_env(args), "CHATBOT_VAR_DIR": "/tmp/chatbot-hotswap-bench", "CHATBOT_ENCODER": args.encoder}
    name = args.database_url.rsplit("/", 1)[1]  # a fresh database: exactly two versions to swap
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE IF EXISTS {name}"], check=False)
    prepare(env, args)
    subprocess.run([sys.executable, "manage.py", "retrain", "--inline"], cwd=ROOT, env=env, check=False)
    web = start_web(env, args.port)
    worker = start_worker(env, noop=False, concurrency=2)
    url, pids = f"ws://127.0.0.1:{args.port}/ws/chat/", f"web={web.pid},worker={worker.pid}"
    try:
        load(url, 1, 1, pids, ["--timeout", "120"])
        load(url, 20, 5, pids)
        baseline = load(url, args.clients, args.messages, pids)
        stop_file = Path("/tmp/hotswap.stop")
        stop_file.unlink(missing_ok=True)
        toggler = subprocess.Popen(
            [sys.executable, "-c", TOGGLE, str(stop_file), str(args.every)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        started = time.time()
        swapping = load(url, args.clients, args.messages, pids)
        stop_file.touch()
        swaps = int(toggler.communicate(timeout=60)[0].strip() or 0)
        result = {
            "baseline": baseline,
            "swapping": {**swapping, "swaps": swaps, "answers_by_version": versions_used(env, started)},
        }
        print(json.dumps(result, indent=1))
    finally:
        stop(worker)
        stop(web)


if __name__ == "__main__":
    main()
