"""A backfill cut off from Redis half-way stops with a clear error, and running the same
backfill again once Redis is back creates the missing runs only: every tick of the range
has exactly one run."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fairque import FairQueueConfig, TaskQueue
from fairque.core.errors import FairQueueError
from fairque.dag.loader import load_dags
from fairque.scheduler.backfill import backfill
from tests.integration.proxy import CuttableProxy
from tests.timing import budget, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]

MINUTELY = """\
dag_id: minutely
schedule: "* * * * *"
tasks:
  only: {callable: "tests.integration.backfill_tasks:record_dates"}
"""


def test_an_interrupted_backfill_resumes_without_duplicates(
    proxy: CuttableProxy, redis_url: str, tmp_path: Path
) -> None:
    (tmp_path / "minutely.yaml").write_text(MINUTELY)
    dag = load_dags(tmp_path).dags["minutely"]
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, 23, 59, tzinfo=UTC)
    errors: list[BaseException] = []
    cut_queue = TaskQueue(FairQueueConfig.create_default(redis=proxy.url))

    def run() -> None:
        try:
            backfill(cut_queue, dag, start, end)
        except FairQueueError as e:
            errors.append(e)

    with TaskQueue(FairQueueConfig.create_default(redis=redis_url)) as queue:
        thread = threading.Thread(target=run)
        thread.start()
        wait_until(lambda: len(queue.list_runs("minutely", limit=20)) >= 10, 10, "some runs")
        proxy.cut()
        thread.join(budget(60))
        assert not thread.is_alive() and errors, "the backfill did not stop on the outage"
        created_before = len(queue.list_runs("minutely", limit=2000))
        assert 10 <= created_before < 1440
        proxy.restore()
        report = backfill(queue, dag, start, end)
        assert len(report.created) + len(report.existing) == 1440
        assert len(report.existing) >= created_before
        assert len(queue.list_runs("minutely", limit=2000)) == 1440
    cut_queue.close()
