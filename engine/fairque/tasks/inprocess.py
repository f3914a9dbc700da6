"""Run a whole pipeline in this process, without Redis (``fairque dag test``).

Tasks run one at a time in topological order (ties by name), each inside a TaskContext
on a :class:`MemoryXCom`, so XCom and trigger rules behave as on workers. Differences
from a real run, on purpose:

- as on a worker, a failing task is retried up to ``max_retries`` times
  (``default_max_retries`` when the task sets none) after ``retry_delay_seconds *
  2^(attempt-1)`` (``default_retry_delay_seconds`` when unset, at most
  ``retry_backoff_max_seconds``; no jitter: the upper bound of a worker's wait);
  ``attempts`` counts the tries. An import failure, a result or XCom value that is not
  JSON fails the task without a retry (:func:`~fairque.core.errors.is_retryable`);
- as on a worker, an attempt running longer than ``timeout_seconds`` fails with
  TaskTimeoutError (and is retried); its thread cannot be killed, so it is left running
  in the background with ``cancel_requested`` set, and its XCom pushes are refused
  from then on (a worker would have lost its claim);
- as on a worker, a sensor saying "not yet" is poked again every
  ``poke_interval_seconds`` until its ``timeout_seconds``, and a branch skips the
  direct downstream tasks it did not choose (:mod:`fairque.tasks.dynamic`);
- different: ``execute_after`` is not waited for, tasks run one at a time (a sensor
  waits in this process), and external dependencies (``depends_on`` names outside the
  pipeline) are assumed done.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from fairque.core import refs
from fairque.core.errors import (
    BranchError,
    PayloadError,
    SensorTimeoutError,
    TaskError,
    TaskTimeoutError,
    WorkerError,
    XComError,
    is_retryable,
)
from fairque.core.graph import reachable
from fairque.core.imports import resolve_function
from fairque.core.models import Task, TaskRecord, TaskState, new_task_id, to_json
from fairque.tasks.context import (
    Attempt,
    LineageEvent,
    MemoryXCom,
    XComBackend,
    attempting,
    invoke,
)
from fairque.tasks.dataflow import map_problem
from fairque.tasks.dynamic import chosen_branches
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
    attempt_errors: dict[str, list[str]] = field(default_factory=dict)
    lineage: list[LineageEvent] = field(default_factory=list)

    def instances(self, name: str) -> list[str]:
        """The instances ``name[i]`` of the mapped task ``name`` that ran, in order."""
        return [n for n in self.states if n.startswith(f"{name}[") and n.endswith("]")]

    @property
    def succeeded(self) -> bool:
        """True when every task FINISHED or was skipped (by a trigger rule, a branch or a
        soft_fail sensor), as a run on the queue succeeds."""
        return all(
            state is TaskState.FINISHED or self.tasks[name].skipped
            for name, state in self.states.items()
        )

    def _end(
        self,
        task: Task,
        state: TaskState,
        error: str | None = None,
        result: Any = None,
        upstream_failed: bool = False,
        skipped: bool = False,
    ) -> None:
        name = task.name or task.task_id
        attempts = self.attempts.get(name, 0)
        self.tasks[name] = TaskRecord.of(
            task,
            state=state,
            attempts=attempts,
            result=result,
            upstream_failed=upstream_failed,
            skipped=skipped,
            map_index=getattr(task, "map_index", None),
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
    default_retry_delay_seconds: float = 0.0,
    retry_backoff_max_seconds: float = 3600.0,
) -> InProcessRun:
    """Run every task of ``pipeline`` here and return the states, results and lineage.

    A mapped task runs as its instances ``NAME[i]``, one after the other, as on workers
    (see :func:`_run_mapped`).

    ``conf`` (JSON) is the run's configuration, visible as ``current_task().conf``;
    ``allowed_modules`` limits which modules plain Tasks' functions are imported from.
    Retries and timeouts are as on a worker (see the module's notes); the ``default_*``
    and ``retry_backoff_max_seconds`` arguments are the queue settings of the same names.
    Raises DagError for an invalid graph before anything runs.
    """
    if default_max_retries < 0:
        raise TaskError(f"default_max_retries must be zero or more, not {default_max_retries}")
    if default_retry_delay_seconds < 0 or retry_backoff_max_seconds < 0:
        raise TaskError("retry delays must be zero or more")
    retry = _Retry(default_max_retries, default_retry_delay_seconds, retry_backoff_max_seconds)
    graph = pipeline if isinstance(pipeline, Pipeline) else Pipeline.of(pipeline)
    to_json(dict(conf or {}), "conf")
    run = InProcessRun(run_id or f"inprocess-{new_task_id()[:12]}")
    backend = xcom if xcom is not None else MemoryXCom()
    skips: dict[str, str] = {}  # tasks a branch did not choose -> why
    records = graph.compile(run.run_id, user_id=user_id)
    for record in records:
        name = record.name or record.task_id
        if name in skips:
            run._end(record, TaskState.CANCELED, skips[name], skipped=True)
            continue
        upstreams = graph.upstreams(name)
        ended = [outcome(run.states[up], run.tasks[up].upstream_failed) for up in upstreams]
        counts = UpstreamCounts.of(ended)
        if decide_counts(record.trigger_rule, counts) == "run":
            if record.expand:
                _run_mapped(
                    run,
                    record,
                    lambda t: _execute(run, t, backend, conf, retry, allowed_modules),
                    backend,
                )
            else:
                _execute(run, record, backend, conf, retry, allowed_modules)
                _refuse_unmappable(run, record, records)
            if record.branch and run.states[name] is TaskState.FINISHED:
                _follow_branch(run, graph, record, skips)
        else:
            cause = cancel_cause(record.trigger_rule, counts)
            reason = ", ".join(f"{up} {run.tasks[up].display_state}" for up in upstreams)
            run._end(
                record,
                TaskState.CANCELED,
                f"canceled by {record.trigger_rule}: {reason} ({cause})",
                upstream_failed=cause == "upstream_failed",
                skipped=cause == "skipped",
            )
    run.lineage = backend.lineage
    return run


def _follow_branch(run: InProcessRun, graph: Pipeline, task: Task, skips: dict[str, str]) -> None:
    """After branch ``task`` finished: skip its direct downstream tasks it did not choose
    (but not those downstream of a chosen one), or fail it (BranchError) as a worker would."""
    name = task.name or task.task_id
    downstream = sorted(b for a, b in graph.edges if a == name)
    try:
        chosen = chosen_branches(name, run.results[name], downstream)
    except BranchError as e:
        del run.results[name]
        run._end(task, TaskState.FAILED, f"{type(e).__name__}: {e}")
        return
    kept = set(chosen).union(*(reachable(graph.edges, c) for c in chosen))
    why = f"branch {name} followed {', '.join(chosen) or 'no task'}"
    for other in downstream:
        if other not in kept:
            skips[other] = why


def _mapped_over(mapped: Task, run: InProcessRun) -> tuple[str, Any]:
    """The source task of a mapped task and the value it maps over (None when the
    source did not finish or has no such key)."""
    (ref,) = refs.references(mapped.expand)
    value = run.results.get(ref.task)
    if ref.path is not None:
        value = value.get(ref.path) if isinstance(value, dict) else None
    return ref.task, value


def _refuse_unmappable(run: InProcessRun, task: Task, records: Sequence[Task]) -> None:
    """Fail a finished task whose result a mapped task cannot map over (as
    ``lua/_mapping.lua`` does on workers)."""
    name = task.name or task.task_id
    if run.states.get(name) is not TaskState.FINISHED:
        return
    for mapped in records:
        if not mapped.expand or refs.references(mapped.expand)[0].task != name:
            continue
        problem = map_problem(_mapped_over(mapped, run)[1], mapped.max_map_length)
        if problem:
            message = f"MapError: {mapped.name} maps over the return value of {name}: {problem}"
            del run.results[name]
            run._end(task, TaskState.FAILED, message)
            return


def _run_mapped(
    run: InProcessRun, mapped: Task, execute: Callable[[Task], None], backend: MemoryXCom
) -> None:
    """Run a mapped task's instances ``NAME[i]`` (``map_index`` i, one per element, in
    order), then end it as workers do: FINISHED with their results in order (pushed to
    XCom under its key), FAILED when one failed, CANCELED (skipped) for an empty list."""
    name = mapped.name or mapped.task_id
    source, items = _mapped_over(mapped, run)
    if run.states.get(source) is not TaskState.FINISHED or not items:
        why = "mapped over an empty list"
        if items != []:
            ended = run.tasks[source].display_state if source in run.tasks else "deleted"
            why = f"nothing to map over: {source} ended {ended}"
        run._end(mapped, TaskState.CANCELED, f"{why} (skipped)", skipped=True)
        return
    for i in range(len(items)):
        instance = replace(
            TaskRecord.of(mapped, map_index=i),
            task_id=f"{mapped.task_id}[{i}]",
            name=f"{name}[{i}]",
            xcom_push_key=None,
        )
        execute(instance)
    names = [f"{name}[{i}]" for i in range(len(items))]
    bad = [f"{n} {run.states[n]}" for n in names if run.states[n] is not TaskState.FINISHED]
    if bad:
        run._end(
            mapped,
            TaskState.FAILED,
            f"{len(bad)} of {len(names)} instances did not finish: {', '.join(bad[:10])}",
        )
        return
    results = [run.results[n] for n in names]
    if mapped.xcom_push_key is not None:
        backend.push(mapped.xcom_scope, mapped.xcom_push_key, results, name)
    run.results[name] = results
    run._end(mapped, TaskState.FINISHED, result=results)


@dataclass(frozen=True)
class _Retry:
    default_max_retries: int
    default_delay: float
    backoff_max: float

    def delay(self, task: Task, attempt: int) -> float:
        """The wait before the retry after ``attempt`` (as in lua/_outcomes.lua, the
        upper bound of its jitter)."""
        base = self.default_delay if task.retry_delay_seconds is None else task.retry_delay_seconds
        return float(min(self.backoff_max, base * 2 ** (attempt - 1)))


class _Fenced:
    """An XComBackend refusing pushes once its attempt was given up (timed out)."""

    def __init__(self, backend: XComBackend, attempt: Attempt) -> None:
        self.backend = backend
        self.attempt = attempt

    def pull(self, scope: str, key: str, consumer: str) -> Any:
        return self.backend.pull(scope, key, consumer)

    def push(self, scope: str, key: str, value: Any, producer: str) -> None:
        if self.attempt.cancel_requested:
            raise XComError(f"task {producer!r} timed out; its XCom push of {key!r} is refused")
        self.backend.push(scope, key, value, producer)


def _execute(
    run: InProcessRun,
    task: Task,
    backend: MemoryXCom,
    conf: Mapping[str, Any] | None,
    retry: _Retry,
    allowed_modules: Sequence[str],
) -> None:
    name = task.name or task.task_id
    try:
        function = _function_of(task, allowed_modules)
    except (TaskError, WorkerError) as e:
        run.attempts[name] = 0
        run._end(task, TaskState.FAILED, f"{type(e).__name__}: {e}")
        return
    retries = retry.default_max_retries if task.max_retries is None else task.max_retries
    errors = run.attempt_errors.setdefault(name, [])
    first_poke: list[float] = []  # a sensor's, kept across retries
    for attempt in range(1, retries + 2):
        run.attempts[name] = attempt
        try:
            result = _attempt(task, function, backend, conf, attempt)
            if task.sensor is not None:
                result = _poke_until_met(task, result, first_poke, function, backend, conf, attempt)
            to_json(result, f"result of task {name!r}")
        except SensorTimeoutError as e:
            if task.sensor is not None and task.sensor["soft_fail"]:
                run._end(task, TaskState.CANCELED, f"{e} (soft_fail: skipped)", skipped=True)
                return
            errors.append(f"{type(e).__name__}: {e}")
            break
        except Exception as e:
            logger.info("task %s attempt %d failed: %s: %s", name, attempt, type(e).__name__, e)
            errors.append(str(e) if isinstance(e, PayloadError) else f"{type(e).__name__}: {e}")
            if not is_retryable(e) or attempt > retries:
                break
            time.sleep(retry.delay(task, attempt))
            continue
        run.results[name] = result
        run._end(task, TaskState.FINISHED, result=result)
        return
    run._end(task, TaskState.FAILED, errors[-1])


def _poke_until_met(
    task: Task,
    result: Any,
    first_poke: list[float],
    function: Callable[..., Any],
    backend: MemoryXCom,
    conf: Mapping[str, Any] | None,
    number: int,
) -> Any:
    """A sensor's result once met: while it says "not yet" (False or None), sleep
    ``poke_interval_seconds`` (never past the timeout) and poke again, as workers do;
    SensorTimeoutError ``timeout_seconds`` after the first "not yet"."""
    assert task.sensor is not None
    interval, timeout = task.sensor["poke_interval_seconds"], task.sensor["timeout_seconds"]
    while result is False or result is None:
        now = time.monotonic()
        if not first_poke:
            first_poke.append(now)
        deadline = first_poke[0] + timeout
        if now >= deadline:
            raise SensorTimeoutError(
                f"sensor {task.name or task.task_id} timed out: its condition was not met "
                f"within {timeout:g} s of its first poke"
            )
        time.sleep(min(interval, deadline - now))
        result = _attempt(task, function, backend, conf, number)
    return result


def _attempt(
    task: Task,
    function: Callable[..., Any],
    backend: MemoryXCom,
    conf: Mapping[str, Any] | None,
    number: int,
) -> Any:
    """One attempt: in this thread without a timeout, else in a daemon thread given up
    (TaskTimeoutError, ``cancel_requested`` set) after ``timeout_seconds``."""
    if not task.timeout_seconds:
        return invoke(task, function, backend, conf)
    attempt = Attempt(TaskRecord.of(task, attempts=number))
    outcome: dict[str, Any] = {}

    def target() -> None:
        with attempting(attempt):
            try:
                outcome["result"] = invoke(task, function, _Fenced(backend, attempt), conf)
            except BaseException as e:  # handed to the caller
                outcome["error"] = e

    thread = threading.Thread(target=target, name=f"dag-test-{task.name}", daemon=True)
    thread.start()
    thread.join(task.timeout_seconds)
    if thread.is_alive():
        attempt.cancel_requested = True
        raise TaskTimeoutError(
            f"task {task.name or task.task_id!r} ran longer than its timeout of "
            f"{task.timeout_seconds} s"
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


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
