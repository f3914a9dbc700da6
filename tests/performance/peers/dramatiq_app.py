"""The Dramatiq actors the benchmark's Dramatiq workers run (Redis broker)."""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from tests.performance import jobs

broker = RedisBroker(url=os.environ[jobs.URL_ENV])
dramatiq.set_broker(broker)


@dramatiq.actor
def noop() -> None:
    jobs.noop()


@dramatiq.actor
def work(line: str) -> None:
    jobs.work(line)


@dramatiq.actor
def stamp(token: str) -> None:
    jobs.stamp(token)


@dramatiq.actor
def stamp_work(token: str) -> None:
    jobs.stamp_work(token)
