"""Huey with Redis: ``huey_consumer module.huey -w 8 -k thread``.

A Huey consumer serves one Huey instance (one queue), so it is measured with one shared
queue only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from importlib.metadata import version

from tests.performance.common import WORKER_SLOTS
from tests.performance.peers import huey_app
from tests.performance.systems import SHARED, System, python_module


class HueySystem(System):
    name = "huey"
    layouts = (SHARED,)
    setup = f"huey_consumer -w {WORKER_SLOTS} -k thread"

    @property
    def version(self) -> str:
        return version("huey")

    def time_enqueue_one(self, count: int, user: str) -> float:
        noop = huey_app.noop
        started = time.perf_counter()
        for _ in range(count):
            noop()
        return time.perf_counter() - started

    def fill(self, user: str, count: int, tokens: Sequence[str] | None = None) -> None:
        if tokens is None:
            for _ in range(count):
                huey_app.noop()
        else:
            for token in tokens:
                huey_app.stamp(token)

    def push_stamp(self, token: str, user: str) -> None:
        huey_app.stamp(token)

    def remaining(self) -> int:
        return int(huey_app.huey.pending_count())

    def worker_argv(self) -> list[str]:
        return python_module(
            "huey.bin.huey_consumer",
            "tests.performance.peers.huey_app.huey",
            *("-w", str(WORKER_SLOTS), "-k", "thread", "-q"),
        )
