"""A Sentinel failover under load: the master is killed (SIGKILL) with tasks queued and
running; the sentinels promote a replica; the workers (one sync, one async process),
the scheduler process and the producer carry on through ``redis+sentinel://``.

Every push was acknowledged with ``durability: replicated`` (FAIRQUE_DURABILITY, which
the worker processes inherit), so every task finishes; each task logs its executions to
a file (not to Redis, whose unreplicated writes a failover may drop), and none ran more
often than once plus its recorded lease reclaims (tests/faults/failover.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.faults.conftest import Figures
from tests.faults.failover import failover_under_load
from tests.sentinel_group import SentinelGroup
from tests.timing import budget, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]


@pytest.mark.timeout(budget(120))
def test_master_killed_under_load_replicated_tasks_all_finish_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, figures: Figures
) -> None:
    with SentinelGroup(tmp_path / "group", replicas=2) as group:

        def fail_over() -> float:
            killed_at = time.monotonic()
            group.kill("master")
            new_master = group.wait_promoted(30)
            seconds = time.monotonic() - killed_at
            wait_until(lambda: group.replicas_of(new_master) >= 1, 30, "a replica to rejoin")
            return seconds

        failover_under_load(tmp_path, group.url, fail_over, monkeypatch, figures)
