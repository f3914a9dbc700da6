"""arq: ``arq module.WorkerSettings`` with its defaults (max_jobs 10, poll_delay 0.5 s).

arq workers serve one queue, so it is measured with one shared queue only. Its client
is asyncio: the adapter keeps one event loop and runs each measured loop inside it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from importlib.metadata import version

import redis
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import default_queue_name

from tests.performance.jobs import NOOP_BODY, plain_job, stamped_job
from tests.performance.procs import Launcher
from tests.performance.systems import SHARED, System, python_module

FILL_CONCURRENCY = 20


class ArqSystem(System):
    name = "arq"
    layouts = (SHARED,)
    setup = "arq WorkerSettings (defaults: max_jobs 10, poll_delay 0.5 s)"

    def __init__(self, redis_url: str, launcher: Launcher) -> None:
        super().__init__(redis_url, launcher)
        self.connection = redis.Redis.from_url(redis_url)
        self.loop = asyncio.new_event_loop()
        self.pool: ArqRedis = self.loop.run_until_complete(
            create_pool(RedisSettings.from_dsn(redis_url))
        )

    @property
    def version(self) -> str:
        return version("arq")

    def sender(self, job: str, user: str) -> Callable[..., object]:
        def send(*args: str) -> object:
            return self.loop.run_until_complete(self.pool.enqueue_job(job, *args))

        return send

    def time_enqueue_one(self, count: int, user: str, body: str = NOOP_BODY) -> float:
        job, args = plain_job(body)

        async def run() -> float:
            started = time.perf_counter()
            for _ in range(count):
                await self.pool.enqueue_job(job, *args)
            return time.perf_counter() - started

        return self.loop.run_until_complete(run())

    def fill(
        self, user: str, count: int, tokens: Sequence[str] | None = None, body: str = NOOP_BODY
    ) -> None:
        job, args = plain_job(body)
        stamp = stamped_job(body)

        async def run() -> None:
            for done in range(0, count, FILL_CONCURRENCY):
                size = min(FILL_CONCURRENCY, count - done)
                if tokens is None:
                    jobs = [self.pool.enqueue_job(job, *args) for _ in range(size)]
                else:
                    chunk = tokens[done : done + size]
                    jobs = [self.pool.enqueue_job(stamp, t) for t in chunk]
                await asyncio.gather(*jobs)

        self.loop.run_until_complete(run())

    def remaining(self) -> int:
        # a job leaves the queue's sorted set when it has finished
        return int(self.connection.zcard(default_queue_name))

    def worker_argv(self) -> list[str]:
        return python_module(
            "arq",
            *("--custom-log-dict", "tests.performance.peers.arq_app.LOG_CONFIG"),
            "tests.performance.peers.arq_app.WorkerSettings",
        )

    def close(self) -> None:
        self.loop.run_until_complete(self.pool.close())
        self.loop.close()
        self.connection.close()
