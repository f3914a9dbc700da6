"""Celery with the Redis broker: ``celery -A ... worker -P solo``.

"One worker process" is the solo pool: the worker runs tasks in its own process, as
fairque's worker does (prefork with concurrency 1 would add a child process and IPC).
Queue per user: one queue per user and ``-Q`` listing all of them; kombu's Redis
transport rotates the queues it reads from, so the worker takes them in turn.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version

import redis

from tests.performance.peers import celery_app
from tests.performance.procs import Launcher
from tests.performance.systems import PER_USER, SHARED, System, python_module

UNACKED = "unacked"  # kombu's hash of delivered, unacknowledged messages


class CelerySystem(System):
    name = "celery"
    layouts = (SHARED, PER_USER)
    setup = "celery worker -P solo (prefetch x4); queue per user: -Q q1,q2,..."

    def __init__(self, redis_url: str, launcher: Launcher) -> None:
        super().__init__(redis_url, launcher)
        self.connection = redis.Redis.from_url(redis_url)

    @property
    def version(self) -> str:
        return version("celery")

    def sender(self, job: str, user: str) -> Callable[..., object]:
        send, queue = getattr(celery_app, job).apply_async, self.queue_of(user)

        def enqueue(*args: str) -> object:
            return send(args, queue=queue)

        return enqueue

    def remaining(self) -> int:
        pipe = self.connection.pipeline(transaction=False)
        for name in self.queues():
            pipe.llen(name)
        pipe.hlen(UNACKED)
        return sum(pipe.execute())

    def worker_argv(self) -> list[str]:
        return python_module(
            "celery",
            *("-A", "tests.performance.peers.celery_app", "worker"),
            *("-P", "solo", "--loglevel", "WARNING"),
            *("-Q", ",".join(self.queues())),
        )

    def close(self) -> None:
        self.connection.close()
