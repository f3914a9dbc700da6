"""Time budgets and condition waits for the tests, scaled for slow or busy machines.

``FAIRQUE_TEST_TIME_SCALE`` (a positive number, default 1.0) multiplies every time budget
and wait deadline of the tests, and pytest-timeout's per-test limit (tests/conftest.py):
``FAIRQUE_TEST_TIME_SCALE=3 uv run pytest`` on a machine three times slower than usual.

- :func:`budget` scales a number of seconds. Use it for every time-based assertion
  (``assert elapsed < budget(1.0)``) and every deadline handed to something else
  (``subprocess.run(..., timeout=budget(60))``, ``run.wait(timeout=budget(20))``).
- :func:`wait_until` (and :func:`wait_until_async` in a coroutine) polls a condition until
  it holds, failing the test after a scaled ``timeout``.

A budget measures the event it names, from that event: the clock starts once the
processes involved are up (waited for with generous deadlines), never before their
start-up.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

TIME_SCALE_ENV = "FAIRQUE_TEST_TIME_SCALE"
POLL_SECONDS = 0.02

T = TypeVar("T")


def _time_scale() -> float:
    raw = os.environ.get(TIME_SCALE_ENV, "").strip()
    if not raw:
        return 1.0
    try:
        scale = float(raw)
    except ValueError:
        raise ValueError(f"{TIME_SCALE_ENV} must be a number, not {raw!r}") from None
    if not scale > 0:
        raise ValueError(f"{TIME_SCALE_ENV} must be > 0, not {raw!r}")
    return scale


TIME_SCALE = _time_scale()


def budget(seconds: float) -> float:
    """``seconds`` times ``$FAIRQUE_TEST_TIME_SCALE``."""
    return seconds * TIME_SCALE


def _timed_out(timeout: float, what: str | Callable[[], str]) -> AssertionError:
    message = what() if callable(what) else what
    return AssertionError(f"timed out after {budget(timeout):g} s waiting for {message}")


def wait_until(
    condition: Callable[[], T], timeout: float, what: str | Callable[[], str] = "the condition"
) -> T:
    """Poll ``condition`` every 20 ms until it returns something truthy, and return it.

    Fails the test after ``budget(timeout)`` seconds with ``what`` (a callable is evaluated
    only then, so it can show the latest process logs).
    """
    deadline = time.monotonic() + budget(timeout)
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what)
        time.sleep(POLL_SECONDS)


async def wait_until_async(
    condition: Callable[[], Awaitable[T]],
    timeout: float,
    what: str | Callable[[], str] = "the condition",
) -> T:
    """:func:`wait_until` for a coroutine: awaits ``condition()`` between async sleeps."""
    deadline = time.monotonic() + budget(timeout)
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what)
        await asyncio.sleep(POLL_SECONDS)
