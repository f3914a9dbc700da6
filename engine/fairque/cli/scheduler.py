"""``fairque scheduler``: fire cron schedules and scheduled DAGs (run several for HA)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from fairque.cli.common import (
    LogFormatOption,
    LogLevelOption,
    RedisUrlOption,
    StateDirOption,
    cli_errors,
    redis_url_for,
    setup_logging,
)
from fairque.core.config import FairQueueConfig


def scheduler(
    dags_folder: Annotated[
        Path | None,
        typer.Option(
            "--dags-folder",
            envvar="FAIRQUE_DAGS_FOLDER",
            help="Folder of DAG files whose `schedule:` to fire [default: ./dags].",
            show_default=False,
        ),
    ] = None,
    no_dags: Annotated[bool, typer.Option("--no-dags", help="Fire task schedules only.")] = False,
    tick: Annotated[float, typer.Option(help="Seconds between passes.")] = 0.2,
    lock_ttl: Annotated[
        float,
        typer.Option(help="Seconds the lock (and a claim on due DAGs) outlives its owner."),
    ] = 3.0,
    batch_size: Annotated[
        int,
        typer.Option(
            min=1,
            help="Due DAGs claimed (and fired) at a time; the other schedulers claim the "
            "next ones meanwhile.",
        ),
    ] = 250,
    lag_warning: Annotated[
        float,
        typer.Option(min=0, help="Log a warning when DAG runs are created this late (s)."),
    ] = 5.0,
    log_level: LogLevelOption = "INFO",
    log_format: LogFormatOption = "text",
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Fire the due DAG ticks (with any number of other schedulers: each tick once) and,
    while holding the scheduler lock, the task schedules. Also queues due retries and
    reclaims expired leases. Stops within a second on SIGTERM/SIGINT."""
    from fairque.scheduler.scheduler import TaskScheduler

    setup_logging(log_level, log_format)
    sys.path.insert(0, os.getcwd())
    with cli_errors():
        url = redis_url_for(redis_url, state_dir)
        config = FairQueueConfig.create_default(worker_id=f"scheduler-{os.getpid()}", redis=url)
        folder = None if no_dags else (dags_folder or Path("dags"))
        TaskScheduler(
            config,
            dags_folder=folder,
            tick_seconds=tick,
            lock_ttl_seconds=lock_ttl,
            batch_size=batch_size,
            lag_warning_seconds=lag_warning,
        ).start()
    # Stopped, the lock and claims given back: leave at once, without tearing down the
    # loaded DAGs and their run templates (with thousands of them that alone takes a
    # second), or waiting for a pass that was left running.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
