"""The Huey instance and tasks the benchmark's Huey consumers run (RedisHuey)."""

from __future__ import annotations

import os

from huey import RedisHuey

from tests.performance import jobs

huey = RedisHuey("bench", url=os.environ[jobs.URL_ENV])


@huey.task()
def noop() -> None:
    jobs.noop()


@huey.task()
def work(line: str) -> None:
    jobs.work(line)


@huey.task()
def stamp(token: str) -> None:
    jobs.stamp(token)


@huey.task()
def stamp_work(token: str) -> None:
    jobs.stamp_work(token)
