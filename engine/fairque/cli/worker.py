"""``fairque worker`` (run one worker, or N supervised processes), ``fairque worker
list`` and ``fairque health``.

The worker, queue and monitoring modules are imported by the commands that use them,
so that building the app (``fairque --help``) loads none of them.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from fairque.cli.common import (
    JsonOption,
    LogFormatOption,
    LogLevelOption,
    RedisUrlOption,
    StateDirOption,
    cli_errors,
    console,
    fail,
    redis_url_for,
    setup_logging,
)
from fairque.core.config import REDIS_URL_ENV, FairQueueConfig
from fairque.core.imports import resolve_class

if TYPE_CHECKING:
    from fairque.monitoring.metrics import WorkerMetrics
    from fairque.worker.handler import TaskHandler
    from fairque.worker.runtime import WorkerObserver

logger = logging.getLogger(__name__)

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

    The Redis location is --redis-url when given, else the file's ``redis`` section when
    it names a server, else FAIRQUE_REDIS_URL, else the embedded server of the state
    folder (explicit beats the environment, as in ``redis_location``).
    """
    given = {k: v for k, v in settings.items() if v is not None}
    if config_file is not None:
        config = FairQueueConfig.from_yaml(config_file, worker_id=worker_id)
        from_env = redis_url is not None and redis_url == os.environ.get(REDIS_URL_ENV)
        if (redis_url and not from_env) or config.redis.explicit_url() is None:
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
    queues: Annotated[
        str | None,
        typer.Option(
            "--queues",
            help="Queues to claim from, in turn, comma-separated (default: 'default').",
        ),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", help="max_concurrent_tasks.")
    ] = None,
    prefetch: Annotated[
        int | None,
        typer.Option(
            "--prefetch",
            min=0,
            help="prefetch_tasks: tasks claimed ahead of free slots while tasks are short "
            "(default: half of --concurrency; 0: off).",
        ),
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
    log_level: LogLevelOption = "INFO",
    log_format: LogFormatOption = "text",
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            help="Serve Prometheus metrics on this port (needs fairque[metrics]); "
            "with --processes N, process i serves on port + i - 1.",
        ),
    ] = None,
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Run a worker until SIGTERM/SIGINT (the current folder is importable for tasks).

    Exits 3 when it had to stop without handing back its tasks (Redis unreachable at
    the end of the grace period)."""
    if ctx.invoked_subcommand is not None:
        return
    import asyncio

    from fairque.worker.sync_worker import Worker

    setup_logging(log_level, log_format)
    sys.path.insert(0, os.getcwd())
    with cli_errors():
        config = build_config(
            config_file,
            worker_id,
            redis_url,
            state_dir,
            assigned_users=_split(users),
            steal_targets=_split(steal),
            queues=_split(queues),
            max_concurrent_tasks=concurrency,
            prefetch_tasks=prefetch,
            lease_seconds=lease_seconds,
            shutdown_grace_seconds=grace,
            max_recoveries=max_recoveries,
            poll_interval_seconds=poll,
            allowed_modules=_split(allowed_modules),
        )
        if instance is not None:
            config = config.with_worker(id=f"{config.worker.id}-{instance}")
        metrics = None if metrics_port is None else _metrics_class()
        if processes > 1:
            raise typer.Exit(_supervise(config, processes))
        task_handler = _handler(handler, config)
        with (
            _observer(metrics, _instance_port(metrics_port, instance), config) as observer,
            _gave_up_exits(),
        ):
            if use_async:
                asyncio.run(_run_async(config, task_handler, observer))
            else:
                with Worker(config, task_handler) as running:
                    running.core.observer = observer
                    running.start()


@contextmanager
def _gave_up_exits() -> Iterator[None]:
    """Exit 3 (EXIT_GAVE_UP) when the worker stopped without handing back its tasks."""
    from fairque.core.errors import WorkerShutdownError
    from fairque.core.process import EXIT_GAVE_UP

    try:
        yield
    except WorkerShutdownError:  # logged at ERROR by the worker, with the task ids
        raise typer.Exit(EXIT_GAVE_UP) from None


def _instance_port(port: int | None, instance: int | None) -> int | None:
    """Process ``instance`` of a supervised group serves on ``port + instance - 1``."""
    if not port or instance is None:
        return port
    return port + instance - 1


def _metrics_class() -> type[WorkerMetrics]:
    try:
        from fairque.monitoring.metrics import WorkerMetrics
    except ImportError as e:
        fail(f"--metrics-port: {e}")
    return WorkerMetrics


@contextmanager
def _observer(
    metrics: type[WorkerMetrics] | None, port: int | None, config: FairQueueConfig
) -> Iterator[WorkerObserver]:
    """The worker's observer: WorkerMetrics serving ``port`` when asked, else a no-op."""
    from fairque.queue.sync_queue import TaskQueue
    from fairque.worker.runtime import WorkerObserver

    if metrics is None or port is None:
        yield WorkerObserver()
        return
    with TaskQueue(config) as queue:
        observer = metrics(queue)
        try:
            server = observer.serve(port)
        except OSError as e:
            fail(f"cannot serve metrics on port {port}: {e}")
        logger.info("metrics on :%d/metrics", server.port)
        try:
            yield observer
        finally:
            server.close()


def _supervise(config: FairQueueConfig, processes: int) -> int:
    from fairque.worker.supervisor import supervise

    base = _without_option(sys.argv[1:], ("--processes", "-p", "--redis-url"))
    url = redis_url_for(config.redis.explicit_url(), None)

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
    from fairque.worker.handler import TaskHandler

    if path is None:
        return TaskHandler()
    factory = resolve_class(path, config.worker.allowed_modules)
    if not issubclass(factory, TaskHandler):
        fail(f"--handler {path} is not a TaskHandler subclass")
    return factory()


async def _run_async(
    config: FairQueueConfig, handler: TaskHandler, observer: WorkerObserver
) -> None:
    from fairque.worker.async_worker import AsyncWorker

    async with AsyncWorker(config, handler) as running:
        running.core.observer = observer
        await running.start()


@worker_app.command("list")
def list_workers(
    as_json: JsonOption = False,
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Show the live workers (their heartbeat has not expired)."""
    from fairque.monitoring.documents import workers_document
    from fairque.monitoring.health import live_workers
    from fairque.queue.sync_queue import TaskQueue

    with cli_errors():
        url = redis_url_for(redis_url, state_dir)
        with TaskQueue(FairQueueConfig.create_default(redis=url)) as queue:
            workers = live_workers(queue)
    if as_json:
        console.print_json(json.dumps(workers_document(workers)))
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
    max_queue_depth: Annotated[
        int | None,
        typer.Option("--max-queue-depth", min=0, help="Alert when a user has more queued tasks."),
    ] = None,
    max_oldest_age: Annotated[
        float | None,
        typer.Option("--max-oldest-age", min=0, help="Alert when a task waited longer (s)."),
    ] = None,
    max_failure_rate: Annotated[
        float | None,
        typer.Option(
            "--max-failure-rate",
            min=0,
            max=1,
            help="Alert when more of the tasks ended in the last minute failed (0..1; "
            "judged from 10 ended tasks on).",
        ),
    ] = None,
    require_scheduler: Annotated[
        bool, typer.Option("--require-scheduler", help="Alert when no scheduler holds the lock.")
    ] = False,
    max_tick_lag: Annotated[
        float,
        typer.Option(
            "--max-tick-lag",
            min=0,
            help="Alert when DAG runs are created later than this after their tick (s, p99 "
            "over the last 5 minutes; 0: never).",
        ),
    ] = 30.0,
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Exit 1 while an alert fires: Redis unreachable, a user with queued tasks and no
    live worker, or a threshold given here crossed; 0 otherwise."""
    from fairque.cli.queue import tick_lag_lines
    from fairque.monitoring.alerts import AlertThresholds, evaluate
    from fairque.monitoring.health import health_report, live_workers, scheduler_lock_owner
    from fairque.monitoring.stats import system_view
    from fairque.queue.sync_queue import TaskQueue

    thresholds = AlertThresholds(
        max_queue_depth_per_user=max_queue_depth,
        max_oldest_age_seconds=max_oldest_age,
        max_failure_rate=max_failure_rate,
        require_scheduler_lock=require_scheduler,
        max_tick_lag_seconds=max_tick_lag or None,
    )
    with cli_errors():
        url = redis_url_for(redis_url, state_dir, start_embedded=False)
        with TaskQueue(FairQueueConfig.create_default(redis=url)) as queue:
            workers = live_workers(queue)
            stats = queue.get_stats()
            owner = scheduler_lock_owner(queue)
    report = health_report(stats, workers)
    alerts = evaluate(system_view(stats, workers), thresholds, lock_held=owner is not None)
    if as_json:
        document = {
            **report.to_dict(),
            "ok": not alerts,
            "alerts": [a.to_dict() for a in alerts],
            "scheduler_lock_owner": owner,
            "scheduler_lag": stats["scheduler_lag"],
        }
        console.print_json(json.dumps(document))
    else:
        console.print(f"live workers: {len(report.workers)}")
        console.print(f"scheduler lock: {escape(owner) if owner else 'not held'}")
        for line in tick_lag_lines(dict(stats)):
            console.print(line)
        for alert in alerts:
            console.print(f"[red]{alert.name}:[/red] {escape(alert.message)}")
        console.print("[red]unhealthy[/red]" if alerts else "[green]healthy[/green]")
    if alerts:
        raise typer.Exit(1)
