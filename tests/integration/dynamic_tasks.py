"""Task functions for tests/integration/test_dynamic_dags.py (module-level, so workers
import them as ``tests.integration.dynamic_tasks:...``)."""

from __future__ import annotations

from typing import Any

from fairque import current_task, task


@task(max_retries=0)
def numbers(count: int) -> list[int]:
    return list(range(count))


@task
def keyed(count: int) -> dict[str, Any]:
    return {"items": list(range(count)), "label": "k"}


@task(max_retries=0)
def not_a_list() -> dict[str, int]:
    return {"a": 1}


@task
def square(n: int, offset: int = 0) -> int:
    return n * n + offset


_FAILED_ONCE: set[str] = set()


@task(max_retries=2, retry_delay_seconds=0)
def flaky_square(n: int) -> int:
    """Fails the first attempt of element 3 in each run (a retry runs it again)."""
    run = current_task().scope
    if n == 3 and run not in _FAILED_ONCE:
        _FAILED_ONCE.add(run)
        raise RuntimeError("element 3 fails its first attempt")
    return n * n


@task(max_retries=0)
def broken_square(n: int) -> int:
    if n == 2:
        raise RuntimeError("element 2 is broken")
    return n * n


@task
def total(values: list[int]) -> dict[str, Any]:
    return {"count": len(values), "values": values}


@task
async def async_double(n: int) -> int:
    return n * 2
