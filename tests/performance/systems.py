"""A system under test (fairque or a peer) behind one small interface, so that every
shared scenario drives each of them the same way on the same server."""

from __future__ import annotations

import contextlib
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import version

from fairque import FairQueueConfig, Task, TaskQueue
from fairque.queue.calls import PipelineCall, parse_state_reads
from tests.performance.common import WORKER_SLOTS
from tests.performance.jobs import NOOP_BODY, plain_job, stamped_job
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
    def sender(self, job: str, user: str) -> Callable[..., object]:
        """A callable queuing one task of ``user`` that runs ``job`` (a function of
        ``jobs.py``) with the arguments it is called with."""

    def time_enqueue_one(self, count: int, user: str, body: str = NOOP_BODY) -> float:
        """Seconds to enqueue ``count`` tasks with ``body`` one call at a time."""
        job, args = plain_job(body)
        send = self.sender(job, user)
        started = time.perf_counter()
        for _ in range(count):
            send(*args)
        return time.perf_counter() - started

    def time_enqueue_batch(
        self, count: int, batch: int, user: str, body: str = NOOP_BODY
    ) -> float | None:
        """Seconds to enqueue ``count`` tasks ``batch`` per call; None without a batch API."""
        return None

    def fill(
        self, user: str, count: int, tokens: Sequence[str] | None = None, body: str = NOOP_BODY
    ) -> None:
        """Queue ``count`` tasks with ``body`` (or one stamped task per token) as fast as
        possible."""
        if tokens is None:
            job, args = plain_job(body)
            send = self.sender(job, user)
            for _ in range(count):
                send(*args)
        else:
            send = self.sender(stamped_job(body), user)
            for token in tokens:
                send(token)

    def push_stamp(self, token: str, user: str, body: str = NOOP_BODY) -> None:
        """Queue one task of ``user`` that records ``token`` when it starts (with ``body``)."""
        self.sender(stamped_job(body), user)(token)

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

    def processes_argv(self, processes: int) -> list[str] | None:
        """The system's recommended multi-process worker command (``processes`` worker
        processes), or None when its CLI has none."""
        return None

    @contextlib.contextmanager
    def workers(self, processes: int) -> Iterator[WorkerProcess]:
        """The multi-process worker (see :meth:`processes_argv`) for the block."""
        argv = self.processes_argv(processes)
        if argv is None:
            raise ValueError(f"{self.name} has no multi-process worker command")
        with self.launcher.running(f"{self.name}-x{processes}", argv) as process:
            yield process

    def close(self) -> None:  # noqa: B027 (a hook: nothing to release by default)
        """Release connections."""


JOBS_MODULE = "tests.performance.jobs"
NOOP = f"{JOBS_MODULE}:noop"


class FairqueSystem(System):
    """fairque: ``fairque worker --users '*'`` as a subprocess."""

    name = "fairque"
    layouts = (FAIR,)
    setup = f"fairque worker --users '*' --concurrency {WORKER_SLOTS}"

    def __init__(self, redis_url: str, launcher: Launcher) -> None:
        super().__init__(redis_url, launcher)
        self.queue = TaskQueue(FairQueueConfig.create_default(redis=redis_url))

    @property
    def version(self) -> str:
        return version("fairque")

    def sender(self, job: str, user: str) -> Callable[..., object]:
        push, func = self.queue.push, f"{JOBS_MODULE}:{job}"

        def send(*args: str) -> object:
            return push(Task.create(user, func=func, args=list(args)))

        return send

    def _tasks(self, user: str, count: int, body: str) -> list[Task]:
        job, args = plain_job(body)
        func = f"{JOBS_MODULE}:{job}"
        return [Task.create(user, func=func, args=list(args)) for _ in range(count)]

    def time_enqueue_batch(
        self, count: int, batch: int, user: str, body: str = NOOP_BODY
    ) -> float | None:
        push_batch = self.queue.push_batch
        started = time.perf_counter()
        for done in range(0, count, batch):
            push_batch(self._tasks(user, min(batch, count - done), body))
        return time.perf_counter() - started

    def fill(
        self, user: str, count: int, tokens: Sequence[str] | None = None, body: str = NOOP_BODY
    ) -> None:
        func = f"{JOBS_MODULE}:{stamped_job(body)}"
        for done in range(0, count, FILL_CHUNK):
            size = min(FILL_CHUNK, count - done)
            if tokens is None:
                tasks = self._tasks(user, size, body)
            else:
                chunk = tokens[done : done + size]
                tasks = [Task.create(user, func=func, args=[t]) for t in chunk]
            self.queue.push_batch(tasks)

    def remaining(self) -> int:
        reads = PipelineCall(self.queue.calls.state_reads(), lambda r: parse_state_reads(r, 0)[0])
        counts = self.queue.run_pipeline(reads)
        return counts["queued"] + counts["started"]

    def worker_argv(self) -> list[str]:
        return python_module(
            "fairque.cli.app",
            "worker",
            *("--users", "*", "--concurrency", str(WORKER_SLOTS)),
            *("--allowed-modules", "tests.performance", "--redis-url", self.redis_url),
            *("--log-level", "WARNING"),
        )

    def processes_argv(self, processes: int) -> list[str] | None:
        return [*self.worker_argv(), "--processes", str(processes)]

    def close(self) -> None:
        self.queue.close()
