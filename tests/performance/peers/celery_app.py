"""The Celery app the benchmark's Celery workers run (Redis broker, no result backend)."""

from __future__ import annotations

import os

from celery import Celery

from tests.performance import jobs

app = Celery("bench", broker=os.environ[jobs.URL_ENV])
app.conf.update(task_default_queue="bench", broker_connection_retry_on_startup=True)


@app.task(name="bench.noop")
def noop() -> None:
    jobs.noop()


@app.task(name="bench.work")
def work(line: str) -> None:
    jobs.work(line)


@app.task(name="bench.stamp")
def stamp(token: str) -> None:
    jobs.stamp(token)


@app.task(name="bench.stamp_work")
def stamp_work(token: str) -> None:
    jobs.stamp_work(token)
