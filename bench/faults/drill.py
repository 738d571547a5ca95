"""Fault drills: break one part of the production stack under a steady load and count what was lost.

    python bench/faults/drill.py worker-kill        # kill -9 of a whole inference worker (main + pool)
    python bench/faults/drill.py redis-restart      # Redis stopped (its data lost) and started again
    python bench/faults/drill.py postgres-restart   # PostgreSQL stopped and started again
    python bench/faults/drill.py web-restart        # the daphne process killed and started again
    python bench/faults/drill.py artifact           # a corrupted, then a missing model artifact activated
    python bench/faults/drill.py all

Everything runs on private services so that nothing else on the machine is disturbed: a Redis on
port 6390 and a PostgreSQL cluster under /tmp on port 5440 (created with initdb on first use and
kept for the next drill; --fresh starts over). Two workers (one pool process each) and one daphne.

The clients behave like the chat page: each sends a question every --interval seconds, reconnects
with its conversation token when the connection drops (backing off), re-sends every message still
waiting for an answer after a reconnect, and re-sends (same id) a message refused with an error.
After the load, every client waits up to --drain seconds for its last answers. Reported: messages
sent (distinct ids), answered, explicitly refused at the end, lost (accepted, never answered), answers
stored twice, errors by code, reconnects; plus a check of the database (one customer message and one
answer per id). Exit status 1 when anything was lost.
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
from load import load_questions  # noqa: E402
from stack import production_env, web_command, worker_command  # noqa: E402

WORK = Path(os.environ.get("DRILL_DIR", "/tmp/chatbot-drill"))
PG_BIN = Path(os.environ.get("PG_BIN", next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin")) or [Path("")]))))
PG_PORT, REDIS_PORT, WEB_PORT = 5440, 6390, 8790


# --- private services ----------------------------------------------------------------------------
def as_postgres(cmd: list[str]) -> list[str]:
    """initdb and pg_ctl refuse to run as root."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def pg_start() -> None:
    data = WORK / "pg"
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(WORK, "postgres")
            shutil.chown(data, "postgres")
        subprocess.run(
            as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]),
            check=True,
            capture_output=True,
        )
    subprocess.run(
        as_postgres(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(WORK / "pg.log"),
                "-w",
                "-o",
                f"-p {PG_PORT} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )


def pg_stop() -> None:
    subprocess.run(
        as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(WORK / "pg"), "-m", "fast", "-w", "stop"]),
        check=False,
        capture_output=True,
    )


def redis_start() -> None:
    (WORK / "redis").mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            str(REDIS_PORT),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(WORK / "redis"),
            "--logfile",
            str(WORK / "redis.log"),
            "--pidfile",
            str(WORK / "redis.pid"),
        ],
        check=True,
    )
    for _ in range(50):
        if subprocess.run(["redis-cli", "-p", str(REDIS_PORT), "ping"], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)


def redis_stop() -> None:
    subprocess.run(["redis-cli", "-p", str(REDIS_PORT), "shutdown", "nosave"], capture_output=True)
    time.sleep(0.3)


def drill_env() -> dict[str, str]:
    return production_env(
        database_url=f"postgres://postgres@127.0.0.1:{PG_PORT}/chatbot",
        redis_url=f"redis://127.0.0.1:{REDIS_PORT}/0",
        var_dir=str(WORK / "var"),
        secret="drill",
        CHATBOT_VISIBILITY_TIMEOUT="10",
        CHATBOT_ENCODER="ngram",
    )


@dataclass
class Stack:
    env: dict[str, str]
    web: subprocess.Popen | None = None
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start_web(self) -> None:
        self.web = subprocess.Popen(
            web_command(WEB_PORT), cwd=ROOT, env=self.env, stdout=open(WORK / "web.log", "ab"), stderr=subprocess.STDOUT
        )
        healthz(timeout=60)

    def start_worker(self, name: str) -> None:
        log = WORK / f"{name}.log"
        log.write_bytes(b"")
        self.workers[name] = subprocess.Popen(
            worker_command(name), cwd=ROOT, env=self.env, stdout=open(log, "ab"), stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 90
        while b" ready." not in log.read_bytes():
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {name} did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        for process in [self.web, *self.workers.values()]:
            if process and process.poll() is None:
                process.terminate()
        for process in [self.web, *self.workers.values()]:
            if process:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()


def healthz(timeout: float = 5) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{WEB_PORT}/healthz", timeout=5) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            return json.loads(error.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def manage(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout


# --- the clients ---------------------------------------------------------------------------------
@dataclass
class Tally:
    sent: set[str] = field(default_factory=set)
    answered: dict[str, int] = field(default_factory=dict)  # client id -> message id of the answer
    refused: dict[str, str] = field(default_factory=dict)  # client id -> last error code, while refused
    twice: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    reconnects: int = 0
    connect_failures: int = 0
    gaps: list[float] = field(default_factory=list)


class Client:
    def __init__(self, number: int, questions: list[str], tally: Tally, args: argparse.Namespace) -> None:
        self.number, self.questions, self.tally, self.args = number, questions, tally, args
        self.token: str | None = None
        self.waiting: dict[str, str] = {}  # client id -> text, sent and not answered yet
        self.sent_at: dict[str, float] = {}
        self.sending = True

    async def run(self, stop_sending: float, stop_all: float) -> None:
        delay, first, lost_at = 0.2, True, None
        while time.monotonic() < stop_all and (self.sending or self.waiting):
            url = f"ws://127.0.0.1:{WEB_PORT}/ws/chat/" + (f"?conversation={self.token}" if self.token else "")
            try:
                async with websockets.connect(url, origin=f"http://127.0.0.1:{WEB_PORT}", open_timeout=10) as ws:
                    welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if not first:
                        self.tally.reconnects += 1
                        self.tally.gaps.append(time.monotonic() - lost_at)
                    first, delay, lost_at = False, 0.2, None
                    self.token = welcome["conversation"]
                    for client_id, text in list(self.waiting.items()):  # like the page: re-send what waits
                        await ws.send(json.dumps({"type": "message", "id": client_id, "text": text}))
                    sender = asyncio.create_task(self._send(ws, stop_sending))
                    try:
                        await self._receive(ws, stop_all)
                    finally:
                        sender.cancel()
            except (OSError, websockets.WebSocketException, TimeoutError, KeyError):
                self.tally.connect_failures += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            if lost_at is None:
                lost_at = time.monotonic()  # connection lost (or refused): the gap runs until the next welcome

    async def _send(self, ws: websockets.ClientConnection, stop_sending: float) -> None:
        asyncio.ensure_future(self._retry(ws))
        while time.monotonic() < stop_sending:
            client_id, text = (
                uuid.uuid4().hex,
                self.questions[(self.number * 7 + len(self.tally.sent)) % len(self.questions)],
            )
            self.waiting[client_id] = text
            self.sent_at[client_id] = time.monotonic()
            self.tally.sent.add(client_id)
            await ws.send(json.dumps({"type": "message", "id": client_id, "text": text}))
            await asyncio.sleep(self.args.interval)
        self.sending = False

    async def _receive(self, ws: websockets.ClientConnection, stop_all: float) -> None:
        while time.monotonic() < stop_all and (self.sending or self.waiting):
            try:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 1.0))
            except TimeoutError:
                continue
            client_id = frame.get("reply_to")
            if frame["type"] == "answer" and client_id:
                previous = self.tally.answered.setdefault(client_id, frame["message_id"])
                self.tally.twice += previous != frame["message_id"]
                self.waiting.pop(client_id, None)
                self.tally.refused.pop(client_id, None)
            elif frame["type"] == "error":
                code = frame.get("code", "?")
                self.tally.errors[code] = self.tally.errors.get(code, 0) + 1
                if client_id in self.waiting:
                    self.tally.refused[client_id] = code
                    asyncio.get_running_loop().call_later(1.0, self._resend, ws, client_id)
        await ws.close()

    async def _retry(self, ws: websockets.ClientConnection) -> None:
        """Like the page after a long wait: send again (same id) what has had no answer for 15 s."""
        while ws.state.name == "OPEN":
            await asyncio.sleep(15)
            for client_id, text in list(self.waiting.items()):
                if time.monotonic() - self.sent_at.get(client_id, 0) > 15:
                    self.sent_at[client_id] = time.monotonic()
                    await ws.send(json.dumps({"type": "message", "id": client_id, "text": text}))

    def _resend(self, ws: websockets.ClientConnection, client_id: str) -> None:
        if client_id in self.waiting:
            text = self.waiting[client_id]
            asyncio.ensure_future(ws.send(json.dumps({"type": "message", "id": client_id, "text": text})))


async def run_load(args: argparse.Namespace, fault, fault_at: float) -> Tally:  # noqa: ANN001
    tally = Tally()
    questions = load_questions(ROOT / "bench" / "data" / "demo_paraphrases.csv")
    clients = [Client(n, questions, tally, args) for n in range(args.clients)]
    start = time.monotonic()
    stop_sending, stop_all = start + args.seconds, start + args.seconds + args.drain
    tasks = [asyncio.create_task(c.run(stop_sending, stop_all)) for c in clients]
    await asyncio.sleep(fault_at)
    await asyncio.get_running_loop().run_in_executor(None, fault)
    await asyncio.gather(*tasks)
    return tally


def db_check(env: dict[str, str], ids: set[str]) -> dict:
    """Per client id: customer messages stored and answers stored (each must be exactly one)."""
    path = WORK / "ids.json"
    path.write_text(json.dumps(sorted(ids)))
    code = (
        "import json,django;django.setup();from django.db.models import Count;"
        "from chatbot.conversations.models import Message as M;"
        f"ids=json.load(open({str(path)!r}));"
        "c=M.objects.filter(sender='customer',client_id__in=ids);"
        "stored=dict(c.values_list('client_id').annotate(n=Count('id')));"
        "answered=set(c.filter(reply__isnull=False).values_list('client_id',flat=True));"
        "print(json.dumps({'stored':len(stored),'stored_twice':sum(1 for n in stored.values() if n>1),"
        "'answered_in_db':len(answered)}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the faults ----------------------------------------------------------------------------------
def fault_worker_kill(stack: Stack, notes: dict) -> None:
    victim = stack.workers["worker1"]
    pids = [victim.pid, *children(victim.pid)]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    victim.wait()
    notes["killed"] = pids
    time.sleep(3)
    stack.start_worker("worker1b")
    notes["restarted"] = "worker1b"


def fault_redis_restart(stack: Stack, notes: dict) -> None:
    redis_stop()
    notes["down_health"] = healthz()["redis"]
    time.sleep(3)
    redis_start()
    notes["restarted_after_s"] = 3


def fault_postgres_restart(stack: Stack, notes: dict) -> None:
    pg_stop()
    notes["down_health"] = healthz()["database"]
    time.sleep(3)
    pg_start()
    notes["restarted_after_s"] = 3


def fault_web_restart(stack: Stack, notes: dict) -> None:
    stack.web.send_signal(signal.SIGKILL)
    stack.web.wait()
    time.sleep(1)
    stack.start_web()
    notes["web"] = "killed (SIGKILL) and started again"


def fault_artifact(stack: Stack, notes: dict) -> None:
    """Activate a copy of the model whose file is corrupted, then one whose file is missing."""
    code = (
        "import sys,django;django.setup();from django.core.files.base import ContentFile;"
        "from django.core.files.storage import default_storage as s;"
        "from chatbot.registry.models import ModelVersion as V;from chatbot.registry.services import model_version_activate;"
        "a=V.objects.get(is_active=True);kind=sys.argv[1];"
        "data=s.open(a.artifact.name,'rb').read();"
        "name=s.save('models/drill-'+kind+'.tar.gz',ContentFile(data[:len(data)//2]+b'garbage'));"
        "v=V.objects.create(parent=a,encoder=a.encoder,artifact=name,checksum=('e' if kind=='corrupt' else 'f')*64,"
        "threshold=a.threshold,margin=a.margin);"
        "kind=='missing' and s.delete(name);model_version_activate(v);print(a.pk,v.pk)"
    )
    original = None
    for kind in ("corrupt", "missing"):
        previous, bad = subprocess.run(
            [sys.executable, "-c", code, kind], cwd=ROOT, env=stack.env, check=True, capture_output=True, text=True
        ).stdout.split()
        time.sleep(4)
        notes[f"{kind}_health"] = healthz()
        notes[f"{kind}_versions"] = {"previous": int(previous), "bad": int(bad)}
        original = original or previous
    restore = (
        "import django;django.setup();from chatbot.registry.models import ModelVersion as V;"
        f"from chatbot.registry.services import model_version_activate;model_version_activate(V.objects.get(pk={original}))"
    )
    subprocess.run([sys.executable, "-c", restore], cwd=ROOT, env=stack.env, check=True)
    time.sleep(settings_heartbeat() + 2)
    notes["after_rollback_health"] = healthz()["model"]


def settings_heartbeat() -> float:
    return float(os.environ.get("CHATBOT_HEARTBEAT_SECONDS", 10))


FAULTS = {
    "worker-kill": fault_worker_kill,
    "redis-restart": fault_redis_restart,
    "postgres-restart": fault_postgres_restart,
    "web-restart": fault_web_restart,
    "artifact": fault_artifact,
}


def drill(name: str, args: argparse.Namespace) -> dict:
    env = drill_env()
    stack = Stack(env)
    redis_stop()
    redis_start()
    subprocess.run(["redis-cli", "-p", str(REDIS_PORT), "flushall"], capture_output=True)
    notes: dict = {}
    try:
        stack.start_web()
        stack.start_worker("worker1")
        stack.start_worker("worker2")
        tally = asyncio.run(run_load(args, lambda: FAULTS[name](stack, notes), args.seconds / 3))
        health = healthz(timeout=30)
        database = db_check(env, tally.sent)
        survivors = {n: p.poll() is None for n, p in stack.workers.items()} | {"web": stack.web.poll() is None}
    finally:
        stack.stop()
    lost = len(tally.sent) - len(tally.answered) - len(tally.refused)
    return {
        "drill": name,
        "clients": args.clients,
        "seconds": args.seconds,
        "sent": len(tally.sent),
        "answered": len(tally.answered),
        "refused_at_end": len(tally.refused),
        "lost": lost,
        "answered_twice": tally.twice,
        "errors": tally.errors,
        "reconnects": tally.reconnects,
        "connect_failures": tally.connect_failures,
        "longest_gap_s": round(max(tally.gaps, default=0), 1),
        "db": database,
        "processes_alive_after": survivors,
        "health_after": health.get("status"),
        "notes": notes,
    }


def prepare(args: argparse.Namespace) -> None:
    if args.fresh:
        pg_stop()
        shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True, exist_ok=True)
    pg_stop()
    pg_start()
    redis_stop()
    redis_start()
    env = drill_env()
    subprocess.run(
        ["psql", f"postgres://postgres@127.0.0.1:{PG_PORT}/postgres", "-qc", "CREATE DATABASE chatbot"],
        capture_output=True,
    )
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "load_demo", "-v0")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("drill", choices=[*FAULTS, "all"])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between a client's questions")
    parser.add_argument("--seconds", type=float, default=30, help="seconds of load (the fault comes at a third)")
    parser.add_argument("--drain", type=float, default=60, help="seconds to wait for the last answers")
    parser.add_argument("--fresh", action="store_true", help="new PostgreSQL cluster and model")
    parser.add_argument("--keep", action="store_true", help="leave the private PostgreSQL and Redis running")
    args = parser.parse_args()
    prepare(args)
    failed = False
    try:
        for name in FAULTS if args.drill == "all" else [args.drill]:
            result = drill(name, args)
            failed |= result["lost"] > 0 or result["db"]["stored_twice"] > 0
            print(json.dumps(result), flush=True)
            with open(WORK / "results.jsonl", "a") as handle:
                handle.write(json.dumps({"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **result}) + "\n")
    finally:
        if not args.keep:
            redis_stop()
            pg_stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
