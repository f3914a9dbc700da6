"""WorkerCore's maintenance timer: bounded calls, and at once again while more is due."""

from __future__ import annotations

from fairque import FairQueueConfig
from fairque.worker.runtime import WorkerCore


def _core(step_size: int) -> WorkerCore:
    config = FairQueueConfig.create_default(
        redis="redis://localhost:6379/0", step_size=step_size, poll_interval_seconds=60
    )
    return WorkerCore(config)


def test_promote_and_reclaim_take_half_a_step_per_call() -> None:
    assert [_core(n).maintenance_limit for n in (1, 2, 100, 101)] == [1, 1, 50, 50]


def test_a_call_that_did_its_whole_limit_brings_maintenance_back_at_once() -> None:
    core = _core(10)
    assert core.maintenance_due() and not core.maintenance_due()  # then every 60 s
    core.maintained(promoted=4, reclaimed=0)  # less than the limit (5): nothing left
    assert not core.maintenance_due()
    core.maintained(promoted=0, reclaimed=5)  # a full call: more may be due
    assert core.maintenance_due() and core.wait_time() >= 0.0
    assert not core.maintenance_due()


def test_pending_steps_keep_the_loop_from_sleeping() -> None:
    core = _core(10)
    core.maintenance_due(), core.heartbeat_due()  # both timers set ahead
    assert core.wait_time() > 0
    core.steps_left = True
    assert core.wait_time() == 0.0
