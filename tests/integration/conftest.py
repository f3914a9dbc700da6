"""Factories for queues against the real test server (see tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from fairque import FairQueueConfig, TaskQueue

ConfigFactory = Callable[..., FairQueueConfig]
QueueFactory = Callable[..., TaskQueue]


@pytest.fixture
def make_config(redis_url: str, redis_client: redis.Redis) -> ConfigFactory:
    """Build a config on the clean test database; keywords as in create_default."""

    def make(**settings: Any) -> FairQueueConfig:
        settings.setdefault("worker_id", "test-worker")
        return FairQueueConfig.create_default(redis=redis_url, **settings)

    return make


@pytest.fixture
def make_queue(make_config: ConfigFactory) -> Iterator[QueueFactory]:
    """Build TaskQueues (closed at teardown); keywords as in create_default."""
    queues: list[TaskQueue] = []

    def make(**settings: Any) -> TaskQueue:
        queue = TaskQueue(make_config(**settings))
        queues.append(queue)
        return queue

    yield make
    for queue in queues:
        queue.close()
