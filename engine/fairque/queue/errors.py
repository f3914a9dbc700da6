"""The one boundary where redis-py's exceptions become fairque's.

:func:`is_transient` sorts a Redis error into transient (the server is unreachable, not
ready or failing over: retry later) or a bug (any other refusal, e.g. a Lua runtime
error ``ERR user_script:...`` or WRONGTYPE: retrying cannot help). :func:`map_redis_error`
turns it into :class:`~fairque.core.errors.RedisUnavailableError` or
:class:`~fairque.core.errors.RedisCommandError` (:class:`ScriptError` for a script).
"""

from __future__ import annotations

import re

import redis.exceptions
import redis.sentinel

from fairque.core.errors import (
    FairQueueError,
    RedisCommandError,
    RedisUnavailableError,
    ScriptError,
)
from fairque.queue.scripts import locate_lua_error

TRANSIENT_CODES = frozenset(
    {"NOSCRIPT", "BUSY", "LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"}
)
"""Error codes of a refusal that passes: a script not loaded yet (redis-py reloads it),
a server busy with a slow script, loading its data, a replica or failing over."""

_TRANSIENT_TYPES = (
    redis.exceptions.ConnectionError,  # with BusyLoadingError, AuthenticationError
    redis.exceptions.TimeoutError,
    redis.exceptions.InvalidResponse,  # a garbled reply: the connection is dropped
    OSError,  # socket errors redis-py did not wrap (asyncio timeouts are OSErrors too)
)
_PIPELINE_PREFIX = "of pipeline caused error: "
_NO_FUNCTIONS = re.compile(r"unknown command .?(fcall|function)\b", re.IGNORECASE)
"""A server older than Redis 7 refusing FCALL or FUNCTION LOAD."""
CLUSTER_CODES = frozenset({"MOVED", "ASK", "CROSSSLOT"})
"""Refusals only a Redis Cluster node gives: a plain ``redis://`` URL names a cluster
node (a ``redis+cluster://`` client turns MOVED and ASK into a reconnection)."""


def error_code(error: redis.exceptions.ResponseError) -> str:
    """The first word of a refusal (``ERR``, ``BUSY``, ``WRONGTYPE``...), also when
    redis-py stripped it into the exception's type or a pipeline prefixed the message."""
    code = getattr(error, "status_code", None)
    if code:
        return str(code)
    for response_type, word in _CODE_OF_TYPE:
        if isinstance(error, response_type):
            return word
    message = str(error).rpartition(_PIPELINE_PREFIX)[2]
    return message.split(" ", 1)[0]


_CODE_OF_TYPE: tuple[tuple[type[redis.exceptions.ResponseError], str], ...] = (
    (redis.exceptions.NoScriptError, "NOSCRIPT"),
    (redis.exceptions.ReadOnlyError, "READONLY"),
    (redis.exceptions.TryAgainError, "TRYAGAIN"),
    (redis.exceptions.MasterDownError, "MASTERDOWN"),
    (redis.exceptions.ClusterDownError, "CLUSTERDOWN"),
    (redis.exceptions.MovedError, "MOVED"),
    (redis.exceptions.AskError, "ASK"),
    (redis.exceptions.ClusterCrossSlotError, "CROSSSLOT"),
)


def is_transient(error: BaseException) -> bool:
    """True for an error a later retry may not meet: the connection failed or timed
    out, or the server answered one of :data:`TRANSIENT_CODES`. False for every other
    error, among them any other refusal (``ERR user_script:...``, WRONGTYPE, OOM)."""
    if isinstance(error, _TRANSIENT_TYPES):
        return True
    if isinstance(error, redis.exceptions.ResponseError):
        return error_code(error) in TRANSIENT_CODES
    return False


def map_redis_error(
    error: Exception, action: str, where: str, script: str | None = None
) -> FairQueueError:
    """Our error for a redis-py ``error`` raised while doing ``action`` against the
    server at ``where``; ``script`` names the Lua script run, if any."""
    if isinstance(error, FairQueueError):
        return error
    if not is_transient(error):
        if isinstance(error, redis.exceptions.ResponseError) and error_code(error) in CLUSTER_CODES:
            return RedisCommandError(
                action,
                f"the server at {where} is a node of a Redis Cluster ({error}): "
                "connect with a redis+cluster://host:port URL",
            )
        if _NO_FUNCTIONS.search(str(error)):
            return RedisCommandError(
                action,
                f"the server at {where} runs no Redis Functions ({error}): fairque needs "
                "Redis 7+ or Valkey 7.2+",
            )
        if script is not None:
            return ScriptError(script, locate_lua_error(str(error)))
        return RedisCommandError(action, str(error))
    if isinstance(error, redis.exceptions.ResponseError):
        return RedisUnavailableError(f"cannot {action}: Redis at {where} is not ready ({error})")
    if isinstance(error, redis.sentinel.MasterNotFoundError):
        found = str(error).split(" : ", 1)[0]  # the rest is the repr of every sentinel client
        return RedisUnavailableError(
            f"cannot {action}: {found} by the sentinels of {where}: none of them answered, "
            "or none monitors that service (check the service name in the URL)"
        )
    return RedisUnavailableError(
        f"cannot {action}: Redis at {where} is unreachable ({error}); "
        "start it or set FAIRQUE_REDIS_URL"
    )
