"""Module-level task functions for the unit tests (importable as tests.unit.sample_tasks)."""

from __future__ import annotations

import asyncio
from typing import Any

from fairque import Priority
from fairque.tasks import current_task, task, xcom_pull, xcom_push, xcom_task

# Calls made through the in-process runs, in order (reset by the tests).
CALLS: list[str] = []
# Attempts per key made by flaky(), to fail a fixed number of times.
FLAKY_ATTEMPTS: dict[str, int] = {}


# --- the seed README's pipeline tasks ---------------------------------------------------


@task(task_id="extract")
def extract_data() -> dict[str, int]:
    """Extract some records."""
    CALLS.append("extract")
    return {"records": 1000}


@task(task_id="transform")
def transform_data() -> dict[str, int]:
    CALLS.append("transform")
    return {"processed_records": 2000}


@task(task_id="validate")
def validate_data() -> dict[str, str]:
    CALLS.append("validate")
    return {"validation": "passed"}


@task(task_id="load")
def load_data() -> dict[str, str]:
    CALLS.append("load")
    return {"status": "loaded"}


@task(task_id="backup")
def backup_data() -> dict[str, str]:
    CALLS.append("backup")
    return {"status": "backed up"}


@task(task_id="notify")
def notify_completion() -> str:
    CALLS.append("notify")
    return "done"


# --- plain functions and options ----------------------------------------------------------


@task
def add(x: int, y: int = 0) -> int:
    """Add two numbers."""
    return x + y


@task
def gather(*items: Any, **named: Any) -> dict[str, Any]:
    return {"items": list(items), "named": named}


@task(
    task_id="process_order",
    user_id="user:1",
    priority=Priority.HIGH,
    max_retries=3,
    retry_delay_seconds=2.5,
    timeout_seconds=30,
    depends_on=["fetch"],
    trigger_rule="all_done",
)
def process_order(order_id: int, customer_id: str) -> dict[str, Any]:
    return {"order_id": order_id, "customer_id": customer_id, "status": "processed"}


@task(priority="critical")
async def async_double(x: int) -> int:
    await asyncio.sleep(0)
    return x * 2


# --- XCom ---------------------------------------------------------------------------------


@xcom_task(push_key="extracted_data")
def xcom_extract(source: str) -> dict[str, Any]:
    return {"source": source, "records": 1000}


@task(task_id="transform_x", enable_xcom=True, xcom_pulls=["extracted_data"])
def xcom_transform() -> dict[str, Any]:
    raw = xcom_pull("extracted_data")
    out = {"processed_records": raw["records"] * 2, "source": raw["source"]}
    xcom_push("transformed_data", out)
    return out


@xcom_task(push_key="left", task_id="left")
def xcom_left() -> int:
    return xcom_pull("seed") + 1


@xcom_task(push_key="right", task_id="right")
def xcom_right() -> int:
    return xcom_pull("seed") + 2


@xcom_task(push_key="seed", task_id="root")
def xcom_root(value: int) -> int:
    return value


@task(task_id="join", xcom_pulls=["left", "right"])
def xcom_join() -> int:
    return int(xcom_pull("left")) + int(xcom_pull("right"))


@xcom_task(push_key="manual", auto_xcom=False)
def manual_push() -> str:
    xcom_push("manual", "by hand")
    return "returned"


@task
def pull_with_default() -> Any:
    return xcom_pull("absent", default="fallback")


@task
def context_info() -> dict[str, Any]:
    ctx = current_task()
    return {"name": ctx.name, "scope": ctx.scope, "conf": dict(ctx.conf)}


@xcom_task(push_key="bad")
def returns_set() -> Any:
    return {1, 2}


# --- failures and cleanup -----------------------------------------------------------------


@task(task_id="boom")
def boom() -> None:
    CALLS.append("boom")
    raise RuntimeError("boom failed")


@task(task_id="after_boom")
def after_boom() -> str:
    CALLS.append("after_boom")
    return "ran"


@task(task_id="cleanup", trigger_rule="all_done")
def cleanup() -> str:
    CALLS.append("cleanup")
    return "cleaned"


@task
def flaky(key: str, failures: int) -> int:
    """Fail ``failures`` times for ``key``, then return the attempt number."""
    FLAKY_ATTEMPTS[key] = FLAKY_ATTEMPTS.get(key, 0) + 1
    if FLAKY_ATTEMPTS[key] <= failures:
        raise ValueError(f"attempt {FLAKY_ATTEMPTS[key]} failed")
    return FLAKY_ATTEMPTS[key]


@task
def not_json_result() -> Any:
    return object()
