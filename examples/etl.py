"""The ETL task functions of the README's examples and of the DAGs in dags/."""

from __future__ import annotations

from typing import Any

from fairque import task, xcom_pull, xcom_push, xcom_task


@xcom_task(push_key="extracted", task_id="extract")
def extract_data(source: str = "database") -> dict[str, Any]:
    """Extract records; the result is pushed to XCom as "extracted"."""
    return {"source": source, "records": 1000}


@task(task_id="transform", enable_xcom=True, xcom_pulls=["extracted"])
def transform_data() -> dict[str, Any]:
    """Double the records pulled from "extracted"; push "transformed"."""
    raw = xcom_pull("extracted")
    transformed = {"processed_records": raw["records"] * 2, "source": raw["source"]}
    xcom_push("transformed", transformed)
    return transformed


@task(task_id="validate", enable_xcom=True, xcom_pulls=["extracted"])
def validate_data() -> dict[str, Any]:
    """Check the extracted records."""
    raw = xcom_pull("extracted")
    return {"validation": "passed" if raw["records"] > 0 else "empty"}


@task(task_id="load", enable_xcom=True, xcom_pulls=["transformed"])
def load_data() -> dict[str, Any]:
    """Load what transform produced (or nothing when it did not run)."""
    data = xcom_pull("transformed", default={"processed_records": 0})
    return {"status": "loaded", "records": data["processed_records"]}


@task(task_id="backup")
def backup_data() -> dict[str, Any]:
    """Back up the batch."""
    return {"status": "backed up"}


@task(task_id="notify")
def notify_completion() -> str:
    """Tell someone the batch is done."""
    return "notified"


@task(task_id="flaky_step", max_retries=0)
def failing_step(reason: str = "the source is down") -> None:
    """A step that always fails (for the failure-handling examples)."""
    raise RuntimeError(reason)


@task(task_id="cleanup", trigger_rule="all_done")
def cleanup() -> str:
    """Runs after its upstreams whatever their outcome (trigger rule all_done)."""
    return "cleaned up"


def alert(summary: dict[str, Any]) -> None:
    """A run callback (``on_failure_callback: "examples.etl:alert"``): report the run."""
    failed = ", ".join(summary["failed_tasks"]) or "none"
    print(f"run {summary['run_id']} ended {summary['state']}; failed tasks: {failed}")
