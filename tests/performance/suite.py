"""The benchmark run: command line, server, systems, scenarios, then the report.

Entry points: ``python tests/performance/run_benchmarks.py [options]`` and
``run_benchmarks.main(argv)`` (for ``fairque bench``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import functools
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import redis
from rich.console import Console

from fairque.server import EmbeddedServer
from tests.performance import peers as peer_registry
from tests.performance.common import Figures, Sizes, server_version
from tests.performance.context import Bench
from tests.performance.jobs import BODIES, URL_ENV
from tests.performance.procs import Launcher
from tests.performance.report import table, targets, targets_table, write_json
from tests.performance.scenarios import (
    ceiling,
    cluster,
    dag,
    dag_files,
    dag_fire,
    dashboard,
    durability,
    enqueue,
    fairness,
    latency,
    memory,
    stalls,
    tenants,
    throughput,
)
from tests.performance.systems import FairqueSystem, System

BENCH_URL_ENV = "FAIRQUE_BENCH_REDIS_URL"
DEFAULT_OUTPUT = Path("benchmarks/results.json")

Shared = Callable[[Bench, System], None]
FairqueOnly = Callable[[Bench, FairqueSystem], None]


@dataclass(frozen=True)
class Scenario:
    """A named scenario: shared ones run for every system, the others for fairque only."""

    name: str
    help: str
    shared: Shared | None = None
    fairque_only: FairqueOnly | None = None
    standalone: Callable[[Bench], None] | None = None


SCENARIOS = [
    Scenario(
        "ceiling",
        "Redis ceiling: EVALSHA and LPUSH/RPOP ops/s (once before each scenario)",
        standalone=ceiling.run,
    ),
    Scenario("enqueue", "enqueue throughput, one per call and batched", shared=enqueue.run),
    Scenario("throughput", "tasks/s with one worker process", shared=throughput.run),
    Scenario(
        "processes",
        "tasks/s with N = CPU count worker processes (each system's multi-process set-up)",
        shared=throughput.run_processes,
    ),
    Scenario(
        "users",
        "no-op tasks/s with 1, 100 and 10,000 active users",
        fairque_only=throughput.run_users,
    ),
    Scenario("latency", "push-to-start latency on an idle worker", shared=latency.run),
    Scenario(
        "noisy",
        "noisy neighbour: light users' waits as H's backlog grows",
        shared=fairness.run_noisy,
    ),
    Scenario(
        "jain", "Jain's fairness index for users with equal backlogs", shared=fairness.run_jain
    ),
    Scenario("dag", "DAG task-to-task latency", fairque_only=dag.run),
    Scenario("memory", "Redis memory per queued task", fairque_only=memory.run),
    Scenario(
        "stalls",
        "worst PING of another client during a 50,000-task batch, its release, a DAG run",
        fairque_only=stalls.run,
    ),
    Scenario(
        "weights", "tenant weights 1:2:3 on 2 worker processes", fairque_only=tenants.run_weighted
    ),
    Scenario(
        "time_fairness",
        "fairness by worker time: long vs short tasks",
        fairque_only=tenants.run_time_fairness,
    ),
    Scenario(
        "cap", "max_running adherence across 2 worker processes", fairque_only=tenants.run_cap
    ),
    Scenario(
        "rate", "rate limit accuracy beside an unthrottled tenant", fairque_only=tenants.run_rate
    ),
    Scenario(
        "policy_cost",
        "claims/s at 10,000 active tenants with vs without policies",
        fairque_only=tenants.run_policy_cost,
    ),
    Scenario(
        "pool", "pool slot adherence across 2 worker processes", fairque_only=tenants.run_pool
    ),
    Scenario(
        "queue_rr",
        "round robin across a worker's queues",
        fairque_only=tenants.run_queue_round_robin,
    ),
    Scenario(
        "dashboard",
        "dashboard pages and API calls (ms) with 10,000 tenants, 100,000 tasks, 1,000 runs",
        fairque_only=dashboard.run,
    ),
    Scenario(
        "durability",
        "durability async vs replicated through Sentinel (a master and a replica)",
        fairque_only=durability.run,
    ),
    Scenario(
        "cluster",
        "a Valkey Cluster of 1, 2 and 3 masters, one worker process per master",
        standalone=cluster.run,
    ),
    Scenario(
        "dag_files",
        "dag validate / dag list --json over N generated YAML DAG files, cold and warm",
        standalone=dag_files.run,
    ),
    Scenario(
        "dagfire",
        "N DAG files on a 15 s schedule fired by 1 and 2 schedulers: tick lag, exactly once",
        standalone=dag_fire.run,
    ),
]
SCENARIO_NAMES = [s.name for s in SCENARIOS]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="run_benchmarks.py",
        description="Measure fairque and its peers (RQ, Celery, Dramatiq, arq, Huey) on one "
        "Redis server. Without FAIRQUE_BENCH_REDIS_URL a private Valkey is started; with "
        "it, that server's database is FLUSHED between scenarios.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, 1 repetition, fairque only unless --peers (< 60 s)",
    )
    parser.add_argument("--fairque-only", action="store_true", help="measure no peer")
    parser.add_argument(
        "--peers", help=f"comma-separated subset of {','.join(peer_registry.PEERS)}"
    )
    parser.add_argument("--reps", type=int, help="repetitions (default 3; --quick: 1)")
    parser.add_argument(
        "--peer-fairness-reps",
        type=int,
        default=1,
        help="repetitions of the noisy/jain scenarios for peers (default 1)",
    )
    parser.add_argument("--scenarios", help=f"comma-separated subset of {','.join(SCENARIO_NAMES)}")
    parser.add_argument(
        "--body",
        help=f"task bodies of the enqueue, throughput, processes and latency scenarios: "
        f"comma-separated subset of {','.join(BODIES)} (default both)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"results JSON (default {DEFAULT_OUTPUT})",
    )
    args = parser.parse_args(argv)
    args.scenario_list = _pick(parser, args.scenarios, SCENARIO_NAMES, "scenario")
    args.peer_list = _peers(parser, args)
    args.body_list = tuple(_pick(parser, args.body, list(BODIES), "body"))
    if args.reps is not None and args.reps < 1:
        parser.error("--reps must be at least 1")
    return args


def _pick(
    parser: argparse.ArgumentParser, text: str | None, known: list[str], what: str
) -> list[str]:
    if text is None:
        return list(known)
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [c for c in chosen if c not in known]
    if unknown:
        parser.error(f"unknown {what}(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return [k for k in known if k in chosen]


def _peers(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    if args.fairque_only:
        return []
    if args.peers is not None:
        chosen = _pick(parser, args.peers, list(peer_registry.PEERS), "peer")
        missing = [p for p in chosen if not peer_registry.installed(p)]
        if missing:
            parser.error(
                f"peer(s) not installed: {', '.join(missing)}; run `uv sync --group bench`"
            )
        return chosen
    if args.quick:
        return []
    return [p for p in peer_registry.PEERS if peer_registry.installed(p)]


# --- the run ----------------------------------------------------------------------------


@dataclass
class Run:
    """What one run collects besides the figures."""

    errors: list[dict[str, str]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; 0 when every selected scenario produced its figures."""
    given = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(given)
    console = Console() if sys.stdout.isatty() else Console(width=250)
    started = time.monotonic()
    logs = args.output.parent / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True, exist_ok=True)
    with _server() as (url, server_kind), _environment(URL_ENV, url):
        client = redis.Redis.from_url(url)
        sizes = Sizes.quick() if args.quick else Sizes.full()
        reps = args.reps or (1 if args.quick else 3)
        bench = Bench(
            url,
            client,
            sizes,
            reps,
            args.peer_fairness_reps,
            Figures(),
            Launcher(logs, url),
            console,
            args.body_list,
        )
        console.print(
            f"[bold]fairque benchmarks[/bold] on {server_version(client)} ({server_kind}), "
            f"{'quick' if args.quick else 'full'} mode, {reps} repetition(s); "
            f"peers: {', '.join(args.peer_list) or 'none'}"
        )
        systems, run = _systems(bench, args.peer_list)
        try:
            _run_all(bench, args.scenario_list, systems, run)
        finally:
            for system in systems:
                system.close()
        header = _header(given, args, bench, systems, server_kind, run)
        client.close()
    header["elapsed_seconds"] = round(time.monotonic() - started, 1)
    _report(args, bench, systems, header, run)
    console.print(
        f"results: {args.output}   worker logs: {logs}   took {header['elapsed_seconds']} s"
    )
    return 1 if run.errors else 0


def _report(
    args: argparse.Namespace,
    bench: Bench,
    systems: Sequence[System],
    header: dict[str, Any],
    run: Run,
) -> None:
    """Print the table, the notes and the targets; write the JSON."""
    sizes, console = bench.sizes, bench.console
    rows = targets(bench.figures, args.peer_list, sizes.noisy_backlogs, sizes.user_counts)
    console.print(table(bench.figures, [s.name for s in systems[1:]]))
    for note in bench.notes:
        console.print(f"[yellow]note[/yellow] {note}")
    console.print(targets_table(rows))
    for error in run.errors:
        console.print(f"[red]error[/red] {error['system']} / {error['scenario']}: {error['error']}")
    write_json(args.output, header, bench.figures, rows)


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """Set an environment variable for the block (the peers' app modules read it)."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


@contextlib.contextmanager
def _server() -> Iterator[tuple[str, str]]:
    """The server: ``$FAIRQUE_BENCH_REDIS_URL``, or a private embedded Valkey (no AOF,
    as the benchmarks have always measured)."""
    given = os.environ.get(BENCH_URL_ENV, "").strip()
    if given:
        if not given.startswith(("redis://", "unix://")):
            raise SystemExit(
                f"{BENCH_URL_ENV} must be a redis:// or unix:// URL: the suite and its peers "
                "measure one plain server (no Sentinel, Cluster or TLS scenario yet)"
            )
        yield given, BENCH_URL_ENV
        return
    with (
        tempfile.TemporaryDirectory(prefix="fairque-bench-") as folder,
        EmbeddedServer(folder, durable=False) as url,
    ):
        yield url, "private embedded server on loopback"


def _systems(bench: Bench, peers: Sequence[str]) -> tuple[list[System], Run]:
    run = Run()
    systems: list[System] = [FairqueSystem(bench.redis_url, bench.launcher)]
    for name in peers:
        try:
            systems.append(peer_registry.load(name)(bench.redis_url, bench.launcher))
        except Exception as e:
            run.errors.append({"system": name, "scenario": "set-up", "error": repr(e)})
    return systems, run


def _run_all(bench: Bench, names: Sequence[str], systems: Sequence[System], run: Run) -> None:
    """The selected scenarios in order; the ceiling, when selected, once before each."""
    chosen = [s for s in SCENARIOS if s.name in names and s.name != "ceiling"]
    with_ceiling = "ceiling" in names
    if with_ceiling and not chosen:
        _run_scenario(bench, SCENARIOS[0], systems, run)
    elif with_ceiling:
        bench.console.print(f"[bold]ceiling[/bold]: {SCENARIOS[0].help}")
    for scenario in chosen:
        if with_ceiling:
            _run_job(bench, "ceiling", "redis-py", functools.partial(ceiling.run_once, bench), run)
        _run_scenario(bench, scenario, systems, run)


def _run_scenario(bench: Bench, scenario: Scenario, systems: Sequence[System], run: Run) -> None:
    bench.console.print(f"[bold]{scenario.name}[/bold]: {scenario.help}")
    fairque = systems[0]
    assert isinstance(fairque, FairqueSystem)
    jobs: list[tuple[str, Callable[[], None]]] = []
    if scenario.standalone is not None:
        jobs.append(("redis-py", functools.partial(scenario.standalone, bench)))
    if scenario.fairque_only is not None:
        jobs.append(("fairque", functools.partial(scenario.fairque_only, bench, fairque)))
    if scenario.shared is not None:
        jobs += [(s.name, functools.partial(scenario.shared, bench, s)) for s in systems]
    for name, job in jobs:
        _run_job(bench, scenario.name, name, job, run)


def _run_job(bench: Bench, scenario: str, name: str, job: Callable[[], None], run: Run) -> None:
    """Run one scenario for one system; an error is recorded and the run goes on."""
    began = time.monotonic()
    bench.launcher.last = None
    try:
        job()
    except Exception as e:
        bench.flush()
        worker = bench.launcher.last
        run.errors.append(
            {
                "system": name,
                "scenario": scenario,
                "error": repr(e),
                "traceback": traceback.format_exc(),
                "worker_log": worker.tail() if worker else "",
            }
        )
        bench.console.print(f"  [red]{name}: {e!r}[/red]")
    took = time.monotonic() - began
    key = f"{scenario}/{name}"
    run.timings[key] = round(run.timings.get(key, 0.0) + took, 1)
    if scenario != "ceiling":
        bench.say(f"{name}: {took:.1f} s")


def _header(
    argv: Sequence[str],
    args: argparse.Namespace,
    bench: Bench,
    systems: Sequence[System],
    server_kind: str,
    run: Run,
) -> dict[str, Any]:
    """Everything about the run but its figures and targets."""
    return {
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["run_benchmarks.py", *argv]),
        "mode": "quick" if args.quick else "full",
        "repetitions": bench.reps,
        "peer_fairness_repetitions": min(bench.reps, bench.peer_fairness_reps),
        "scenarios": args.scenario_list,
        "bodies": list(bench.bodies),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "machine": platform.machine(),
            "python": platform.python_version(),
        },
        "versions": {
            "fairque": version("fairque"),
            "redis_server": server_version(bench.client),
            "redis_py": version("redis"),
            **{s.name: s.version for s in systems[1:]},
        },
        "server": server_kind,
        "worker_setups": {s.name: s.setup for s in systems},
        "sizes": dataclasses.asdict(bench.sizes),
        "peers_skipped": [p for p in peer_registry.PEERS if p not in args.peer_list],
        "notes": bench.notes,
        "errors": run.errors,
        "timings_seconds": run.timings,
    }
