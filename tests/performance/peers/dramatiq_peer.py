"""Dramatiq with the Redis broker: ``dramatiq module --processes 1 --threads 8``, and
``--processes N`` for its multi-process set-up.

Its actors are bound to one queue each, so a per-user queue is not how its users share
a worker; it is measured with one shared queue only.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version

import redis

from tests.performance.common import WORKER_SLOTS
from tests.performance.peers import dramatiq_app
from tests.performance.procs import Launcher
from tests.performance.systems import SHARED, System, python_module

QUEUE = "default"


class DramatiqSystem(System):
    name = "dramatiq"
    layouts = (SHARED,)
    setup = f"dramatiq --processes 1 --threads {WORKER_SLOTS}; N processes: --processes N"

    def __init__(self, redis_url: str, launcher: Launcher) -> None:
        super().__init__(redis_url, launcher)
        self.connection = redis.Redis.from_url(redis_url)
        # every message not yet acknowledged (queued or running) is in this hash
        self._messages = f"{dramatiq_app.broker.namespace}:{QUEUE}.msgs"

    @property
    def version(self) -> str:
        return version("dramatiq")

    def queue_of(self, user: str) -> str:
        return QUEUE

    def sender(self, job: str, user: str) -> Callable[..., object]:
        send: Callable[..., object] = getattr(dramatiq_app, job).send
        return send

    def remaining(self) -> int:
        return int(self.connection.hlen(self._messages))

    def worker_argv(self) -> list[str]:
        return self.processes_argv(1)

    def processes_argv(self, processes: int) -> list[str]:
        return python_module(
            "dramatiq",
            "tests.performance.peers.dramatiq_app",
            *("--processes", str(processes), "--threads", str(WORKER_SLOTS)),
        )

    def close(self) -> None:
        self.connection.close()
