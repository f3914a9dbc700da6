"""``fairque queue stats``: counts per state, overall and per user."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from fairque.cli.common import (
    JsonOption,
    RedisUrlOption,
    StateDirOption,
    cli_errors,
    console,
    redis_url_for,
)
from fairque.core.config import FairQueueConfig
from fairque.core.models import TaskState
from fairque.queue.sync_queue import TaskQueue

queue_app = typer.Typer(help="Inspect the queue.")

_STATES = [s.value for s in TaskState]


def stats_table(stats: dict[str, Any]) -> Table:
    """The per-user and overall counts as a rich table."""
    table = Table("user", *_STATES, title=f"{stats['tasks_active']} active tasks")
    for user, counts in sorted(stats["users"].items()):
        table.add_row(user, *(str(counts.get(s, 0)) for s in _STATES))
    table.add_section()
    totals = {**stats["states"], **stats["totals"]}
    table.add_row("[bold]all[/bold]", *(str(totals.get(s, 0)) for s in _STATES))
    return table


@queue_app.command()
def stats(
    as_json: JsonOption = False,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 1.0,
    prefix: Annotated[str, typer.Option(help="Key prefix of the queue.")] = "fq",
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Show queued, started, deferred, scheduled and ended counts per user.

    Ended states (finished, failed, canceled) count every task since the start.
    """
    with cli_errors():
        url = redis_url_for(redis_url, state_dir)
        config = FairQueueConfig.create_default(redis=url, stats_prefix=prefix)
        with TaskQueue(config) as queue:
            if as_json:
                console.print_json(json.dumps(queue.get_stats()))
                return
            if not watch:
                console.print(stats_table(queue.get_stats()))
                return
            with Live(stats_table(queue.get_stats()), console=console) as live:
                try:
                    while True:
                        time.sleep(interval)
                        live.update(stats_table(queue.get_stats()))
                except KeyboardInterrupt:
                    pass
