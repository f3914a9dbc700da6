"""The arq functions and WorkerSettings the benchmark's arq workers run."""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar

from arq.connections import RedisSettings

from tests.performance import jobs


async def noop(ctx: dict[str, Any]) -> None:
    jobs.noop()


async def work(ctx: dict[str, Any], line: str) -> None:
    """The realistic body on arq's own (asyncio) client: one pipelined round trip."""
    pipe = ctx["redis"].pipeline(transaction=False)
    pipe.rpush(jobs.WORK_LIST, line)
    pipe.incr(jobs.WORK_COUNT)
    await pipe.execute()


async def stamp(ctx: dict[str, Any], token: str) -> None:
    started = time.time()
    await ctx["redis"].rpush(jobs.SINK, jobs.stamp_entry(token, started))


async def stamp_work(ctx: dict[str, Any], token: str) -> None:
    started = time.time()
    pipe = ctx["redis"].pipeline(transaction=False)
    pipe.rpush(jobs.SINK, jobs.stamp_entry(token, started))
    pipe.incr(jobs.WORK_COUNT)
    await pipe.execute()


class WorkerSettings:
    functions: ClassVar[list[Any]] = [noop, work, stamp, stamp_work]
    redis_settings = RedisSettings.from_dsn(os.environ[jobs.URL_ENV])


# arq logs every job at INFO; the benchmark runs every system's worker at WARNING.
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"arq.standard": {"level": "WARNING", "class": "logging.StreamHandler"}},
    "loggers": {"arq": {"handlers": ["arq.standard"], "level": "WARNING"}},
}
