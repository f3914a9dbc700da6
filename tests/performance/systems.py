"""A system under test (fairque or a peer) behind one small interface, so that every
shared scenario drives each of them the same way on the same server."""

from __future__ import annotations

import contextlib
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from importlib.metadata import version

from fairque import FairQueueConfig, Task, TaskQueue
from tests.performance.common import WORKER_SLOTS
from tests.performance.procs import Launcher, WorkerProcess

SHARED = "shared"  # one queue for every user (FIFO)
PER_USER = "per-user"  # one queue per user, the worker listening on all of them
FAIR = "fair"  # fairque's own round robin over users
FILL_CHUNK = 1_000


def python_module(module: str, *args: str) -> list[str]:
    """``python -m module args`` with this interpreter (a system's own CLI entry point)."""
    return [sys.executable, "-m", module, *args]


class System(ABC):
    """One queue system: how to enqueue, fill, watch and run a worker."""

    name: str = ""
    layouts: tuple[str, ...] = (SHARED,)
    setup: str = ""  # the worker set-up, as reported

    def __init__(self, redis_url: str, launcher: Launcher) -> None:
        self.redis_url = redis_url
        self.launcher = launcher
        self.layout = self.layouts[0]
        self.users: list[str] = ["bench"]

    @property
    @abstractmethod
    def version(self) -> str:
        """The installed version."""

    def use_layout(self, layout: str, users: Sequence[str]) -> None:
        """Queue the following tasks of ``users`` in ``layout`` (see ``layouts``)."""
        self.layout = layout
        self.users = list(users)

    def queue_of(self, user: str) -> str:
        """The queue name a user's tasks go to in the current layout."""
        return f"bench-{user}" if self.layout == PER_USER else "bench"

    def queues(self) -> list[str]:
        """Every queue of the current layout, in user order."""
        return list(dict.fromkeys(self.queue_of(u) for u in self.users))

    @abstractmethod
    def time_enqueue_one(self, count: int, user: str) -> float:
        """Seconds to enqueue ``count`` no-op tasks one call at a time."""

    def time_enqueue_batch(self, count: int, batch: int, user: str) -> float | None:
        """Seconds to enqueue ``count`` no-op tasks ``batch`` per call; None without a batch API."""
        return None

    @abstractmethod
    def fill(self, user: str, count: int, tokens: Sequence[str] | None = None) -> None:
        """Queue ``count`` no-op tasks (or one ``stamp`` task per token) as fast as possible."""

    @abstractmethod
    def push_stamp(self, token: str, user: str) -> None:
        """Queue one ``stamp(token)`` task for ``user``."""

    @abstractmethod
    def remaining(self) -> int:
        """Tasks queued or running (not yet done) in the current layout's queues."""

    @abstractmethod
    def worker_argv(self) -> list[str]:
        """The command that runs one worker process on the current layout's queues."""

    @contextlib.contextmanager
    def worker(self) -> Iterator[WorkerProcess]:
        """One worker process for the duration of the block."""
        with self.launcher.running(self.name, self.worker_argv()) as process:
            yield process

    def close(self) -> None:  # noqa: B027 (a hook: nothing to release by default)
        """Release connections."""


NOOP = "tests.performance.jobs:noop"
STAMP = "tests.performance.jobs:stamp"


class FairqueSystem(System):
    """fairque: ``fairque worker --users '*'`` as a subprocess."""

    name = "fairque"
    layouts = (FAIR,)
    setup = f"fairque worker --users '*' --concurrency {WORKER_SLOTS}"

    def __init__(self, redis_url: str, launcher: Launcher) -> None:
        super().__init__(redis_url, launcher)
        self.queue = TaskQueue(FairQueueConfig.create_default(redis=redis_url))
        self._states = [self.queue.keys.state("queued"), self.queue.keys.state("started")]

    @property
    def version(self) -> str:
        return version("fairque")

    def time_enqueue_one(self, count: int, user: str) -> float:
        push = self.queue.push
        started = time.perf_counter()
        for _ in range(count):
            push(Task.create(user, func=NOOP))
        return time.perf_counter() - started

    def time_enqueue_batch(self, count: int, batch: int, user: str) -> float | None:
        push_batch = self.queue.push_batch
        started = time.perf_counter()
        for done in range(0, count, batch):
            push_batch([Task.create(user, func=NOOP) for _ in range(min(batch, count - done))])
        return time.perf_counter() - started

    def fill(self, user: str, count: int, tokens: Sequence[str] | None = None) -> None:
        for done in range(0, count, FILL_CHUNK):
            size = min(FILL_CHUNK, count - done)
            if tokens is None:
                tasks = [Task.create(user, func=NOOP) for _ in range(size)]
            else:
                chunk = tokens[done : done + size]
                tasks = [Task.create(user, func=STAMP, args=[t]) for t in chunk]
            self.queue.push_batch(tasks)

    def push_stamp(self, token: str, user: str) -> None:
        self.queue.push(Task.create(user, func=STAMP, args=[token]))

    def remaining(self) -> int:
        pipe = self.queue.redis.pipeline(transaction=False)
        for key in self._states:
            pipe.zcard(key)
        return sum(pipe.execute())

    def worker_argv(self, processes: int = 1) -> list[str]:
        argv = python_module(
            "fairque.cli.app",
            "worker",
            *("--users", "*", "--concurrency", str(WORKER_SLOTS)),
            *("--allowed-modules", "tests.performance", "--redis-url", self.redis_url),
            *("--log-level", "WARNING"),
        )
        return [*argv, "--processes", str(processes)] if processes > 1 else argv

    @contextlib.contextmanager
    def workers(self, processes: int) -> Iterator[WorkerProcess]:
        """``fairque worker --processes N`` (N supervised worker processes)."""
        with self.launcher.running(f"fairque-x{processes}", self.worker_argv(processes)) as p:
            yield p

    def close(self) -> None:
        self.queue.close()
