"""Task functions for the backfill tests (importable as tests.integration.backfill_tasks)."""

from __future__ import annotations

from fairque.tasks import current_task, task


@task()
def record_dates() -> dict[str, str | None]:
    """The run's logical date and data interval, as the running task sees them."""
    context = current_task()
    moments = {
        "logical_date": context.logical_date,
        "data_interval_start": context.data_interval_start,
        "data_interval_end": context.data_interval_end,
    }
    return {name: None if m is None else m.isoformat() for name, m in moments.items()}


@task()
def fail_on_second_day() -> str:
    """Raises for the run of 2024-01-02, succeeds for the others."""
    logical = current_task().logical_date
    assert logical is not None
    if logical.day == 2:
        raise RuntimeError("no data for the 2nd")
    return logical.date().isoformat()
