"""Where a queue connects: the named server, else FAIRQUE_REDIS_URL, else the embedded one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fairque import FairQueueConfig, TaskQueue
from fairque.core.errors import RedisUnavailableError
from fairque.queue.async_queue import AsyncTaskQueue
from fairque.server import EmbeddedServer

UNREACHABLE = "redis://127.0.0.1:1/0"


def test_nothing_configured_uses_the_embedded_server(state_dir: Path) -> None:
    config = FairQueueConfig.create_default()
    assert not state_dir.exists()  # nothing is resolved when the config is made
    with TaskQueue(config) as queue:
        assert queue.url == EmbeddedServer(state_dir).url
        queue.ping()
    with TaskQueue(FairQueueConfig.create_default()) as again:
        assert again.url == queue.url  # found, not started twice


def test_async_queue_uses_the_embedded_server_too(state_dir: Path) -> None:
    async def connect() -> str:
        async with AsyncTaskQueue(FairQueueConfig.create_default()) as queue:
            return queue.url

    assert asyncio.run(connect()) == EmbeddedServer(state_dir).url


def test_env_url_wins_over_the_embedded_server(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, state_dir: Path
) -> None:
    monkeypatch.setenv("FAIRQUE_REDIS_URL", redis_url)
    with TaskQueue(FairQueueConfig.create_default()) as queue:
        assert queue.url == redis_url
    assert not state_dir.exists()


def test_explicit_redis_wins_over_the_env_url(
    monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    monkeypatch.setenv("FAIRQUE_REDIS_URL", UNREACHABLE)
    with TaskQueue(FairQueueConfig.create_default(redis=redis_url)) as queue:
        assert queue.url == redis_url
    with pytest.raises(RedisUnavailableError, match=r"127\.0\.0\.1:1\b"):
        TaskQueue(FairQueueConfig.create_default())


def test_worker_command_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from fairque.cli.worker import build_config

    named = tmp_path / "named.yaml"
    named.write_text("redis: {url: 'redis://from-file:6379/1'}\nworkers: [{id: w1}]\n")
    unnamed = tmp_path / "unnamed.yaml"
    unnamed.write_text("workers: [{id: w1}]\n")
    monkeypatch.setenv("FAIRQUE_REDIS_URL", "redis://from-env:6379/2")
    env = "redis://from-env:6379/2"  # typer passes the variable as the option's value

    def url(file: Path, option: str | None) -> str | None:
        return build_config(file, None, option, None).redis.resolved_url()

    assert url(named, env) == "redis://from-file:6379/1"
    assert url(unnamed, env) == env
    assert url(named, "redis://from-option:6379/3") == "redis://from-option:6379/3"
