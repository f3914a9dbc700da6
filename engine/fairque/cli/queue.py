"""``fairque queue stats``: counts per user and overall, throughput and worker load."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Group
from rich.markup import escape
from rich.table import Column, Table

from fairque.cli.common import (
    JsonOption,
    RedisUrlOption,
    StateDirOption,
    cli_errors,
    console,
    redis_url_for,
)

queue_app = typer.Typer(help="Inspect the queue.")

_PRIORITIES = [str(p) for p in range(1, 7)]
_ACTIVE = ["started", "deferred", "scheduled"]
_ENDED = ["finished", "failed", "canceled"]


def age_text(seconds: float | None) -> str:
    """A short human form of an age in seconds ("-" for none)."""
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _table(headers: list[str], **options: Any) -> Table:
    """A compact table whose cells wrap (never cut) in a narrow terminal."""
    columns = [Column(h, overflow="fold") for h in headers]
    return Table(*columns, box=box.SIMPLE_HEAD, padding=0, **options)


def _row(
    name: str,
    counts: dict[str, Any],
    by_priority: dict[str, int],
    priorities: list[str],
    age: float | None,
) -> list[str]:
    return [
        name,
        str(counts.get("queued", 0)),
        *(str(by_priority.get(p) or "") for p in priorities),
        *(str(counts.get(s, 0)) for s in [*_ACTIVE, *_ENDED]),
        age_text(age),
    ]


def users_table(stats: dict[str, Any], limit: int) -> Table:
    """Per-user counts (the busiest ``limit`` users), then the overall row. Queued
    tasks are also shown per priority (``p1``..``p6``, only the priorities in use)."""
    users: dict[str, dict[str, Any]] = stats["users"]
    overall_by_priority: dict[str, int] = {}
    for counts in users.values():
        for p, n in counts.get("queued_by_priority", {}).items():
            overall_by_priority[p] = overall_by_priority.get(p, 0) + n
    priorities = [p for p in _PRIORITIES if overall_by_priority.get(p)]
    ended = stats.get("ended_last_minute", {})
    caption = (
        f"last minute: {stats.get('throughput_per_second', 0.0):.2f} tasks/s "
        f"({ended.get('finished', 0)} finished, {ended.get('failed', 0)} failed) · "
        f"oldest queued: {age_text(stats.get('oldest_queued_age'))} · "
        f"{stats.get('active_users', 0)} active users"
    )
    from fairque.core.models import DEFAULT_QUEUE

    if stats.get("pending_steps") or stats.get("batches_staging"):  # see "Large batches"
        caption += (
            f" · steps pending: {stats.get('pending_steps', 0)}"
            f" · batches staging: {stats.get('batches_staging', 0)}"
        )
    queues = stats.get("queues", {})
    if len(queues) > 1 or set(queues) - {DEFAULT_QUEUE}:
        caption += " · queued per queue: " + ", ".join(f"{q} {n}" for q, n in queues.items())
    headers = ["user", "queued", *(f"p{p}" for p in priorities), *_ACTIVE, *_ENDED, "next age"]
    table = _table(headers, title=f"{stats['tasks_active']} active tasks", caption=caption)
    busiest = sorted(users, key=lambda u: (-users[u].get("queued", 0), u))
    for user in busiest[:limit]:
        counts = users[user]
        by_priority = counts.get("queued_by_priority", {})
        age = counts.get("next_task_age")
        table.add_row(*_row(escape(user), counts, by_priority, priorities, age))
    if len(busiest) > limit:
        table.add_row(f"… {len(busiest) - limit} more users")
    table.add_section()
    overall = {**stats["states"], **stats["totals"]}
    age = stats.get("oldest_queued_age")
    table.add_row(*_row("[bold]all[/bold]", overall, overall_by_priority, priorities, age))
    return table


def workers_table(stats: dict[str, Any]) -> Table | str:
    """Load of each live worker."""
    workers: list[dict[str, Any]] = stats.get("workers", [])
    if not workers:
        return "no live workers"
    headers = ["worker", "host", "pid", "running", "load", "processed", "failed", "seen", "serves"]
    table = _table(headers, title=f"{len(workers)} live workers")
    for w in workers:
        serves = ",".join(w["assigned_users"])
        if w["steal_targets"]:
            serves += f" (steals {','.join(w['steal_targets'])})"
        if w.get("queues", ["default"]) != ["default"]:
            serves += f" [queues {','.join(w['queues'])}]"
        table.add_row(
            escape(w["id"]),
            escape(w["host"]),
            str(w["pid"]),
            f"{w['running']}/{w['max_concurrent_tasks']}",
            f"{w['load']:.0%}",
            str(w["processed"]),
            str(w["failed"]),
            f"{age_text(w['last_seen_age'])} ago",
            escape(serves),
        )
    return table


def failing_schedules(stats: dict[str, Any]) -> list[str]:
    """One line per schedule or DAG the scheduler failed to fire in its latest pass."""
    errors: dict[str, dict[str, Any]] = stats.get("schedule_errors") or {}
    return [
        f"[red]{escape(subject)} failing[/red] ({error.get('failures', '?')} passes): "
        f"{escape(str(error.get('reason', '?')))}"
        for subject, error in errors.items()
    ]


def tick_lag_lines(stats: dict[str, Any]) -> list[str]:
    """How late the schedulers created DAG runs lately (nothing when they created none)."""
    lag: dict[str, Any] = stats.get("scheduler_lag") or {}
    ticks, passes = lag.get("ticks") or {}, lag.get("passes") or {}
    if not ticks.get("count"):
        return []
    return [
        f"DAG tick lag (last {lag['window_seconds']:g} s, {ticks['count']} runs): "
        f"p50 {ticks['p50']:.2f} s, p99 {ticks['p99']:.2f} s, max {ticks['max']:.2f} s; "
        f"firing passes p50 {passes['p50'] or 0:.2f} s, max {passes['max'] or 0:.2f} s"
    ]


def stats_view(stats: dict[str, Any], limit: int = 50) -> Group:
    """Everything ``fairque queue stats`` shows, as one renderable (the tenants' table
    when a tenant policy is set)."""
    from fairque.cli.tenant import tenants_table

    parts: list[Any] = [users_table(stats, limit), workers_table(stats)]
    listing = stats.get("tenants")
    if listing and (listing["with_policy"] or any(t["parked"] for t in listing["tenants"])):
        parts.append(tenants_table(listing))
    return Group(*parts, *failing_schedules(stats), *tick_lag_lines(stats))


@queue_app.command()
def stats(
    as_json: JsonOption = False,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds between refreshes.")] = 1.0,
    limit: Annotated[int, typer.Option(min=1, help="Users shown (the busiest first).")] = 50,
    prefix: Annotated[str, typer.Option(help="Key prefix of the queue.")] = "fq",
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Show per user and overall: queued (by priority 1..6), started, deferred,
    scheduled, finished, failed and canceled tasks, the age of the next task, the
    throughput over the last minute, the load of each live worker, and the schedules
    and DAGs the scheduler fails to fire.

    Ended states (finished, failed, canceled) count every task since the start.
    """
    from rich.live import Live

    from fairque.core.config import FairQueueConfig
    from fairque.monitoring.stats import collect
    from fairque.queue.sync_queue import TaskQueue

    with cli_errors():
        url = redis_url_for(redis_url, state_dir)
        config = FairQueueConfig.create_default(redis=url, stats_prefix=prefix)
        with TaskQueue(config) as queue:
            if as_json:
                console.print_json(json.dumps(collect(queue)))
                return
            if not watch:
                console.print(stats_view(collect(queue), limit))
                return
            with Live(stats_view(collect(queue), limit), console=console) as live:
                try:
                    while True:
                        time.sleep(interval)
                        live.update(stats_view(collect(queue), limit))
                except KeyboardInterrupt:
                    pass
