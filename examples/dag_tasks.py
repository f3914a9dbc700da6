"""Small task functions for the example DAGs in dags/ (fan-out/fan-in, nightly report).

They are plain functions: a DAG file names them as ``examples.dag_tasks:<function>``
and they reach XCom and the run's conf through ``current_task()``.
"""

from __future__ import annotations

from typing import Any

from fairque import current_task, xcom_pull


def make_batch(size: int = 40) -> list[int]:
    """The numbers 1..size (the DAG pushes the result under its xcom_push key)."""
    return list(range(1, size + 1))


def process_part(part: int, parts: int = 4) -> dict[str, Any]:
    """Sum every ``parts``-th number of the "batch" XCom value, starting at ``part``."""
    batch: list[int] = xcom_pull("batch")
    chunk = batch[part::parts]
    return {"part": part, "count": len(chunk), "total": sum(chunk)}


def combine(keys: list[str]) -> dict[str, Any]:
    """Add up the partial results pushed under ``keys``."""
    results = [xcom_pull(key) for key in keys]
    return {"parts": len(results), "total": sum(r["total"] for r in results)}


def collect_metrics() -> dict[str, int]:
    """Gather a few (made-up) metrics."""
    return {"orders": 42, "refunds": 3, "signups": 17}


def build_report(title: str = "Report") -> str:
    """A one-line report of the "metrics" XCom value, titled by the run's conf."""
    metrics: dict[str, int] = xcom_pull("metrics")
    audience = current_task().conf.get("audience", "everyone")
    body = ", ".join(f"{name}={value}" for name, value in sorted(metrics.items()))
    return f"{title} for {audience}: {body}"
