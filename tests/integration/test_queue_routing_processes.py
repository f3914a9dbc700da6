"""Queue routing on real worker processes: a mixed deployment where one worker cannot
import a task module never receives that module's tasks."""

from __future__ import annotations

import pytest

from fairque import FairQueueConfig, Task, TaskQueue
from fairque.core.models import TaskState
from tests.integration.procs import Procs
from tests.timing import budget, wait_until

pytestmark = pytest.mark.slow

STARTUP = 60.0


def test_a_worker_that_cannot_import_a_module_never_receives_its_tasks(
    procs: Procs, redis_url: str
) -> None:
    queue = TaskQueue(FairQueueConfig.create_default(redis=redis_url))
    plain_ids = queue.push_batch(
        [Task.create("u", func="tests.integration.jobs:noop") for _ in range(40)]
    )["task_ids"]
    gpu_ids = queue.push_batch(
        [
            Task.create("u", func="tests.integration.gpu_jobs:render", kwargs={"n": i}, queue="gpu")
            for i in range(20)
        ]
    )["task_ids"]
    # The worker without the GPU module starts first and serves the default queue alone
    # for a while: were it to claim a gpu task, that task would fail on import.
    cpu = procs.worker("cpu", "--queues", "default", "-c", "4")

    def plain_done() -> int:
        states = queue.run_pipeline(queue.calls.states(plain_ids))
        return sum(1 for s in states.values() if s is TaskState.FINISHED)

    wait_until(lambda: plain_done() >= 10, budget(STARTUP), procs.tails)
    procs.worker("gpu", "--queues", "gpu,default", "-c", "4", env={"FAIRQUE_TEST_GPU": "1"})

    def all_ended() -> bool:
        states = queue.run_pipeline(queue.calls.states(plain_ids + gpu_ids))
        return all(s is not None and not s.is_active for s in states.values())

    wait_until(all_ended, budget(STARTUP), procs.tails)
    records = queue.run_pipeline(queue.calls.task_records(gpu_ids))
    assert all(r is not None for r in records)
    assert [(r.state, r.worker_id, r.result) for r in records if r is not None] == [
        (TaskState.FINISHED, "gpu", 2 * i) for i in range(20)
    ]
    plain = queue.run_pipeline(queue.calls.task_records(plain_ids))
    assert all(r is not None and r.state is TaskState.FINISHED for r in plain)
    assert "ImportError" not in cpu.output() and "gpu_jobs" not in cpu.output()
    queue.close()
