"""Tasks that log each execution, and the tally the fault tests check against the records.

A task runs ``tests.faults.jobs:record``, which RPUSHes its id and a mark of the
execution to :data:`EXECUTIONS` on the server under test (:func:`executions` counts the
marks: a push the client sent again across a server crash is one execution). At the end
every task FINISHED, with
``1 <= executions <= 1 + recoveries`` and ``1 <= attempts <= 1 + recoveries``: it ran,
and every run but the last ended in a reclaim. Executions fall below ``1 + recoveries``
only for claims whose worker was killed before the task started. A lost run counts as an
attempt only once its holder renewed the lease (README, "Delivery"): a worker killed or
stopped before its first renewal costs a recovery, so attempts may be below executions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from fairque import Task, TaskQueue
from fairque.core.models import TaskState

EXECUTIONS = "faults:executions"
"""The list the task body appends to (a test key, outside the queue's prefix)."""


def recording_tasks(
    url: str, count: int, tenants: int, seconds: float, prefix: str = "t", max_retries: int = 1000
) -> list[Task]:
    """``count`` tasks over ``tenants`` users, each logging its run then sleeping."""
    return [
        Task.create(
            f"tenant-{n % tenants:02d}",
            task_id=f"{prefix}{n:04d}",
            func="tests.faults.jobs:record",
            args=[url, EXECUTIONS, f"{prefix}{n:04d}", seconds],
            max_retries=max_retries,
        )
        for n in range(count)
    ]


def executions(queue: TaskQueue) -> Counter[str]:
    """How many times each task ran, from :data:`EXECUTIONS` (distinct marks per id)."""
    marks = {_text(m) for m in queue.redis.lrange(EXECUTIONS, 0, -1)}
    return Counter(mark.split(" ")[0] for mark in marks)


def push_all(queue: TaskQueue, tasks: list[Task], chunk: int = 500) -> None:
    for start in range(0, len(tasks), chunk):
        queue.push_batch(tasks[start : start + chunk])


def finished_count(queue: TaskQueue) -> int:
    return int(queue.redis.zcard(queue.keys.state(TaskState.FINISHED)))


@dataclass
class Tally:
    """What happened to a set of tasks: executions, reclaims, and any broken rule."""

    tasks: int = 0
    executions: int = 0
    reclaims: int = 0
    ran_more_than_once: int = 0
    claimed_not_run: int = 0
    problems: list[str] = field(default_factory=list)


def tally(queue: TaskQueue, tasks: list[Task], runs: Counter[str] | None = None) -> Tally:
    """Check every task against its executions (``runs``: executions per task id, else
    read from :data:`EXECUTIONS`); the problems name the tasks that break a rule (not
    FINISHED, ran twice under one claim, never ran, ...)."""
    if runs is None:
        runs = executions(queue)
    pipe = queue.redis.pipeline(transaction=False)
    for task in tasks:
        pipe.hmget(queue.keys.task(task.task_id), "state", "attempts", "recoveries", "result")
    out = Tally(tasks=len(tasks), executions=sum(runs.values()))
    for task, raw in zip(tasks, pipe.execute(), strict=True):
        state, attempts, recoveries, result = (_text(v) if v else "" for v in raw)
        ran, reclaimed = runs[task.task_id], int(recoveries or 0)
        out.reclaims += reclaimed
        out.ran_more_than_once += ran > 1
        out.claimed_not_run += 1 + reclaimed - ran
        if state != "finished" or result != f'"{task.task_id}"':
            out.problems.append(f"{task.task_id}: {state or 'gone'}, result {result}")
        elif not (1 <= ran <= 1 + reclaimed and 1 <= int(attempts) <= 1 + reclaimed):
            out.problems.append(
                f"{task.task_id}: ran {ran} times, {attempts} attempts, {reclaimed} reclaims"
            )
    return out


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
