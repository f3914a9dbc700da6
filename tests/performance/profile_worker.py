"""Where a fairque worker's and producer's CPU goes: the breakdown in README.md.

    uv run python tests/performance/profile_worker.py [--tasks 20000] [--body redis]

Worker: the queue is pre-filled with ``--tasks`` tasks, then ``fairque worker`` (one
process, as the throughput scenario runs it) drains them under ``py-spy record`` (run
through ``uvx``; nothing is added to the project). The worker's CPU time (from
``/proc``, user and system) is divided by the tasks drained; the user part (Python) is
split by py-spy's samples of the thread holding the GIL (``--gil``) into the parts of
:data:`CATEGORIES` (each sample goes to the first category one of its frames matches).

The samples are kept in ``benchmarks/profile/worker.raw`` (collapsed stacks).

Push path: ``--pushes`` one-at-a-time pushes in this process, the CPU of each part
(making the Task, building the script call, running it), and the server's side from
``INFO commandstats`` (microseconds per FCALL), so client encoding and script time can
be told apart.

The server is ``$FAIRQUE_BENCH_REDIS_URL`` (its database is FLUSHED) or a private
embedded Valkey, as for ``run_benchmarks.py``.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

_ROOT = str(Path(__file__).resolve().parents[2])
if __name__ == "__main__":  # run as a script: import the suite from the repository root
    sys.path[0] = _ROOT

import redis  # noqa: E402

from fairque import Task  # noqa: E402
from tests.performance.common import POLL_SECONDS, REPO_ROOT, Deadline  # noqa: E402
from tests.performance.jobs import BODIES, REDIS_BODY, URL_ENV, plain_job  # noqa: E402
from tests.performance.procs import Launcher  # noqa: E402
from tests.performance.suite import _server  # noqa: E402
from tests.performance.systems import JOBS_MODULE, FairqueSystem  # noqa: E402

# (category, substrings of a py-spy frame "function (file:line)"), first match wins
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("task body (its own Redis round trip)", ("work (tests/performance/jobs.py",)),
    ("JSON (decode and encode)", ("json/",)),
    ("record decoding (from_hash, checks)", ("from_hash", "__post_init__", "core/fields.py")),
    ("claim reply parsing", ("_parse_tasks", "_pairs", "_parse_settle")),
    ("settle arguments", ("settle_call", "settlement (", "settle (fairque/queue/calls.py")),
    ("redis-py: the worker's script calls", ("redis/",)),
    (
        "thread hand-offs (pool, inbox, wake-ups)",
        (
            "threading.py",
            "queue.py",
            "futures/",
            "threads.py",
            "._put (",
            "_drain_wake",
            "._sleep (",
        ),
    ),
    (
        "running a task (hooks, context, capture)",
        ("execute.py", "handler.py", "capture.py", "context.py", "imports.py"),
    ),
]
OTHER = "other (the loop, timers, logs, bookkeeping)"
T = TypeVar("T")
STEADY = ("Worker.run (", "DaemonPool._serve (")  # the loop and the task threads


def classify(stack: str) -> str:
    frames = stack.split(";")
    for name, needles in CATEGORIES:
        if any(needle in frame for frame in frames for needle in needles):
            return name
    return OTHER


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU of a process and its threads (children not counted)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def worker_pid(pid: int) -> int:
    """The worker that py-spy (started by uvx, itself under ``pid``) runs."""
    deadline = Deadline(30)
    while not deadline.passed:
        for found in descendants(pid):
            try:
                argv = Path(f"/proc/{found}/cmdline").read_bytes().split(b"\0")
            except FileNotFoundError:  # ended meanwhile (uvx's own steps)
                continue
            if b"python" in argv[0] and b"fairque.cli.app" in argv:
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
    argv = ["uvx", "py-spy", "record", "--gil", "--nonblocking", "-r", str(rate)]
    argv += ["--format", "raw", "-o", str(raw)]
    path = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, URL_ENV: url, "PYTHONPATH": os.pathsep.join(path)}
    spy = subprocess.Popen(
        [*argv, "--", *system.worker_argv()],
        cwd=REPO_ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
    user, system_cpu = ((b - a) / done * 1e6 for a, b in zip(cpu0, cpu1, strict=True))
    print(
        f"worker, {body} body: {done} tasks in {t1 - t0:.2f} s = {done / (t1 - t0):,.0f}/s; "
        f"worker CPU per task: {user:,.0f} us user (Python) + {system_cpu:,.0f} us system "
        "(the kernel: sockets, thread wake-ups)"
    )
    per_task = user
    for name, stat in sorted(commands.items(), key=lambda kv: -kv[1]["usec"]):
        if stat["calls"] >= done // 20:
            print(
                f"  server: {name.removeprefix('cmdstat_')} {stat['calls'] / done:.2f} calls per "
                f"task, {stat['usec_per_call']:.0f} us per call"
            )
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if any(root in stack for root in STEADY):  # not start-up and imports
            counts[classify(stack)] += int(count)
    total = sum(counts.values())
    for name, count in counts.most_common():
        print(f"  {name:48} {count / total:6.1%}  {per_task * count / total:6.0f} us/task")
    print("  (the split of the user CPU: py-spy's samples of the thread holding the GIL)")
    system.close()
    client.close()


def profile_push(url: str, pushes: int, body: str) -> None:
    """One-at-a-time pushes in three parts, each timed alone (CPU of this process):
    making the Task, building the script call, running it (redis-py and the socket)."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    system = FairqueSystem(url, Launcher(REPO_ROOT / "benchmarks" / "profile", url))
    queue = system.queue
    job, args = plain_job(body)
    func = f"{JOBS_MODULE}:{job}"

    def make() -> Task:
        return Task.create("bench", func=func, args=list(args))

    queue.push(make())  # loads the functions
    tasks, create = _timed(pushes, make)
    calls, build = _timed(pushes, lambda i: queue.calls.push_one(tasks[i]), indexed=True)
    client.config_resetstat()
    started = time.perf_counter()
    _, run = _timed(pushes, lambda i: queue.run_script(calls[i]), indexed=True)
    wall = (time.perf_counter() - started) / pushes * 1e6
    server = float(client.info("commandstats")["cmdstat_fcall"]["usec_per_call"])
    print(
        f"push, {body} body, {pushes} one at a time: CPU per push {create:.0f} us making the "
        f"Task + {build:.0f} us building the script call + {run:.0f} us running it (redis-py, "
        f"socket); the call takes {wall:.0f} us of wall time, of which the script runs "
        f"{server:.0f} us on the server (INFO commandstats)"
    )
    system.close()
    client.close()


def _timed(count: int, step: Callable[..., T], indexed: bool = False) -> tuple[list[T], float]:
    """The results of ``count`` steps, and the CPU microseconds per step."""
    began = time.process_time()
    out = [step(i) if indexed else step() for i in range(count)]
    return out, (time.process_time() - began) / count * 1e6


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
