"""Where the product's serving time goes: py-spy on the web process and every worker process under load.

    python bench/serving_profile.py --conns 50 --msgs 40            # prints the top functions per process
    python bench/serving_profile.py --env LOG_LEVEL=INFO --top 40
    python bench/serving_profile.py --pool threads --sample=--gil     # only the GIL holder: Python CPU

Starts the product as bench/serving.py does, samples each process with `py-spy record --format raw`
(collapsed stacks; `--sample` picks which threads) while the rig's load client runs, then prints for each process the
functions with the most samples, inclusive (the function or anything it calls) and own, as a share of the
process's samples. The raw stacks stay in bench/results/profile-*.txt for a flame graph.
"""

import argparse
import collections
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving  # noqa: E402

PY_SPY = Path(sys.executable).parent / "py-spy"


def record(pid: int, name: str, seconds: float, rate: int, flags: list[str]) -> tuple[str, subprocess.Popen]:
    out = serving.RESULTS / f"profile-{name}.txt"
    command = [str(PY_SPY), "record", "--pid", str(pid), "--format", "raw", "--rate", str(rate), *flags]
    command += ["--duration", str(int(seconds)), "--output", str(out), "--nonblocking"]
    return str(out), subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summary(path: str, top: int) -> str:
    inclusive: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    total = 0
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        frames = [frame.split(" (")[0] + " " + frame.split("/")[-1].rstrip(")") for frame in stack.split(";")]
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    idle = sum(n for frame, n in own.items() if any(word in frame for word in ("select ", "poll ", "wait ", "epoll")))
    lines = [f"{total} samples, {idle / max(1, total):.0%} waiting (select/poll/wait)", "inclusive:"]
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in inclusive.most_common(top)]
    lines += ["own:"] + [f"  {n / total:6.1%}  {frame}" for frame, n in own.most_common(top)]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> None:
    serving.RESULTS.mkdir(parents=True, exist_ok=True)
    serving.product_prepare(args)
    groups, ports = serving.product_start(args)
    try:
        serving.measure(groups, ports, 5, 20, ["--timeout", "20"])
        pids = {f"web-{i}": pid for i, pid in enumerate(groups["web"].pids())}
        pids |= {f"worker-{i}": pid for i, pid in enumerate(groups["worker"].pids())}
        recorders = {
            name: record(pid, name, args.seconds, args.rate, args.sample.split()) for name, pid in pids.items()
        }
        time.sleep(1)
        result = serving.measure(groups, ports, args.conns, args.msgs, ["--timeout", "60"])
        print({key: result[key] for key in ("msgs_per_s", "p50_ms", "cpu_ms_per_msg", "lost", "load_average_1m")})
        for _path, recorder in recorders.values():
            recorder.wait(timeout=args.seconds + 60)
    finally:
        for group in groups.values():
            group.stop()
    for name, (path, _) in recorders.items():
        if Path(path).exists() and Path(path).stat().st_size:
            print(f"\n== {name} ==\n{summary(path, args.top)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conns", type=int, default=50)
    parser.add_argument("--msgs", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=20, help="how long each process is sampled")
    parser.add_argument("--rate", type=int, default=250, help="samples a second")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--sample",
        default="--idle",
        help="py-spy's sampling flags: '--idle' (every thread, waiting too), '--gil' (only the thread holding the"
        " GIL: where the process's Python CPU goes), '' (threads on a CPU)",
    )
    for flag, default in (("--webs", 1), ("--workers", 1), ("--concurrency", 4)):
        parser.add_argument(flag, type=int, default=default)
    parser.add_argument("--pool", default="prefork")
    parser.add_argument("--encoder", default="ngram")
    parser.add_argument("--loglevel", default="INFO")
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/chatbot_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/8")
    arguments = parser.parse_args()
    arguments.root = serving.ROOT
    main(arguments)
