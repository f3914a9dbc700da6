"""Task functions the worker tests run (importable as tests.integration.jobs)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any


def add(a: int, b: int) -> int:
    """Return a + b."""
    return a + b


def noop() -> None:
    """Do nothing."""


def sleep_then(seconds: float, value: Any = None) -> Any:
    """Sleep, then return ``value``."""
    time.sleep(seconds)
    return value


def until_canceled(seconds: float) -> str:
    """Poll ``current_task().cancel_requested`` for up to ``seconds``; say which ended it."""
    from fairque import current_task

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if current_task().cancel_requested:
            return "saw cancel"
        time.sleep(0.01)
    return "timed out"


def boom(message: str = "boom") -> None:
    """Always raise ValueError."""
    raise ValueError(message)


def not_json() -> object:
    """Return a value that is not JSON."""
    return object()


def mark(path: str, token: str, seconds: float = 0.0) -> str:
    """Append ``token`` and our pid to a file (a run log), then sleep."""
    with Path(path).open("a") as f:
        f.write(f"{token} {os.getpid()}\n")
    time.sleep(seconds)
    return token


def die_hard() -> None:
    """Kill the worker process running this task (a poison task)."""
    os._exit(13)


async def async_sleep_then(seconds: float, value: Any = None) -> Any:
    """Sleep on the event loop, then return ``value``."""
    await asyncio.sleep(seconds)
    return value


class Gauge:
    """Counts tasks running at once in this process (for in-process worker tests)."""

    def __init__(self) -> None:
        import threading

        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def reset(self) -> None:
        with self.lock:
            self.now = self.peak = 0


GAUGE = Gauge()


def gauged(seconds: float) -> None:
    """Sleep while counted in GAUGE."""
    with GAUGE.lock:
        GAUGE.now += 1
        GAUGE.peak = max(GAUGE.peak, GAUGE.now)
    time.sleep(seconds)
    with GAUGE.lock:
        GAUGE.now -= 1


async def async_gauged(seconds: float) -> None:
    """Sleep on the event loop while counted in GAUGE."""
    with GAUGE.lock:
        GAUGE.now += 1
        GAUGE.peak = max(GAUGE.peak, GAUGE.now)
    await asyncio.sleep(seconds)
    with GAUGE.lock:
        GAUGE.now -= 1


async def async_boom(message: str = "async boom") -> None:
    """Always raise ValueError, asynchronously."""
    await asyncio.sleep(0)
    raise ValueError(message)


async def async_xcom_round_trips(rounds: int) -> int:
    """Push then pull ``rounds`` XCom values with the awaitable API; their sum."""
    from fairque import axcom_pull, axcom_push

    total = 0
    for n in range(rounds):
        await axcom_push(f"k{n}", n)
        total += await axcom_pull(f"k{n}")
    return total


async def async_blocking_xcom_pull(key: str) -> Any:
    """Call the blocking xcom_pull from an async def task (refused on an AsyncWorker)."""
    from fairque import xcom_pull

    return xcom_pull(key, None)


def sync_xcom_round_trip(key: str, value: Any) -> Any:
    """Push then pull one XCom value with the blocking API."""
    from fairque import xcom_pull, xcom_push

    xcom_push(key, value)
    return xcom_pull(key)


def not_utf8_name() -> str:
    """A file name read with surrogateescape (bytes that are not UTF-8): a lone surrogate."""
    return b"caf\xe9".decode("utf-8", "surrogateescape")


def not_utf8_error() -> None:
    raise FileNotFoundError(f"no file {not_utf8_name()}")


def fail_times(path: str, failures: int) -> int:
    """Count this execution in a file; raise RuntimeError for the first ``failures``
    executions, then return how many executions there were."""
    counter = Path(path)
    count = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(count))
    if count <= failures:
        raise RuntimeError(f"execution {count} fails")
    return count
