"""Run a whole pipeline in this process, without Redis (``fairque dag test``).

Tasks run one at a time in topological order (ties by name), each inside a TaskContext
on a :class:`MemoryXCom`, so XCom and trigger rules behave as on workers. Differences
from a real run, on purpose:

- a failing task is retried at once, with no delay, up to ``max_retries`` times
  (``default_max_retries`` when the task sets none); ``attempts`` counts the tries.
  An import failure or a result that is not JSON fails the task without a retry;
- ``timeout_seconds`` and ``execute_after`` are not enforced;
- external dependencies (``depends_on`` names outside the pipeline) are assumed done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fairque.core.errors import PayloadError, TaskError, WorkerError
from fairque.core.imports import resolve_function
from fairque.core.models import Task, TaskRecord, TaskState, new_task_id, to_json
from fairque.tasks.context import LineageEvent, MemoryXCom, invoke
from fairque.tasks.pipeline import Pipeline
from fairque.tasks.rules import UpstreamCounts, cancel_cause, decide_counts, outcome

logger = logging.getLogger(__name__)


@dataclass
class InProcessRun:
    """The outcome of :func:`run_in_process`, keyed by task name (in execution order)."""

    run_id: str
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    states: dict[str, TaskState] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    lineage: list[LineageEvent] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        """True when every task FINISHED."""
        return all(state is TaskState.FINISHED for state in self.states.values())

    def _end(
        self,
        task: Task,
        state: TaskState,
        error: str | None = None,
        result: Any = None,
        upstream_failed: bool = False,
    ) -> None:
        name = task.name or task.task_id
        attempts = self.attempts.get(name, 0)
        self.tasks[name] = TaskRecord.of(
            task, state=state, attempts=attempts, result=result, upstream_failed=upstream_failed
        )
        self.states[name] = state
        if error is not None:
            self.errors[name] = error


def run_in_process(
    pipeline: Pipeline | Task,
    *,
    conf: Mapping[str, Any] | None = None,
    xcom: MemoryXCom | None = None,
    run_id: str | None = None,
    user_id: str | None = None,
    default_max_retries: int = 0,
    allowed_modules: Sequence[str] = ("*",),
) -> InProcessRun:
    """Run every task of ``pipeline`` here and return the states, results and lineage.

    ``conf`` (JSON) is the run's configuration, visible as ``current_task().conf``;
    ``allowed_modules`` limits which modules plain Tasks' functions are imported from.
    Raises DagError for an invalid graph before anything runs.
    """
    if default_max_retries < 0:
        raise TaskError(f"default_max_retries must be zero or more, not {default_max_retries}")
    graph = pipeline if isinstance(pipeline, Pipeline) else Pipeline.of(pipeline)
    to_json(dict(conf or {}), "conf")
    run = InProcessRun(run_id or f"inprocess-{new_task_id()[:12]}")
    backend = xcom if xcom is not None else MemoryXCom()
    for record in graph.compile(run.run_id, user_id=user_id):
        name = record.name or record.task_id
        upstreams = graph.upstreams(name)
        ended = [outcome(run.states[up], run.tasks[up].upstream_failed) for up in upstreams]
        counts = UpstreamCounts.of(ended)
        if decide_counts(record.trigger_rule, counts) == "run":
            _execute(run, record, backend, conf, default_max_retries, allowed_modules)
        else:
            cause = cancel_cause(record.trigger_rule, counts)
            reason = ", ".join(f"{up} {state}" for up, state in zip(upstreams, ended, strict=True))
            run._end(
                record,
                TaskState.CANCELED,
                f"canceled by {record.trigger_rule}: {reason} ({cause})",
                upstream_failed=cause == "upstream_failed",
            )
    run.lineage = backend.lineage
    return run


def _execute(
    run: InProcessRun,
    task: Task,
    backend: MemoryXCom,
    conf: Mapping[str, Any] | None,
    default_max_retries: int,
    allowed_modules: Sequence[str],
) -> None:
    name = task.name or task.task_id
    try:
        function = _function_of(task, allowed_modules)
    except (TaskError, WorkerError) as e:
        run.attempts[name] = 0
        run._end(task, TaskState.FAILED, f"{type(e).__name__}: {e}")
        return
    retries = default_max_retries if task.max_retries is None else task.max_retries
    error = ""
    for attempt in range(1, retries + 2):
        run.attempts[name] = attempt
        try:
            result = invoke(task, function, backend, conf)
        except Exception as e:
            logger.info("task %s attempt %d failed: %s: %s", name, attempt, type(e).__name__, e)
            error = f"{type(e).__name__}: {e}"
            continue
        try:
            to_json(result, f"result of task {name!r}")
        except PayloadError as e:
            run._end(task, TaskState.FAILED, str(e))
            return
        run.results[name] = result
        run._end(task, TaskState.FINISHED, result=result)
        return
    run._end(task, TaskState.FAILED, error)


def _function_of(task: Task, allowed_modules: Sequence[str]) -> Callable[..., Any]:
    function: Callable[..., Any] | None = getattr(task, "_function", None)  # a FunctionTask's
    if function is not None:
        return function
    if task.func is None:
        raise TaskError(
            f"task {task.name or task.task_id!r} has no function; a payload-only task needs "
            "a TaskHandler subclass and cannot run in-process"
        )
    return resolve_function(task.func, allowed_modules)
