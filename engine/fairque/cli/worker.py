"""``fairque worker`` (run one worker, or N supervised processes), ``fairque worker
list`` and ``fairque health``."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fairque.cli.common import (
    JsonOption,
    RedisUrlOption,
    StateDirOption,
    cli_errors,
    console,
    fail,
    redis_url_for,
)
from fairque.core.config import FairQueueConfig
from fairque.monitoring.health import check_health, live_workers
from fairque.queue.sync_queue import TaskQueue
from fairque.worker.async_worker import AsyncWorker
from fairque.worker.handler import TaskHandler, resolve_function
from fairque.worker.supervisor import supervise
from fairque.worker.sync_worker import Worker

worker_app = typer.Typer(help="Run workers and list the live ones.")

_Users = Annotated[
    str | None,
    typer.Option("--users", help="Assigned users, comma-separated; '*' = every user."),
]


def _split(text: str | None) -> list[str] | None:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


def build_config(
    config_file: Path | None,
    worker_id: str | None,
    redis_url: str | None,
    state_dir: Path | None,
    **settings: Any,
) -> FairQueueConfig:
    """The worker's config: the YAML file (or defaults), then the command-line settings.

    The Redis location is FAIRQUE_REDIS_URL or --redis-url when given, else the file's
    ``redis`` section, else the embedded server of the state folder.
    """
    given = {k: v for k, v in settings.items() if v is not None}
    if config_file is not None:
        config = FairQueueConfig.from_yaml(config_file, worker_id=worker_id)
        if redis_url or os.environ.get("FAIRQUE_REDIS_URL"):
            config = config.with_redis(redis_url_for(redis_url, state_dir))
        return config.with_worker(**given) if given else config
    identity = worker_id or f"{socket.gethostname()}-{os.getpid()}"
    config = FairQueueConfig.create_default(
        worker_id=identity, redis=redis_url_for(redis_url, state_dir)
    )
    return config.with_worker(**given) if given else config


@worker_app.callback(invoke_without_command=True)
def worker(
    ctx: typer.Context,
    config_file: Annotated[
        Path | None, typer.Option("--config", help="YAML config file (the seed's format).")
    ] = None,
    worker_id: Annotated[str | None, typer.Option("--worker-id", help="Which worker.")] = None,
    users: _Users = None,
    steal: Annotated[
        str | None, typer.Option("--steal", help="Steal targets, comma-separated.")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", help="max_concurrent_tasks.")
    ] = None,
    lease_seconds: Annotated[float | None, typer.Option("--lease-seconds")] = None,
    grace: Annotated[
        float | None, typer.Option("--shutdown-grace", help="shutdown_grace_seconds.")
    ] = None,
    max_recoveries: Annotated[int | None, typer.Option("--max-recoveries")] = None,
    poll: Annotated[float | None, typer.Option("--poll-interval")] = None,
    allowed_modules: Annotated[
        str | None,
        typer.Option("--allowed-modules", help="Module prefixes tasks may come from."),
    ] = None,
    handler: Annotated[
        str | None,
        typer.Option("--handler", help="A TaskHandler subclass as module:Class."),
    ] = None,
    processes: Annotated[
        int, typer.Option("--processes", "-p", min=1, help="Worker processes to supervise.")
    ] = 1,
    use_async: Annotated[bool, typer.Option("--async", help="Use the AsyncWorker.")] = False,
    instance: Annotated[
        int | None, typer.Option("--instance", hidden=True, help="Suffix of a child's id.")
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level")] = "INFO",
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Run a worker until SIGTERM/SIGINT (the current folder is importable for tasks)."""
    if ctx.invoked_subcommand is not None:
        return
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    sys.path.insert(0, os.getcwd())
    with cli_errors():
        config = build_config(
            config_file,
            worker_id,
            redis_url,
            state_dir,
            assigned_users=_split(users),
            steal_targets=_split(steal),
            max_concurrent_tasks=concurrency,
            lease_seconds=lease_seconds,
            shutdown_grace_seconds=grace,
            max_recoveries=max_recoveries,
            poll_interval_seconds=poll,
            allowed_modules=_split(allowed_modules),
        )
        if instance is not None:
            config = config.with_worker(id=f"{config.worker.id}-{instance}")
        if processes > 1:
            raise typer.Exit(_supervise(config, processes))
        task_handler = _handler(handler, config)
        if use_async:
            asyncio.run(_run_async(config, task_handler))
        else:
            with Worker(config, task_handler) as running:
                running.start()


def _supervise(config: FairQueueConfig, processes: int) -> int:
    base = _without_option(sys.argv[1:], ("--processes", "-p", "--redis-url"))
    url = config.redis.resolved_url()

    def command(index: int) -> list[str]:
        return [
            *(sys.executable, "-m", "fairque.cli.app", *base),
            *("--instance", str(index + 1), "--redis-url", url),
        ]

    return supervise(command, processes)


def _without_option(argv: list[str], names: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in names:
            skip = True
            continue
        if any(arg.startswith(name + "=") for name in names):
            continue
        out.append(arg)
    return out


def _handler(path: str | None, config: FairQueueConfig) -> TaskHandler:
    if path is None:
        return TaskHandler()
    factory = resolve_function(path, config.worker.allowed_modules)
    instance = factory()
    if not isinstance(instance, TaskHandler):
        fail(f"--handler {path} is not a TaskHandler subclass")
    return instance


async def _run_async(config: FairQueueConfig, handler: TaskHandler) -> None:
    async with AsyncWorker(config, handler) as running:
        await running.start()


@worker_app.command("list")
def list_workers(
    as_json: JsonOption = False,
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Show the live workers (their heartbeat has not expired)."""
    with cli_errors():
        url = redis_url_for(redis_url, state_dir)
        with TaskQueue(FairQueueConfig.create_default(redis=url)) as queue:
            workers = live_workers(queue)
    if as_json:
        console.print_json(json.dumps([w.to_dict() for w in workers]))
        return
    table = Table("id", "host", "pid", "assigned", "steals", "running", "processed", "failed")
    for w in workers:
        table.add_row(
            w.id,
            w.host,
            str(w.pid),
            ",".join(w.assigned_users),
            ",".join(w.steal_targets),
            f"{len(w.running)}/{w.max_concurrent_tasks}",
            str(w.processed),
            str(w.failed),
        )
    console.print(table if workers else "no live workers")


def health(
    as_json: JsonOption = False,
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Exit 1 when Redis is unreachable or a user with queued tasks has no live worker."""
    with cli_errors():
        url = redis_url_for(redis_url, state_dir, start_embedded=False)
        with TaskQueue(FairQueueConfig.create_default(redis=url)) as queue:
            report = check_health(queue)
    if as_json:
        console.print_json(json.dumps(report.to_dict()))
    else:
        console.print(f"live workers: {len(report.workers)}")
        for user in report.unserved_users:
            console.print(
                f"[red]unserved:[/red] {user} has {report.queued_by_user[user]} queued task(s) "
                "and no live worker serves it"
            )
        console.print("[green]healthy[/green]" if report.ok else "[red]unhealthy[/red]")
    if not report.ok:
        raise typer.Exit(1)
