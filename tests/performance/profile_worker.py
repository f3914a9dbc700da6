"""Where a fairque worker's and producer's CPU goes: the breakdown in README.md.

    uv run python tests/performance/profile_worker.py [--tasks 20000] [--body redis]

Worker: the queue is pre-filled with ``--tasks`` tasks, then ``fairque worker`` (one
process, as the throughput scenario runs it) drains them under ``py-spy record`` (run
through ``uvx``; nothing is added to the project). The worker's CPU time (from
``/proc``) is divided by the tasks drained, and split by py-spy's samples into the parts
of :data:`CATEGORIES` (each sample goes to the first category one of its frames matches).

The samples are kept in ``benchmarks/profile/worker.raw`` (collapsed stacks).

Push path: ``--pushes`` one-at-a-time pushes under cProfile in this process, and the
server's side from ``INFO commandstats`` (microseconds per EVALSHA), so client encoding
and script time can be told apart.

The server is ``$FAIRQUE_BENCH_REDIS_URL`` (its database is FLUSHED) or a private
embedded Valkey, as for ``run_benchmarks.py``.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if __name__ == "__main__":  # run as a script: import the suite from the repository root
    sys.path[0] = _ROOT

import redis  # noqa: E402

from tests.performance.common import POLL_SECONDS, REPO_ROOT, Deadline  # noqa: E402
from tests.performance.jobs import BODIES, REDIS_BODY, URL_ENV, plain_job  # noqa: E402
from tests.performance.procs import Launcher  # noqa: E402
from tests.performance.suite import _server  # noqa: E402
from tests.performance.systems import FairqueSystem  # noqa: E402

# (category, substrings of a py-spy frame "function (file:line)"), first match wins
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("task body (its own Redis round trip)", ("work (tests/performance/jobs.py",)),
    ("JSON (decode and encode)", ("json/",)),
    ("record decoding (from_hash, checks)", ("from_hash", "__post_init__", "core/fields.py")),
    ("claim reply parsing", ("_parse_tasks", "_pairs", "_parse_settle")),
    ("settle arguments", ("settle_call", "settlement (", "settle (fairque/queue/calls.py")),
    ("redis-py: the worker's script calls", ("redis/",)),
    (
        "thread hand-offs (pool, inbox, futures)",
        ("threading.py", "queue.py", "futures/", "threads.py"),
    ),
    (
        "running a task (hooks, context, capture)",
        ("execute.py", "handler.py", "capture.py", "context.py", "imports.py"),
    ),
]
OTHER = "other (the loop, timers, logs, bookkeeping)"


def classify(stack: str) -> str:
    frames = stack.split(";")
    for name, needles in CATEGORIES:
        if any(needle in frame for frame in frames for needle in needles):
            return name
    return OTHER


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its threads (children not counted)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_pid(pid: int) -> int:
    """The worker that py-spy (started by uvx, itself under ``pid``) runs."""
    deadline = Deadline(30)
    while not deadline.passed:
        for found in descendants(pid):
            if b"fairque.cli.app" in Path(f"/proc/{found}/cmdline").read_bytes():
                return found
        time.sleep(POLL_SECONDS)
    raise TimeoutError("py-spy did not start the worker")


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = task / "children"
        for child in children.read_text().split() if children.exists() else []:
            out += [int(child), *descendants(int(child))]
    return out


def profile_worker(url: str, tasks: int, body: str, rate: int, folder: Path) -> None:
    client = redis.Redis.from_url(url)
    client.flushdb()
    system = FairqueSystem(url, Launcher(folder, url))
    system.fill("bench", tasks, body=body)
    raw = folder / "worker.raw"
    argv = ["uvx", "py-spy", "record", "--nonblocking", "-r", str(rate)]
    argv += ["--format", "raw", "-o", str(raw)]
    env = {**os.environ, URL_ENV: url, "PYTHONPATH": str(REPO_ROOT)}
    spy = subprocess.Popen(
        [*argv, "--", *system.worker_argv()], cwd=REPO_ROOT, env=env, start_new_session=True
    )
    worker = worker_pid(spy.pid)
    while system.remaining() > tasks - 200:  # start-up and imports are not counted
        time.sleep(POLL_SECONDS)
    client.config_resetstat()
    left0, cpu0, t0 = system.remaining(), cpu_seconds(worker), time.perf_counter()
    while system.remaining() > tasks // 10:
        time.sleep(0.05)
    left1, cpu1, t1 = system.remaining(), cpu_seconds(worker), time.perf_counter()
    commands = client.info("commandstats")
    spy.send_signal(signal.SIGINT)
    spy.wait(60)
    os.killpg(spy.pid, signal.SIGKILL)
    done = left0 - left1
    per_task = (cpu1 - cpu0) / done * 1e6
    print(
        f"worker, {body} body: {done} tasks in {t1 - t0:.2f} s = {done / (t1 - t0):,.0f}/s; "
        f"worker CPU {cpu1 - cpu0:.2f} s = {per_task:,.0f} us per task"
    )
    for name, stat in sorted(commands.items(), key=lambda kv: -kv[1]["usec"]):
        if stat["calls"] >= done // 20:
            print(
                f"  server: {name.removeprefix('cmdstat_')} {stat['calls'] / done:.2f} calls per "
                f"task, {stat['usec_per_call']:.0f} us per call"
            )
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            counts[classify(stack)] += int(count)
    total = sum(counts.values())
    for name, count in counts.most_common():
        print(f"  {name:48} {count / total:6.1%}  {per_task * count / total:6.0f} us/task")
    system.close()
    client.close()


def profile_push(url: str, pushes: int, body: str) -> None:
    client = redis.Redis.from_url(url)
    client.flushdb()
    system = FairqueSystem(url, Launcher(Path(tempfile.gettempdir()), url))
    job, args = plain_job(body)
    send = system.sender(job, "bench")
    send(*args)  # loads the script
    client.config_resetstat()
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(pushes):
        send(*args)
    profiler.disable()
    wall = (time.perf_counter() - started) / pushes * 1e6
    stats = client.info("commandstats")
    evalsha = stats.get("cmdstat_evalsha", {})
    server = float(evalsha.get("usec_per_call", 0.0))
    print(
        f"push, {body} body: {pushes / (wall * pushes / 1e6):,.0f}/s, {wall:.0f} us per push, "
        f"of which the script runs {server:.0f} us on the server (INFO commandstats)"
    )
    pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
    system.close()
    client.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--pushes", type=int, default=5_000)
    parser.add_argument("--body", choices=BODIES, default=REDIS_BODY)
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--skip-worker", action="store_true")
    parser.add_argument("--skip-push", action="store_true")
    args = parser.parse_args(argv)
    folder = REPO_ROOT / "benchmarks" / "profile"
    folder.mkdir(parents=True, exist_ok=True)
    with _server() as (url, _):
        os.environ[URL_ENV] = url
        if not args.skip_worker:
            profile_worker(url, args.tasks, args.body, args.rate, folder)
        if not args.skip_push:
            profile_push(url, args.pushes, args.body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
