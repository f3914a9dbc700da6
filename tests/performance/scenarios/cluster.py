"""fairque on a Valkey Cluster of 1, 2 and 3 masters (issue 16, item 7).

For each size the scenario starts its own cluster (tests/cluster_group.py: the embedded
``valkey-server`` with ``cluster-enabled yes``, no replicas, loopback ports; the
benchmark server is not used), queues no-op tasks spread over many tenants through
``redis+cluster://``, and drains them with one worker process per master
(``fairque worker --processes N``). Besides tasks/s it reads every master's
``INFO commandstats`` around the drain: the script calls (FCALL) the busiest master ran
per second and its share of all of them, so where the work lands is visible (a settle
call records and claims several tasks, so calls are fewer than tasks). Every fairque
key carries one hash tag today (``core/keys.py``: sharding over S > 1 masters is
designed, not built), so one master serves all of it and the figure measures that
ceiling, not a scale-out.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from fairque import Task
from tests.cluster_group import ClusterGroup
from tests.performance.common import measure_drain
from tests.performance.context import Bench
from tests.performance.systems import NOOP, FairqueSystem

SCENARIO = "cluster"
MASTERS = (1, 2, 3)
TENANTS = 100
FILL_CHUNK = 1_000


def run(bench: Bench) -> None:
    """The suite's scenario: 1, 2 and 3 masters, ``bench.reps`` drains each."""
    for masters in MASTERS:
        with (
            tempfile.TemporaryDirectory() as folder,
            ClusterGroup(Path(folder), masters=masters, replicas=0) as group,
        ):
            fairque = FairqueSystem(group.url, bench.launcher)
            try:
                for _ in range(bench.reps):
                    _measure(bench, group, fairque, masters)
            finally:
                fairque.close()
    bench.say(
        "one hash tag for every key: the busiest master ran every script call "
        "(sharding over masters is designed in core/keys.py, not built)"
    )


def _measure(bench: Bench, group: ClusterGroup, fairque: FairqueSystem, masters: int) -> None:
    nodes = list(group.ports)
    for name in nodes:
        with group.client(name) as node:
            node.flushall()
    total = bench.sizes.drain * masters
    _fill(fairque, total)
    before = {name: _script_calls(group, name) for name in nodes}
    started = time.perf_counter()
    with fairque.workers(masters) if masters > 1 else fairque.worker():
        rate = measure_drain(fairque.remaining, total, bench.sizes.scenario_cap)
    elapsed = time.perf_counter() - started
    calls = {name: _script_calls(group, name) - before[name] for name in nodes}
    label = f"{masters} master{'s' if masters > 1 else ''}, {masters} worker process(es)"
    note = f"{rate.tasks} tasks in {rate.seconds:.1f} s over {TENANTS} tenants" + (
        " (time cap)" if rate.capped else ""
    )
    bench.figures.add(
        "fairque", SCENARIO, label, rate.per_second, "tasks/s", higher_is_better=True, note=note
    )
    busiest = max(calls.values())
    bench.figures.add(
        "fairque",
        SCENARIO,
        f"{label}: script calls/s of the busiest master",
        busiest / elapsed,
        "calls/s",
        higher_is_better=True,
        note=f"over the workers' whole run ({elapsed:.1f} s, start-up included)",
    )
    share = 100.0 * busiest / max(1, sum(calls.values()))
    per_master = ", ".join(f"{name} {count:,}" for name, count in sorted(calls.items()))
    bench.figures.add(
        "fairque",
        SCENARIO,
        f"{label}: busiest master's share of script calls",
        share,
        "%",
        higher_is_better=False,
        note=f"script calls during the whole drain: {per_master}",
    )


def _fill(fairque: FairqueSystem, total: int) -> None:
    for done in range(0, total, FILL_CHUNK):
        size = min(FILL_CHUNK, total - done)
        tasks = [Task.create(f"t{(done + i) % TENANTS}", func=NOOP) for i in range(size)]
        fairque.queue.push_batch(tasks)


def _script_calls(group: ClusterGroup, name: str) -> int:
    """FCALL (and EVALSHA) calls the node has run since it started."""
    with group.client(name) as node:
        stats = node.info("commandstats")
    return sum(
        int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))
        for command in ("fcall", "evalsha", "eval")
    )
