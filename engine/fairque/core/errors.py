"""The exception tree of fairque: one root, one base per subsystem.

Every error raised on purpose by fairque derives from :class:`FairQueueError`;
Redis failures are wrapped at the boundary (``raise RedisUnavailableError(...) from e``).
"""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from itertools import islice
from typing import Any

SHORT_REPR = 60
"""About how many characters of a user's value an error message quotes."""


class _Short(reprlib.Repr):
    """reprlib's bounded repr, which slices a long string or list before quoting it; a
    huge int and a big dict are not converted or sorted whole either."""

    def __init__(self) -> None:
        super().__init__()
        self.maxstring = self.maxother = self.maxlong = SHORT_REPR
        self.maxlevel = 3

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 4 * SHORT_REPR:  # str() of it is slow, or refused over 4300 digits
            return f"<int of {x.bit_length()} bits>"
        return super().repr_int(x, level)

    def repr_dict(self, x: dict[Any, Any], level: int) -> str:
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        items = islice(x.items(), self.maxdict)
        pieces = [f"{self.repr1(k, level - 1)}: {self.repr1(v, level - 1)}" for k, v in items]
        if len(x) > self.maxdict:
            pieces.append("...")
        return "{" + ", ".join(pieces) + "}"


_SHORT = _Short()


def shorten(value: object) -> str:
    """The repr of ``value`` for an error message: at most about 60 characters, built
    without making the whole repr of a big value first (a 1 MB string is cut, not
    copied). Every error that quotes a user's value quotes it through this."""
    return _SHORT.repr(value)


class FairQueueError(Exception):
    """Root of every error fairque raises on purpose."""


# --- configuration -------------------------------------------------------------------


class ConfigError(FairQueueError):
    """A configuration value or file is invalid."""


class ConfigFileError(ConfigError):
    """A configuration file is unreadable or does not match its schema."""

    def __init__(self, path: str, problems: Sequence[str]) -> None:
        self.path = path
        self.problems = list(problems)
        super().__init__(f"{path}: " + "; ".join(self.problems))


class ConfigValueError(ConfigError, ValueError):
    """One configuration value is invalid; ``path`` locates it, e.g. ``("workers", 1, "port")``."""

    def __init__(self, path: Sequence[str | int], problem: str) -> None:
        self.path = tuple(path)
        self.problem = problem
        super().__init__(f"{self.field} {problem}" if self.path else problem)

    @property
    def field(self) -> str:
        """The path as text, e.g. ``workers[1].lease_seconds``."""
        text = ""
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
        return text

    def under(self, *prefix: str | int) -> ConfigValueError:
        """The same problem, located inside an enclosing section."""
        return ConfigValueError((*prefix, *self.path), self.problem)


# --- connection ----------------------------------------------------------------------


class RedisUnavailableError(FairQueueError):
    """The Redis/Valkey server cannot be reached, stopped answering or is not ready
    (loading, busy, read-only replica, failing over): a transient error, worth a retry."""


class ServerError(FairQueueError):
    """The embedded server could not be started, found or stopped."""


# --- tasks and queue -----------------------------------------------------------------


class TaskError(FairQueueError):
    """A task definition or value is invalid."""


class InvalidPriorityError(TaskError, ValueError):
    """A priority is not one of 1..6 or a known priority name."""


class InvalidUserIdError(TaskError, ValueError):
    """A user (tenant) id is empty, not a string, too long or has forbidden characters."""


class PayloadError(TaskError, ValueError):
    """A payload, argument or result is not JSON-serialisable or is too large."""


class QueueError(FairQueueError):
    """A queue operation was refused."""


class TaskNotFoundError(QueueError, KeyError):
    """No task with this id exists."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(task_id)

    def __str__(self) -> str:
        return f"no task with id {self.task_id!r}"


class DuplicateTaskError(QueueError):
    """A task with this id is still active (queued, started, deferred or scheduled)."""

    def __init__(self, task_id: str, state: str) -> None:
        self.task_id = task_id
        self.state = state
        super().__init__(
            f"task id {task_id!r} is still active (state {state}); "
            "use another task_id or wait for it to end"
        )


class RunNotFoundError(QueueError, KeyError):
    """No run with this id exists."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(run_id)

    def __str__(self) -> str:
        return f"no run with id {self.run_id!r}"


class RunExistsError(QueueError):
    """A run with this id exists, or it is a scheduler's tick its schedule's cursor
    already passed (a tick fires once, even after retention forgot its run)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"run {run_id!r} already exists")


class BatchGoneError(QueueError):
    """A large batch was given up before its commit: its staging timeout
    (``queue.staging_timeout_seconds``) passed between two of its steps, so its staged
    tasks are being taken back and nothing of it was queued. Push it again."""

    def __init__(self, batch: str) -> None:
        self.batch = batch
        super().__init__(
            f"batch {batch!r} was given up before its commit (its staging timeout "
            "passed): nothing of it was queued; push it again"
        )


class UnknownPoolError(QueueError):
    """A task names a pool that was never declared (``fairque pool set NAME --slots N``,
    ``queue.set_pool``): nothing of the push is written."""

    def __init__(self, task_id: str, pool: str) -> None:
        self.task_id = task_id
        self.pool = pool
        super().__init__(
            f"task {task_id!r} names pool {pool!r}, which is not declared; declare it first "
            f"(fairque pool set {pool} --slots N, or queue.set_pool({pool!r}, slots=N))"
        )


class PoolError(QueueError):
    """A pool command with a bad name or slot count."""


class InvalidStateError(QueueError):
    """The operation does not apply to the task in its current state."""

    def __init__(self, task_id: str, state: str, operation: str) -> None:
        self.task_id = task_id
        self.state = state
        self.operation = operation
        super().__init__(f"cannot {operation} task {task_id!r}: it is {state}")


class ClearError(QueueError):
    """A run's tasks cannot be cleared (nothing to clear, a task still active or gone, an
    unknown task name); nothing was changed."""

    def __init__(self, run_id: str, reason: str) -> None:
        self.run_id = run_id
        self.reason = reason
        super().__init__(f"cannot clear run {run_id!r}: {reason}")


class RunEndedError(QueueError):
    """The operation would rewrite the history of a run that has ended (e.g. cancel a
    run that succeeded); nothing was changed."""

    def __init__(self, run_id: str, state: str, operation: str) -> None:
        self.run_id = run_id
        self.state = state
        self.operation = operation
        super().__init__(
            f"cannot {operation} run {run_id!r}: it has ended ({state}); "
            "an ended run's history is not rewritten"
        )


class RedisCommandError(QueueError):
    """Redis refused a command for a reason a retry cannot mend (a bug or corrupted
    data, e.g. WRONGTYPE); ``operation`` names what was attempted."""

    def __init__(self, operation: str, message: str) -> None:
        self.operation = operation
        self.message = message
        super().__init__(f"cannot {operation}: Redis refused the command: {message}")


class ScriptError(RedisCommandError):
    """A Lua script raised an error (a bug in the script or in its arguments, or a key
    of the wrong type); ``script`` is the script's name (``pop``, ``settle``, ...)."""

    def __init__(self, script: str, message: str) -> None:
        self.script = script
        super().__init__(f"run {script}", message)


class NotReplicatedError(QueueError):
    """With ``durability: replicated``, a push that no replica confirmed in time.

    The push itself was done: the tasks (``task_ids``) exist on the master and are
    served as usual, but a failover before a replica copies them would lose them.
    Pushing them again is refused as a duplicate while they are active."""

    def __init__(self, task_ids: Sequence[str], timeout_ms: int) -> None:
        self.task_ids = list(task_ids)
        self.timeout_ms = timeout_ms
        shown = ", ".join(repr(t) for t in self.task_ids[:5])
        more = f" and {len(self.task_ids) - 5} more" if len(self.task_ids) > 5 else ""
        super().__init__(
            f"push of task {shown}{more} was not confirmed by a replica within "
            f"{timeout_ms} ms (durability: replicated): the task was written on the master "
            "and may still exist, but a failover now could lose it; check that a replica "
            "is connected (INFO replication), or raise replication_timeout_seconds"
        )


class LeaseLostError(QueueError):
    """The caller no longer holds the task's lease (expired, reclaimed or fenced)."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(
            f"lease on task {task_id!r} was lost: it expired and was reclaimed, "
            "or the task was canceled or deleted"
        )


# --- workers -------------------------------------------------------------------------


class WorkerError(FairQueueError):
    """A worker could not run a task or keep running."""


class SensorTimeoutError(TaskError):
    """A sensor's condition was not met within its ``timeout_seconds`` (not retried)."""


class BranchError(TaskError):
    """A branch task named a task that is not one of its direct downstream tasks, or
    returned something else than task names (not retried)."""


class TaskImportError(WorkerError):
    """A task's function cannot be imported, or its module is not allowed."""


class TaskTimeoutError(WorkerError):
    """A task ran longer than its ``timeout_seconds``."""


class WorkerShutdownError(WorkerError):
    """A stopping worker could not reach Redis to hand back its tasks before its grace
    period ended, and gave up: ``task_ids`` are the tasks it still held (running, or
    ended with their outcome unrecorded); their leases bring them back."""

    def __init__(self, worker_id: str, task_ids: Sequence[str], cause: BaseException) -> None:
        self.worker_id = worker_id
        self.task_ids = list(task_ids)
        held = ", ".join(self.task_ids) or "none"
        super().__init__(
            f"worker {worker_id} stopped without handing back its tasks ({held}): {cause}; "
            "they return to their queues when their leases expire"
        )


# --- workflows: pipelines and DAGs ---------------------------------------------------


class DagError(FairQueueError):
    """A pipeline or DAG definition is invalid."""


class DagCycleError(DagError):
    """The dependencies form a cycle; ``cycle`` lists it, first node repeated at the end."""

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = list(cycle)
        super().__init__("dependency cycle: " + " -> ".join(self.cycle))


class UnknownDependencyError(DagError):
    """A task depends on a task that does not exist in its run or queue."""

    def __init__(self, task: str, missing: Sequence[str]) -> None:
        self.task = task
        self.missing = list(missing)
        super().__init__(
            f"task {task!r} depends on {', '.join(repr(m) for m in self.missing)}, "
            "which does not exist in this run or queue"
        )


class XComError(FairQueueError):
    """An XCom value is missing, not JSON, too large, or used outside a task."""


class XComNotFoundError(XComError):
    """No XCom value is stored under ``key`` in ``scope`` (a run id or ``user:<id>``)."""

    def __init__(self, scope: str, key: str) -> None:
        self.scope = scope
        self.key = key
        super().__init__(
            f"no XCom value for key {key!r} in scope {scope!r}; check that an upstream task "
            "pushed it (and ran first), or pass a default to xcom_pull"
        )


# --- DAG files -----------------------------------------------------------------------


class DagFileError(DagError):
    """A DAG file cannot be read or parsed; ``problems`` lists what is wrong."""

    def __init__(self, path: str, problems: Sequence[str]) -> None:
        self.path = path
        self.problems = list(problems)
        super().__init__(f"{path}: " + "; ".join(self.problems))


class DagConfError(DagError, ValueError):
    """A run's conf does not match the DAG's params; ``problems`` lists every mismatch."""

    def __init__(self, dag_id: str, problems: Sequence[str]) -> None:
        self.dag_id = dag_id
        self.problems = list(problems)
        super().__init__(f"conf for DAG {dag_id!r} is invalid: " + "; ".join(self.problems))


class FlowSyntaxError(DagError):
    """A ``flow`` expression does not parse; ``column`` (1-based) is where it broke."""

    def __init__(self, expression: str, column: int, found: str, expected: str) -> None:
        self.expression = expression
        self.column = column
        self.found = found
        self.expected = expected
        super().__init__(f"flow: unexpected {found} at column {column} (expected {expected})")


class DagNotFoundError(DagError, KeyError):
    """No DAG with this id was loaded."""

    def __init__(self, dag_id: str, hint: str = "") -> None:
        self.dag_id = dag_id
        self.hint = hint
        super().__init__(dag_id)

    def __str__(self) -> str:
        return f"no DAG with id {self.dag_id!r}{self.hint}"


# --- scheduler -----------------------------------------------------------------------


class SchedulerError(FairQueueError):
    """A schedule is invalid or the scheduler cannot run."""


class CronError(SchedulerError, ValueError):
    """A cron expression or time zone is invalid."""


class ScheduleNotFoundError(SchedulerError, KeyError):
    """No schedule with this id exists."""

    def __init__(self, schedule_id: str) -> None:
        self.schedule_id = schedule_id
        super().__init__(schedule_id)

    def __str__(self) -> str:
        return f"no schedule with id {self.schedule_id!r}"


def is_retryable(error: BaseException | None) -> bool:
    """False for failures a retry cannot mend (a disallowed or missing function, a
    result or XCom value that is not JSON); workers and ``dag test`` both use it."""
    return not isinstance(
        error, (TaskImportError, PayloadError, XComError, SensorTimeoutError, BranchError)
    )
