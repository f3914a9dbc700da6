"""Huey with Redis: ``huey_consumer module.huey -w 8 -k thread``, and its multi-process
set-up ``huey_consumer -k process -w N``.

A Huey consumer serves one Huey instance (one queue), so it is measured with one shared
queue only.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version

from tests.performance.common import WORKER_SLOTS
from tests.performance.peers import huey_app
from tests.performance.systems import SHARED, System, python_module


class HueySystem(System):
    name = "huey"
    layouts = (SHARED,)
    setup = f"huey_consumer -w {WORKER_SLOTS} -k thread; N processes: -k process -w N"

    @property
    def version(self) -> str:
        return version("huey")

    def sender(self, job: str, user: str) -> Callable[..., object]:
        send: Callable[..., object] = getattr(huey_app, job)  # calling a Huey task queues it
        return send

    def remaining(self) -> int:
        return int(huey_app.huey.pending_count())

    def _argv(self, workers: int, kind: str) -> list[str]:
        return python_module(
            "huey.bin.huey_consumer",
            "tests.performance.peers.huey_app.huey",
            *("-w", str(workers), "-k", kind, "-q"),
        )

    def worker_argv(self) -> list[str]:
        return self._argv(WORKER_SLOTS, "thread")

    def processes_argv(self, processes: int) -> list[str] | None:
        return self._argv(processes, "process")
