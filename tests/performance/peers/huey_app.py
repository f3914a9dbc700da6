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
def stamp(token: str) -> None:
    jobs.stamp(token)
