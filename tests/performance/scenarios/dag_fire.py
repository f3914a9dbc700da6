"""DAGs at scale: N generated DAG files on a 15-second schedule, fired by 1 or 2 real
``fairque scheduler`` processes.

For each N (100, 1,000 and 5,000 in a full run) and each number of schedulers, the
folder is written (10 chained no-op tasks per DAG, ``tests.performance.dag_folder``),
the schedulers are started and given time to load the folder (not measured), then the
ticks that fall within the observed window (``FAIRQUE_BENCH_DAG_SECONDS``, 60 s in a
full run, 20 s in quick mode) are judged from the runs' records:

- ``fire one tick`` (s): the last run of a tick created (the run's ``created_at``, the
  server's clock) minus the tick; the worst tick of the window;
- ``tick lag p50 / p99`` (s): every run's ``created_at`` minus its tick;
- ``runs per DAG per tick``: must be exactly 1 for every DAG and tick (``exactly once``);
- ``stop after SIGTERM`` (s): from the signal to the process's exit, the worst scheduler.

``python -m tests.performance.scenarios.dag_fire [--counts 100,1000] [--seconds 20]
[--schedulers 1,2] [--redis-url URL]`` runs it on its own and prints the table.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import redis

from fairque.core.keys import Keys
from tests.performance.common import Sizes, percentile
from tests.performance.context import Bench
from tests.performance.dag_folder import write_dags

SCENARIO = "dagfire"
ROOT = Path(__file__).resolve().parents[3]
FULL_COUNTS = (100, 1_000, 5_000)
QUICK_COUNTS = (50,)
TICK_SECONDS = 15.0
KEYS = Keys()
LOAD_TIMEOUT = 900.0


@dataclass
class Result:
    """What one (N, schedulers) measurement found."""

    dags: int
    schedulers: int
    ticks: int
    fire_tick_max: float
    lag_p50: float
    lag_p99: float
    runs: int
    duplicates: int
    missed: int
    stop_max: float

    @property
    def exactly_once(self) -> bool:
        """Every DAG fired once at every tick of the window."""
        return self.duplicates == 0 and self.missed == 0

    def row(self) -> str:
        once = "yes" if self.exactly_once else f"NO ({self.duplicates} twice, {self.missed} missed)"
        return (
            f"{self.dags:>6,} DAGs  {self.schedulers} scheduler(s)  {self.ticks} tick(s)  "
            f"fire one tick {self.fire_tick_max:6.2f} s  lag p50 {self.lag_p50:6.2f} s  "
            f"p99 {self.lag_p99:6.2f} s  runs {self.runs:>6,}  exactly once {once}  "
            f"stop {self.stop_max:4.2f} s"
        )


def measure(
    url: str, count: int, schedulers: int, seconds: float, logs: Path, every: float = TICK_SECONDS
) -> Result:
    """One measurement on the server at ``url`` (its database is flushed): ``count`` DAGs
    firing every ``every`` seconds (5, 10, 15, 20 or 30), watched for ``seconds``."""
    client = redis.Redis.from_url(url, decode_responses=True)
    client.execute_command("FLUSHDB", "SYNC")  # type: ignore[no-untyped-call]
    with tempfile.TemporaryDirectory(prefix="fairque-dags-") as folder:
        ids = write_dags(Path(folder), count, schedule=f"*/{every:g} * * * * *")
        with _schedulers(url, Path(folder), schedulers, logs) as procs:
            _wait_loaded(client, ids, procs)
            start = _server_time(client)
            first_tick = (int(start // every) + 1) * every
            ticks: list[float] = []
            tick = first_tick
            while tick + every / 2 <= start + seconds or not ticks:
                ticks.append(tick)
                tick += every
            # Wait for the last tick's runs (or give up a tick later).
            deadline = ticks[-1] + every
            while _server_time(client) < deadline and _runs_of(client, ticks[-1]) < count:
                time.sleep(0.2)
            stops = _stop(procs)
    return _judge(client, ids, ticks, count, schedulers, stops)


def _judge(
    client: redis.Redis,
    ids: list[str],
    ticks: list[float],
    count: int,
    schedulers: int,
    stops: list[float],
) -> Result:
    lags: list[float] = []
    worst = 0.0
    per: Counter[tuple[str, float]] = Counter()
    for _, created, logical, dag_id in _runs(client):
        tick = datetime.fromisoformat(logical).timestamp()
        if tick in ticks:
            per[(dag_id, tick)] += 1
            lags.append(created - tick)
    for tick in ticks:
        done = [created - tick for _, created, logical, _ in _runs(client, tick)]
        worst = max([worst, *done])
    duplicates = sum(1 for n in per.values() if n > 1)
    missed = sum(1 for dag_id in ids for tick in ticks if per[(dag_id, tick)] == 0)
    return Result(
        count,
        schedulers,
        len(ticks),
        worst,
        percentile(lags, 50) if lags else float("nan"),
        percentile(lags, 99) if lags else float("nan"),
        len(lags),
        duplicates,
        missed,
        max(stops),
    )


def _runs(client: redis.Redis, tick: float | None = None) -> list[tuple[str, float, str, str]]:
    """(run id, created_at, logical date, DAG id) of every run (of one tick)."""
    ids: list[str] = client.zrange(KEYS.runs, 0, -1)  # type: ignore[assignment]
    pipe = client.pipeline(transaction=False)
    for run_id in ids:
        pipe.hmget(KEYS.run(run_id), "created_at", "logical_date", "dag_id")
    found = []
    for run_id, (created, logical, dag_id) in zip(ids, pipe.execute(), strict=True):
        if created is None or logical is None:
            continue
        if tick is not None and datetime.fromisoformat(logical).timestamp() != tick:
            continue
        found.append((run_id, float(created), logical, dag_id))
    return found


def _runs_of(client: redis.Redis, tick: float) -> int:
    return len(_runs(client, tick))


def _server_time(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return int(seconds) + int(micros) / 1_000_000


def _wait_loaded(client: redis.Redis, ids: list[str], procs: list[subprocess.Popen[bytes]]) -> None:
    """Until every DAG was seen once and (where the schedulers keep run templates in
    Redis) its run template is stored: start-up is not measured."""
    count = len(ids)
    deadline = time.monotonic() + LOAD_TIMEOUT
    while time.monotonic() < deadline:
        if client.hlen(KEYS.schedule_cursors) >= count and _templates_stored(client, ids):
            return
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a scheduler exited while loading the folder")
        time.sleep(0.2)
    raise RuntimeError(f"the schedulers did not index {count} DAGs in {LOAD_TIMEOUT:.0f} s")


def _templates_stored(client: redis.Redis, ids: list[str]) -> bool:
    if not client.exists(KEYS.dags_due):  # a version without a due index (before issue 13)
        return True
    pipe = client.pipeline(transaction=False)
    for dag_id in ids:
        pipe.exists(KEYS.dag_template(dag_id))
    return all(pipe.execute())


@contextlib.contextmanager
def _schedulers(
    url: str, folder: Path, count: int, logs: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    logs.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    files = []
    try:
        for i in range(count):
            log = (logs / f"dagfire-scheduler-{i}.log").open("wb")
            files.append(log)
            command = [sys.executable, "-m", "fairque.cli.app", "scheduler"]
            command += ["--dags-folder", str(folder), "--redis-url", url, "--log-level", "WARNING"]
            procs.append(subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log))
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for log in files:
            log.close()


def _stop(procs: list[subprocess.Popen[bytes]]) -> list[float]:
    """SIGTERM every scheduler; seconds from the signal to each one's exit."""
    took = []
    for proc in procs:
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        took.append(time.monotonic() - sent)
    return took


def run(bench: Bench) -> None:
    """The suite's scenario: every N of :func:`counts_for` with 1 and 2 schedulers (quick
    mode: 50 DAGs every 5 s, 1 scheduler, one tick)."""
    quick = bench.sizes == Sizes.quick()
    every = 5.0 if quick else TICK_SECONDS
    for count in counts_for(quick):
        for schedulers in (1,) if quick else (1, 2):
            bench.flush()
            logs = bench.launcher.folder
            result = measure(bench.redis_url, count, schedulers, seconds_for(quick), logs, every)
            bench.say(result.row())
            label = f"{count:,} DAGs, {schedulers} scheduler(s)"
            note = f"{result.ticks} tick(s) every {every:g} s, {result.runs} runs"
            for name, value in (
                ("fire one tick (s)", result.fire_tick_max),
                ("tick lag p50 (s)", result.lag_p50),
                ("tick lag p99 (s)", result.lag_p99),
                ("stop after SIGTERM (s)", result.stop_max),
            ):
                bench.figures.add(
                    "fairque",
                    SCENARIO,
                    f"{label}: {name}",
                    value,
                    "s",
                    higher_is_better=False,
                    note=note,
                )
            if not result.exactly_once:
                bench.notes.append(
                    f"dagfire: {label}: {result.duplicates} DAG ticks fired twice, "
                    f"{result.missed} not at all (catchup: false fires the latest tick only)"
                )
    bench.flush()


def counts_for(quick: bool) -> tuple[int, ...]:
    """The Ns measured: ``FAIRQUE_BENCH_DAG_COUNTS`` (comma-separated) or the defaults."""
    given = os.environ.get("FAIRQUE_BENCH_DAG_COUNTS", "").strip()
    if given:
        return tuple(int(part) for part in given.split(",") if part.strip())
    return QUICK_COUNTS if quick else FULL_COUNTS


def seconds_for(quick: bool) -> float:
    """The observed window: ``FAIRQUE_BENCH_DAG_SECONDS`` or 5 s (quick) / 60 s."""
    given = os.environ.get("FAIRQUE_BENCH_DAG_SECONDS", "").strip()
    return float(given) if given else (5.0 if quick else 60.0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.performance.scenarios.dag_fire")
    parser.add_argument("--counts", default="100,1000")
    parser.add_argument("--schedulers", default="1,2")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--redis-url", default=os.environ.get("FAIRQUE_BENCH_REDIS_URL"))
    parser.add_argument("--logs", type=Path, default=Path("benchmarks/logs"))
    args = parser.parse_args(argv)
    if not args.redis_url:
        parser.error("give --redis-url (or set FAIRQUE_BENCH_REDIS_URL): its data is flushed")
    for count in (int(c) for c in args.counts.split(",")):
        for schedulers in (int(s) for s in args.schedulers.split(",")):
            result = measure(args.redis_url, count, schedulers, args.seconds, args.logs)
            print(result.row(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
