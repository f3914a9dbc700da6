"""RQ: ``rq worker`` (the default Worker, which forks a work horse per job).

Queue per user: one RQ queue per user and ``rq worker --dequeue-strategy round_robin``
listening on all of them, which is how RQ users share a worker between tenants.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from importlib.metadata import version

import redis
from rq import Queue

from tests.performance import jobs
from tests.performance.common import REPO_ROOT
from tests.performance.jobs import NOOP_BODY, plain_job, stamped_job
from tests.performance.procs import Launcher
from tests.performance.systems import PER_USER, SHARED, System, python_module

FILL_CHUNK = 1_000


class RqSystem(System):
    name = "rq"
    layouts = (SHARED, PER_USER)
    setup = "rq worker (default forking Worker); queue per user: --dequeue-strategy round_robin"

    def __init__(self, redis_url: str, launcher: Launcher) -> None:
        super().__init__(redis_url, launcher)
        self.connection = redis.Redis.from_url(redis_url)

    @property
    def version(self) -> str:
        return version("rq")

    def _queue(self, user: str) -> Queue:
        return Queue(self.queue_of(user), connection=self.connection)

    def sender(self, job: str, user: str) -> Callable[..., object]:
        enqueue, function = self._queue(user).enqueue, getattr(jobs, job)

        def send(*args: str) -> object:
            return enqueue(function, *args)

        return send

    def _datas(self, count: int, body: str) -> list[object]:
        job, args = plain_job(body)
        function = getattr(jobs, job)
        return [Queue.prepare_data(function, args=args) for _ in range(count)]

    def time_enqueue_batch(
        self, count: int, batch: int, user: str, body: str = NOOP_BODY
    ) -> float | None:
        queue = self._queue(user)
        started = time.perf_counter()
        for done in range(0, count, batch):
            self._enqueue_many(queue, self._datas(min(batch, count - done), body))
        return time.perf_counter() - started

    def _enqueue_many(self, queue: Queue, datas: list[object]) -> None:
        with self.connection.pipeline() as pipe:
            queue.enqueue_many(datas, pipeline=pipe)  # type: ignore[arg-type]
            pipe.execute()

    def fill(
        self, user: str, count: int, tokens: Sequence[str] | None = None, body: str = NOOP_BODY
    ) -> None:
        queue = self._queue(user)
        stamp = getattr(jobs, stamped_job(body))
        for done in range(0, count, FILL_CHUNK):
            size = min(FILL_CHUNK, count - done)
            if tokens is None:
                datas = self._datas(size, body)
            else:
                chunk = tokens[done : done + size]
                datas = [Queue.prepare_data(stamp, args=(t,)) for t in chunk]
            self._enqueue_many(queue, datas)

    def remaining(self) -> int:
        pipe = self.connection.pipeline(transaction=False)
        for name in self.queues():
            pipe.llen(Queue.redis_queue_namespace_prefix + name)
        return sum(pipe.execute())

    def worker_argv(self) -> list[str]:
        argv = python_module(
            "rq.cli",
            "worker",
            *("--url", self.redis_url, "--path", str(REPO_ROOT)),
            *("--logging_level", "WARNING"),
        )
        if self.layout == PER_USER:
            argv += ["--dequeue-strategy", "round_robin"]
        return [*argv, *self.queues()]

    def close(self) -> None:
        self.connection.close()
