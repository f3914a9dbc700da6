"""A Redis Cluster failover under load: the master serving fairque's hash slot is killed
(SIGKILL) with tasks queued and running; its replica takes over; the workers (one sync,
one async process), the scheduler process and the producer carry on through
``redis+cluster://``; the killed node is started again and rejoins as the new master's
replica.

Every push was acknowledged with ``durability: replicated`` (FAIRQUE_DURABILITY, which
the worker processes inherit), so every task finishes; each task logs its executions to
a file, and none ran more often than once plus its recorded lease reclaims
(tests/faults/failover.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.cluster_group import ClusterGroup
from tests.faults.conftest import Figures
from tests.faults.failover import failover_under_load
from tests.timing import budget, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]


@pytest.mark.timeout(budget(150))
def test_slot_master_killed_under_load_replicated_tasks_all_finish_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, figures: Figures
) -> None:
    with ClusterGroup(tmp_path / "cluster") as group:

        def fail_over() -> float:
            old_master = group.fairque_master()
            assert old_master is not None
            killed_at = time.monotonic()
            group.kill(old_master)
            new_master = group.wait_failover(old_master, 30)
            seconds = time.monotonic() - killed_at
            group.restart(old_master)  # it rejoins as the new master's replica
            wait_until(lambda: group.replicas_of(new_master) >= 1, 30, "a replica to rejoin")
            return seconds

        failover_under_load(tmp_path, group.url, fail_over, monkeypatch, figures)
