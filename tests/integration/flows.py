"""@task functions for the pipeline tests (importable as tests.integration.flows)."""

from __future__ import annotations

import time
from typing import Any

from fairque import task, xcom_pull, xcom_push, xcom_task


@xcom_task(push_key="extracted", task_id="extract")
def extract(source: str = "db") -> dict[str, Any]:
    """Produce records; the result is pushed as "extracted"."""
    return {"source": source, "records": 10}


@task(task_id="b", enable_xcom=True, xcom_pulls=["extracted"])
def branch_b(pause: float = 0.3) -> int:
    """Read "extracted", pause, push "from_b"."""
    records = int(xcom_pull("extracted")["records"])
    time.sleep(pause)
    xcom_push("from_b", records * 2)
    return records * 2


@task(task_id="c", enable_xcom=True, xcom_pulls=["extracted"])
def branch_c(pause: float = 0.3) -> int:
    """Read "extracted", pause, push "from_c"."""
    records = int(xcom_pull("extracted")["records"])
    time.sleep(pause)
    xcom_push("from_c", records * 3)
    return records * 3


@task(task_id="d", enable_xcom=True, xcom_pulls=["from_b", "from_c"])
def join_d() -> int:
    """Sum what b and c pushed."""
    return int(xcom_pull("from_b")) + int(xcom_pull("from_c"))


@task(task_id="fails", max_retries=0)
def fails() -> None:
    """Always raise."""
    raise RuntimeError("this step always fails")


@task(task_id="cleanup", trigger_rule="all_done")
def cleanup() -> str:
    """Runs whatever happened upstream."""
    return "cleaned"


@task(task_id="after_failure")
def after_failure() -> str:
    """Needs its upstream to succeed (never runs after `fails`)."""
    return "unreachable"


@task
def step(value: int) -> int:
    """Return value + 1."""
    return value + 1


@task(task_id="slow_middle", max_retries=2)
def slow_middle(log: str, seconds: float = 2.0) -> str:
    """Note this run (pid) in ``log``, then work for a while."""
    import os
    from pathlib import Path

    with Path(log).open("a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(seconds)
    return "middle done"
