"""Runs: a pipeline (or any graph of tasks) enqueued as one unit, and its handle.

``queue.enqueue(pipeline)`` compiles the graph into task records ``{run_id}:{name}``
and writes them all in one atomic push, so the same pipeline can run many times at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from fairque.core.errors import QueueError
from fairque.core.models import Task, TaskState

if TYPE_CHECKING:
    from fairque.queue.async_queue import AsyncTaskQueue
    from fairque.queue.sync_queue import TaskQueue


class Compilable(Protocol):
    """Anything that turns into a run's task records (a Pipeline, a DAG)."""

    def compile(self, run_id: str, *, user_id: str | None = None) -> list[Task]:
        """Task records of one run, upstreams first."""
        ...


def new_run_id() -> str:
    """A fresh run id."""
    return f"run_{uuid.uuid4().hex[:16]}"


def compile_run(item: Compilable | Task, run_id: str, user_id: str | None) -> list[Task]:
    """The records of one run of ``item``; a lone Task becomes a run of one task."""
    if isinstance(item, Task):
        name = item.label
        changes: dict[str, Any] = {"task_id": f"{run_id}:{name}", "run_id": run_id, "name": name}
        if user_id is not None:
            changes["user_id"] = user_id
        return [replace(item, **changes)]
    return item.compile(run_id, user_id=user_id)


def ended_result(task: Task) -> Any:
    """The result of a FINISHED task; QueueError saying how it ended otherwise."""
    if task.state is TaskState.FINISHED:
        return task.result
    detail = f": {task.error.get('message')}" if task.error else ""
    raise QueueError(f"task {task.label!r} has no result: it is {task.state}{detail}")


@dataclass(frozen=True)
class RunHandle:
    """A run in Redis: its id and its tasks by name."""

    queue: TaskQueue
    run_id: str
    task_ids: Mapping[str, str]

    def states(self) -> dict[str, TaskState | None]:
        """Each task's current state, by name."""
        states = self.queue.run_pipeline(self.queue.calls.states(list(self.task_ids.values())))
        return {name: states[i] for name, i in self.task_ids.items()}

    def wait(self, timeout: float = 30.0) -> dict[str, TaskState | None]:
        """Wait until every task ended; returns each one's state by name."""
        states = self.queue.wait_for(list(self.task_ids.values()), timeout=timeout)
        return {name: states[i] for name, i in self.task_ids.items()}

    def task(self, name: str) -> Task:
        """The record of the task called ``name``."""
        return self.queue.get_task(self._id(name))

    def result(self, name: str) -> Any:
        """The result of the task called ``name`` (QueueError if it did not finish)."""
        return ended_result(self.task(name))

    def lineage(self) -> list[dict[str, Any]]:
        """Every XCom push and pull of the run, oldest first."""
        return self.queue.run_pipeline(self.queue.calls.lineage(self.run_id))

    def _id(self, name: str) -> str:
        try:
            return self.task_ids[name]
        except KeyError:
            raise QueueError(f"run {self.run_id} has no task {name!r}") from None


@dataclass(frozen=True)
class AsyncRunHandle:
    """The asyncio form of :class:`RunHandle`."""

    queue: AsyncTaskQueue
    run_id: str
    task_ids: Mapping[str, str]

    async def states(self) -> dict[str, TaskState | None]:
        """Each task's current state, by name."""
        call = self.queue.calls.states(list(self.task_ids.values()))
        states = await self.queue.run_pipeline(call)
        return {name: states[i] for name, i in self.task_ids.items()}

    async def wait(self, timeout: float = 30.0) -> dict[str, TaskState | None]:
        """Wait until every task ended; returns each one's state by name."""
        states = await self.queue.wait_for(list(self.task_ids.values()), timeout=timeout)
        return {name: states[i] for name, i in self.task_ids.items()}

    async def result(self, name: str) -> Any:
        """The result of the task called ``name`` (QueueError if it did not finish)."""
        if name not in self.task_ids:
            raise QueueError(f"run {self.run_id} has no task {name!r}")
        return ended_result(await self.queue.get_task(self.task_ids[name]))

    async def lineage(self) -> list[dict[str, Any]]:
        """Every XCom push and pull of the run, oldest first."""
        return await self.queue.run_pipeline(self.queue.calls.lineage(self.run_id))
