"""What TaskQueue and AsyncTaskQueue share apart from I/O: set-up and error mapping."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import redis.exceptions

from fairque.core.config import EMBEDDED, FairQueueConfig, durability_mode, redis_location
from fairque.core.errors import (
    FairQueueError,
    NotReplicatedError,
    PayloadError,
    RedisUnavailableError,
    shorten,
)
from fairque.core.models import TaskRecord
from fairque.core.urls import redact
from fairque.queue.calls import QueueCalls, ScriptCall
from fairque.queue.errors import map_redis_error
from fairque.queue.scripts import function_name, library_source
from fairque.server import resolve_redis_url

CONNECTION_RETRIES = 1
"""How often redis-py sends a command again, at once, on a fresh connection after a
connection error: once, as a pooled connection may have died with a server restart.
A longer outage is for the caller (the worker and scheduler loops back off, see
:mod:`fairque.core.backoff`), so it is noticed at once and logged."""

REPLICATED_SCRIPTS = frozenset({"push", "fire", "commit", "pop", "settle", "finish", "fail"})
"""With ``durability: replicated``, the scripts followed by ``WAIT 1 <ms>`` on their
connection: pushes (and run creation, the scheduler's too; a large batch's commit,
which the replica receives after its staged steps), a task's end, and claims
(a claim lost in a failover would let a second worker run the task without a recorded
reclaim). Only a push that no replica confirmed raises (:class:`NotReplicatedError`);
for the others the write is done and the worker's next step must not be undone by an
error, so it is logged: if the master then fails over before the replica copies it,
the task's lease expires on the new master and the task is reclaimed and run again, as
after a crash."""

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class QueueBase:
    """Configuration, key names and call builders of a queue."""

    def __init__(self, config: FairQueueConfig | None = None, *, connect: bool = True) -> None:
        """Resolve where Redis is now (the config's server, else ``FAIRQUE_REDIS_URL``,
        else the embedded server of the state folder, started if needed). With
        ``connect=False`` (a client is given) no embedded server is started."""
        self.config = config or FairQueueConfig.create_default()
        self.calls = QueueCalls(self.config)
        self.keys = self.calls.keys
        explicit = self.config.redis.explicit_url()
        if connect:
            self.url = resolve_redis_url(explicit)
        else:
            self.url = redis_location(explicit) or EMBEDDED
        self.durability = durability_mode(self.config.queue.durability)
        self._wait_ms = max(1, round(self.config.queue.replication_timeout_seconds * 1000))
        self._unreplicated = False  # a write went unconfirmed since the last confirmed one

    def _replica_wait(self, script: str) -> int | None:
        """The ``WAIT`` timeout (ms) to send after ``script``, or None for no wait."""
        if self.durability == "replicated" and script in REPLICATED_SCRIPTS:
            return self._wait_ms
        return None

    def _batch_wait(self, calls: Sequence[ScriptCall[Any]]) -> int | None:
        """The ``WAIT`` timeout (ms) to send after a pipeline of ``calls``, or None."""
        waits = [w for w in map(self._replica_wait, {c.script for c in calls}) if w is not None]
        return max(waits) if waits else None

    def _replies(
        self, calls: Sequence[ScriptCall[T]], replies: list[Any], wait_ms: int | None
    ) -> list[T | FairQueueError]:
        """Each call's parsed reply or the error it met, from a pipeline's replies (the
        last one is WAIT's when ``wait_ms``); RedisUnavailableError is raised."""
        replicas = replies.pop() if wait_ms is not None else None
        out: list[Any] = []  # each T | FairQueueError
        for call, reply in zip(calls, replies, strict=True):
            out.append(self._reply(call, reply, replicas))
        return out

    def _reply(self, call: ScriptCall[R], reply: Any, replicas: Any) -> R | FairQueueError:
        if isinstance(reply, redis.exceptions.RedisError):
            error = map_redis_error(reply, f"run {call.script}", redact(self.url), call.script)
            if isinstance(error, RedisUnavailableError):
                raise error from reply
            return error
        try:
            result = call.parse(reply)
            if isinstance(replicas, int) and self._replica_wait(call.script) is not None:
                self._check_replicated(call.script, replicas, result)
        except FairQueueError as e:
            return e
        return result

    def _check_replicated(self, script: str, replicas: int, result: Any) -> None:
        """After a waited ``script``: raise NotReplicatedError for a push no replica
        confirmed; for the other scripts log a WARNING, once until a replica confirms a
        write again (then at DEBUG); see :data:`REPLICATED_SCRIPTS`."""
        if replicas >= 1:
            if self._unreplicated:
                self._unreplicated = False
                logger.info("a replica confirms writes again (durability: replicated)")
            return
        if script in ("push", "commit"):  # a commit's result names its batch's tasks
            ids = result["task_ids"] if "task_ids" in result else [result["task_id"]]
            raise NotReplicatedError(ids, self._wait_ms)
        logger.log(
            logging.DEBUG if self._unreplicated else logging.WARNING,  # once per outage
            "%s was not confirmed by a replica within %s ms (durability: replicated); "
            "if the master fails over now, it may be undone (a claimed task is then "
            "reclaimed when its lease expires and run again)",
            script,
            self._wait_ms,
        )
        self._unreplicated = True

    def _client_options(self) -> dict[str, Any]:
        return {"decode_responses": True, **self.config.redis.client_kwargs()}

    @contextmanager
    def _guard(self, action: str, script: str | None = None) -> Iterator[None]:
        """Turn every redis-py error into ours (see :mod:`fairque.queue.errors`), naming
        the server and the action: RedisUnavailableError when a retry may succeed,
        RedisCommandError (ScriptError for ``script``) when it cannot. A lone surrogate
        in an argument (say a task id given to ``get_task``) is a PayloadError."""
        try:
            yield
        except (redis.exceptions.RedisError, OSError) as e:
            raise map_redis_error(e, action, redact(self.url), script) from e
        except UnicodeEncodeError as e:  # redis-py encodes the arguments before sending
            bad = e.object[e.start : e.end]
            raise PayloadError(
                f"cannot {action}: an id or value contains a lone surrogate {shorten(bad)}: "
                "not valid Unicode text, which UTF-8 (and so Redis) cannot store"
            ) from None


Command = tuple[Any, ...]


def fcall(call: ScriptCall[Any]) -> Command:
    """The command that runs ``call``: FCALL of its script's function."""
    return ("FCALL", function_name(call.script), len(call.keys), *call.keys, *call.args)


def load_library() -> Command:
    """The command loading fairque's functions (after a restart without them, a flush, or
    on a new server; REPLACE makes two clients loading it at once harmless: the text is
    the same). The library is built when first needed, not at import."""
    return ("FUNCTION", "LOAD", "REPLACE", library_source())


def function_missing(reply: Any) -> bool:
    """True for the refusal of an FCALL whose library is not loaded on the server."""
    return (
        isinstance(reply, redis.exceptions.ResponseError)
        and "function not found" in str(reply).lower()
    )


def script_commands(calls: Sequence[ScriptCall[Any]], wait_ms: int | None) -> list[Command]:
    """The pipeline running ``calls`` in order, then ``WAIT 1 wait_ms`` when given."""
    commands = [fcall(call) for call in calls]
    if wait_ms is not None:
        commands.append(("WAIT", 1, wait_ms))
    return commands


def retried(replies: list[Any], wait_ms: int | None) -> list[int]:
    """Which calls of a pipeline's ``replies`` met an unloaded library (they did not run:
    load it and send them again, see :func:`merge_retried`)."""
    count = len(replies) - (wait_ms is not None)
    return [i for i in range(count) if function_missing(replies[i])]


def merge_retried(replies: list[Any], again: list[int], second: list[Any]) -> list[Any]:
    """``replies`` with the calls at ``again`` answered by ``second`` (the replies of their
    second sending, WAIT's last when there was one, which then stands for both)."""
    merged = list(replies)
    for index, reply in zip(again, second, strict=False):
        merged[index] = reply
    if len(second) > len(again):
        merged[-1] = second[-1]
    return merged


def error_record(error: BaseException | str | dict[str, Any]) -> dict[str, Any]:
    """The JSON error record kept on a failed task: type, message and traceback."""
    if isinstance(error, dict):
        return {"type": "Error", "message": "", "traceback": "", **error}
    if isinstance(error, str):
        return {"type": "Error", "message": _storable(error), "traceback": ""}
    tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return {
        "type": type(error).__name__,
        "message": _storable(str(error)),
        "traceback": _storable(tb),
    }


def _storable(text: str) -> str:
    """``text`` with any lone surrogate (say a file name read with surrogateescape)
    written as its escape ``\\udce9``, so the error can be stored (UTF-8 cannot hold it)."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def leases_of(tasks: TaskRecord | Sequence[TaskRecord]) -> list[tuple[str, int]]:
    """(task id, claim token) pairs for lease renewal."""
    items = [tasks] if isinstance(tasks, TaskRecord) else list(tasks)
    return [(t.task_id, t.claim_token) for t in items]
