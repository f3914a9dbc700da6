"""Factories for queues against the real test server (see tests/conftest.py).

A module marked ``pytestmark = pytest.mark.both_queues`` runs each test twice: once with
``make_queue`` building TaskQueues, once building AsyncTaskQueues behind
:class:`BlockingView`, so one test body checks both queues.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import redis
import redis.asyncio
from typer.testing import CliRunner

from fairque import AsyncRunHandle, AsyncTaskQueue, FairQueueConfig, TaskQueue, Worker
from fairque.core.models import TaskRecord
from tests.timing import budget

ConfigFactory = Callable[..., FairQueueConfig]
QueueFactory = Callable[..., TaskQueue]
T = TypeVar("T")

BOTH_QUEUES = "both_queues"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{BOTH_QUEUES}: run each test with TaskQueue and with AsyncTaskQueue"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marked = metafunc.definition.get_closest_marker(BOTH_QUEUES) is not None
    if marked and "queue_kind" in metafunc.fixturenames:
        metafunc.parametrize("queue_kind", ["sync", "async"])


class PrivateLoop:
    """An event loop on its own thread; :meth:`run` waits for a coroutine from any thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


_VIEWED = (AsyncTaskQueue, AsyncRunHandle, redis.asyncio.Redis)


class BlockingView:
    """The blocking face of an async object: every coroutine it returns is run to the end
    on ``loop``, and an AsyncRunHandle (or client) it returns is viewed the same way."""

    def __init__(self, target: object, loop: PrivateLoop) -> None:
        self._target = target
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return self._view(value)

        def call(*args: Any, **kwargs: Any) -> Any:
            result = value(*args, **kwargs)
            if inspect.iscoroutine(result):
                result = self._loop.run(result)
            return self._view(result)

        return call

    def _view(self, value: object) -> Any:
        return BlockingView(value, self._loop) if isinstance(value, _VIEWED) else value


@pytest.fixture
def queue_kind() -> str:
    """Which queue ``make_queue`` builds: "sync", or both in a ``both_queues`` module."""
    return "sync"


@pytest.fixture
def make_config(redis_url: str, redis_client: redis.Redis) -> ConfigFactory:
    """Build a config on the clean test database; keywords as in create_default."""

    def make(**settings: Any) -> FairQueueConfig:
        settings.setdefault("worker_id", "test-worker")
        return FairQueueConfig.create_default(redis=redis_url, **settings)

    return make


@pytest.fixture
def make_queue(make_config: ConfigFactory, queue_kind: str) -> Iterator[QueueFactory]:
    """Build queues (closed at teardown); keywords as in create_default. A TaskQueue, or
    for ``queue_kind`` "async" an AsyncTaskQueue behind a BlockingView."""
    closers: list[Callable[[], object]] = []
    loop = PrivateLoop() if queue_kind == "async" else None

    def make(**settings: Any) -> TaskQueue:
        config = make_config(**settings)
        if loop is None:
            queue = TaskQueue(config)
            closers.append(queue.close)
            return queue
        view = cast(TaskQueue, BlockingView(AsyncTaskQueue(config), loop))
        closers.append(view.close)
        view.ping()
        return view

    yield make
    for close in closers:
        close()
    if loop is not None:
        loop.close()


@contextmanager
def background_worker(redis_url: str, worker_id: str, **settings: Any) -> Iterator[Worker]:
    """A Worker polling every 0.1 s in a background thread (4 tasks at once), stopped
    and closed on exit; keywords as in create_default (they may change those two)."""
    settings = {"poll_interval_seconds": 0.1, "max_concurrent_tasks": 4, **settings}
    config = FairQueueConfig.create_default(worker_id=worker_id, redis=redis_url, **settings)
    running = Worker(config)
    running.start_background()
    yield running
    running.stop(graceful=False)
    assert running.join(budget(10))
    running.queue.close()


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(redis_url: str, redis_client: object, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """typer's runner with the test server and the repository's dags/ (run from its root)."""
    monkeypatch.setenv("FAIRQUE_REDIS_URL", redis_url)
    monkeypatch.setenv("FAIRQUE_DAGS_FOLDER", str(ROOT / "dags"))
    monkeypatch.chdir(ROOT)
    return CliRunner()


@pytest.fixture
def worker(redis_url: str, redis_client: object) -> Iterator[Worker]:
    """A background worker with the default allowed modules (examples, dags)."""
    with background_worker(redis_url, "dag-worker") as running:
        yield running


def invoke(cli: CliRunner, *args: str) -> tuple[int, str]:
    """Run ``fairque ARGS`` in ``cli``: (exit code, output)."""
    from fairque.cli.app import app

    result = cli.invoke(app, list(args))
    return result.exit_code, result.output


def drain(queue: TaskQueue, limit: int = 100_000) -> list[TaskRecord]:
    """Pop until nothing is ready (or ``limit`` tasks): the tasks in claim order."""
    served: list[TaskRecord] = []
    while len(served) < limit:
        task = queue.pop()
        if task is None:
            break
        served.append(task)
    return served
