"""Sorting Redis errors into transient and bugs, their mapping to fairque's errors, and
the backoff every loop uses to wait out an outage (pure: no server)."""

from __future__ import annotations

import logging
import random

import pytest
import redis.exceptions as rx

from fairque.core.backoff import Backoff, backoff_delay
from fairque.core.errors import (
    QueueError,
    RedisCommandError,
    RedisUnavailableError,
    ScriptError,
)
from fairque.queue.errors import error_code, is_transient, map_redis_error

PIPELINE = "Command # 1 (HGET fq:schedules s1) of pipeline caused error: "

TRANSIENT = [
    rx.ConnectionError("Error 111 connecting to localhost:6379. Connection refused."),
    rx.TimeoutError("Timeout reading from socket"),
    rx.BusyLoadingError("Redis is loading the dataset in memory", status_code="LOADING"),
    rx.AuthenticationError("invalid password"),
    rx.InvalidResponse("Protocol Error: b'x'"),
    ConnectionResetError(104, "Connection reset by peer"),
    rx.NoScriptError("No matching script.", status_code="NOSCRIPT"),
    rx.NoScriptError("No matching script."),  # redis-py before status codes
    rx.ResponseError("BUSY Redis is busy running a script. You can only call FUNCTION KILL"),
    rx.ResponseError(PIPELINE + "BUSY Redis is busy running a script."),
    rx.ResponseError("LOADING Redis is loading the dataset in memory"),
    rx.ReadOnlyError("You can't write against a read only replica.", status_code="READONLY"),
    rx.ReadOnlyError("You can't write against a read only replica."),
    rx.MasterDownError("Link with MASTER is down", status_code="MASTERDOWN"),
    rx.MasterDownError("Link with MASTER is down"),
    rx.ResponseError("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is no"),
    rx.TryAgainError("Multiple keys request during rehashing of slot"),
    rx.ClusterDownError("The cluster is down"),
    rx.ResponseError("CLUSTERDOWN The cluster is down"),
]

BUGS = [
    rx.ResponseError(
        "user_script:7: attempt to compare number with nil script: 0f1e..., on @user_script:7."
    ),
    rx.ResponseError("ERR user_script:1: Script attempted to access nonexistent global variable"),
    rx.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
    rx.ResponseError(PIPELINE + "WRONGTYPE Operation against a key holding the wrong kind"),
    rx.ResponseError("BUSYGROUP Consumer Group name already exists"),  # not BUSY
    rx.ResponseError("ERR unknown command 'HGETALLL'"),
    rx.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
    rx.NoPermissionError("this user has no permissions to run the 'eval' command"),
    rx.DataError("Invalid input of type: 'dict'."),
    ValueError("not a Redis error at all"),
]


@pytest.mark.parametrize("error", TRANSIENT, ids=repr)
def test_transient_errors_are_retried(error: Exception) -> None:
    assert is_transient(error)
    mapped = map_redis_error(error, "run pop", "redis://localhost:6379/0", "pop")
    assert isinstance(mapped, RedisUnavailableError)
    assert "cannot run pop: Redis at redis://localhost:6379/0" in str(mapped)


@pytest.mark.parametrize("error", BUGS, ids=repr)
def test_other_refusals_are_bugs(error: Exception) -> None:
    assert not is_transient(error)


def test_a_bug_in_a_script_names_the_script() -> None:
    error = rx.ResponseError("user_script:7: attempt to compare number with nil")
    mapped = map_redis_error(error, "run advance", "redis://h:1/0", "advance")
    assert isinstance(mapped, ScriptError) and isinstance(mapped, QueueError)
    assert mapped.script == "advance"
    assert mapped.message == str(error)
    assert "cannot run advance" in str(mapped) and "compare number with nil" in str(mapped)


def test_a_bug_in_plain_commands_is_a_command_error() -> None:
    error = rx.ResponseError(PIPELINE + "WRONGTYPE Operation against a key")
    mapped = map_redis_error(error, "send commands", "redis://h:1/0")
    assert type(mapped) is RedisCommandError
    assert mapped.operation == "send commands" and "WRONGTYPE" in mapped.message


@pytest.mark.parametrize(
    "error",
    [
        rx.MovedError("4576 127.0.0.1:7001"),
        rx.ResponseError("CROSSSLOT Keys in request don't hash to the same slot"),
        rx.ResponseError(PIPELINE + "MOVED 12 127.0.0.1:7002"),
    ],
)
def test_a_cluster_node_behind_a_plain_url_says_to_use_redis_cluster(error: Exception) -> None:
    mapped = map_redis_error(error, "run push", "redis://h:1/0", "push")
    assert type(mapped) is RedisCommandError and not is_transient(error)
    assert "the server at redis://h:1/0 is a node of a Redis Cluster" in str(mapped)
    assert "connect with a redis+cluster://host:port URL" in str(mapped)


def test_a_server_without_functions_is_named_as_too_old() -> None:
    error = rx.ResponseError("unknown command 'FCALL', with args beginning with: 'fq_push_1'")
    mapped = map_redis_error(error, "run push", "redis://h:1/0", "push")
    assert type(mapped) is RedisCommandError
    assert "runs no Redis Functions" in str(mapped) and "Redis 7+ or Valkey 7.2+" in str(mapped)


def test_connection_errors_say_what_to_do() -> None:
    mapped = map_redis_error(rx.ConnectionError("refused"), "connect", "redis://h:1/0")
    assert "unreachable (refused); start it or set FAIRQUE_REDIS_URL" in str(mapped)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (rx.ResponseError("BUSY Redis is busy"), "BUSY"),
        (rx.ResponseError(PIPELINE + "WRONGTYPE Operation"), "WRONGTYPE"),
        (rx.ReadOnlyError("You can't write"), "READONLY"),
        (rx.ResponseError("LOADING Redis is loading", status_code="LOADING"), "LOADING"),
    ],
)
def test_error_code(error: rx.ResponseError, code: str) -> None:
    assert error_code(error) == code


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    assert [backoff_delay(n, 0.1, 5.0, 1.0) for n in range(1, 9)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    )
    assert backoff_delay(3, 0.1, 5.0, 0.5) == pytest.approx(0.2)
    assert backoff_delay(10_000, 0.1, 5.0, 1.0) == 5.0


def test_backoff_warns_once_per_outage(caplog: pytest.LogCaptureFixture) -> None:
    backoff = Backoff(logging.getLogger("fairque.test"), "loop", rng=random.Random(1))
    with caplog.at_level(logging.DEBUG, logger="fairque.test"):
        delays = [backoff.failed(RedisUnavailableError("down")) for _ in range(12)]
        backoff.succeeded()
        backoff.failed(RedisUnavailableError("down again"))
    assert all(0.05 <= d <= 5.0 for d in delays) and max(delays) > 2.0
    assert delays == sorted(delays[:6]) + delays[6:]  # grows until the cap
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "loop: down; retrying with backoff up to 5.0 s",
        "loop: down again; retrying with backoff up to 5.0 s",
    ]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 1 and "after 12 failed attempts" in infos[0]
