"""``fairque run list|show|logs|cancel``: runs of pipelines and DAGs."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from fairque.cli.common import (
    JsonOption,
    RedisUrlOption,
    StateDirOption,
    cli_errors,
    console,
    open_queue,
)

if TYPE_CHECKING:
    from fairque.queue.runs import RunHandle, RunInfo

run_app = typer.Typer(help="Runs of pipelines and DAGs.")


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@run_app.command("list")
def list_runs(
    dag_id: Annotated[str | None, typer.Argument(help="Only the runs of this DAG.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 50,
    as_json: JsonOption = False,
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """The newest runs with their state, logical date and times."""
    from fairque.monitoring.documents import run_list_document

    with cli_errors(), open_queue(redis_url, state_dir) as queue:
        runs = queue.list_runs(dag_id, limit=limit)
    if as_json:
        console.print_json(json.dumps(run_list_document(runs)))
        return
    table = Table("run_id", "dag", "state", "logical date", "tenant", "started", "ended")
    for run in runs:
        table.add_row(
            run.run_id,
            run.dag_id or "(pipeline)",
            run.state.value,
            run.logical_date or "-",
            run.tenant or "-",
            _when(run.started_at),
            _when(run.ended_at),
        )
    console.print(table)


@run_app.command()
def show(
    run_id: str,
    as_json: JsonOption = False,
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """A run's tasks (state, attempts, duration, error) and its XCom lineage."""
    from fairque.cli.dag import run_table
    from fairque.monitoring.documents import run_document

    with cli_errors(), open_queue(redis_url, state_dir) as queue:
        info = queue.get_run(run_id)
        lineage = queue.run_pipeline(queue.calls.lineage(run_id))
    if as_json:
        console.print_json(json.dumps(run_document(info, lineage)))
        return
    console.print(run_table(info))
    history = attempts_table(info)
    if history.row_count:
        console.print(history)
    if info.dag_snapshot:
        snapshot = info.dag_snapshot
        console.print(
            f"DAG {info.dag_id} as it ran: version {snapshot.get('version')}, "
            f"{len(snapshot.get('tasks', []))} task(s), file {snapshot.get('source') or '-'}",
            highlight=False,
        )
    if lineage:
        table = Table(
            "kind", "key", "producer", "attempt", "consumer", "bytes", title="XCom lineage"
        )
        for e in lineage:
            attempt = e.get("attempt")
            table.add_row(
                e["kind"],
                e["key"],
                e["producer"] or "-",
                "-" if attempt is None else str(attempt),
                e["consumer"] or "-",
                str(e["bytes"]),
            )
        console.print(table)


def attempts_table(info: RunInfo) -> Table:
    """Every ended attempt of every task of a run, oldest first per task."""
    table = Table(
        "task",
        "attempt",
        "worker",
        "started",
        "ended",
        "duration",
        "outcome",
        "error",
        title="Attempts",
    )
    for name, task in info.tasks.items():
        for a in task.attempt_history if task is not None else []:
            error = a.get("error") or {}
            duration = a.get("duration")
            table.add_row(
                name,
                str(a.get("attempt")),
                a.get("worker") or "-",
                _when(a.get("started_at")),
                _when(a.get("finished_at")),
                "-" if duration is None else f"{duration:.2f} s",
                str(a.get("outcome")),
                f"{error.get('type', '')}: {error.get('message', '')}"[:80] if error else "",
            )
    return table


@run_app.command()
def cancel(
    run_id: str,
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Cancel every task of the run that has not ended; a run that has ended is refused
    (exit code 1) and left as it is."""
    with cli_errors(), open_queue(redis_url, state_dir) as queue:
        info = queue.cancel_run(run_id)
    console.print(f"run {run_id}: {info.state}")


@run_app.command()
def clear(
    run_id: str,
    task: Annotated[
        list[str] | None,
        typer.Option(
            "--task",
            metavar="NAME",
            help="Clear this task (repeatable); default: every failed "
            "task and every task canceled because of an upstream.",
        ),
    ] = None,
    downstream: Annotated[
        bool, typer.Option("--downstream/--no-downstream", help="Also clear their downstream.")
    ] = True,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Run failed tasks (or the ones named) again inside the same run; finished tasks
    keep their results and are not executed again."""
    from fairque.queue.clearing import clear_plan

    with cli_errors(), open_queue(redis_url, state_dir) as queue:
        plan = clear_plan(queue.get_run(run_id), task, downstream)
        console.print(f"run {run_id}: clearing {', '.join(plan.names)}")
        if not yes and not typer.confirm("Clear these tasks?"):
            raise typer.Exit(1)
        info = queue.clear_run(run_id, task, downstream)
    console.print(f"run {run_id}: {info.state}")


FOLLOW_POLL_SECONDS = 0.5


@run_app.command()
def logs(
    run_id: str,
    task: Annotated[str, typer.Argument(help="The task's name in the run.")],
    attempt: Annotated[
        int | None, typer.Option(min=1, help="Which attempt (1, 2, ...); the latest if not given.")
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", help="Keep printing new output until the task ends (Ctrl-C stops)."
        ),
    ] = False,
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """What a task wrote to stdout, stderr and logging during one attempt."""
    from fairque.queue.runs import RunHandle

    with cli_errors(), open_queue(redis_url, state_dir) as queue:
        info = queue.get_run(run_id)
        handle = RunHandle(queue, run_id, info.task_ids)
        text = handle.logs(task, attempt)
        sys.stdout.write(text)
        sys.stdout.flush()
        if follow:
            _follow(handle, task, attempt, len(text))


def _follow(handle: RunHandle, task: str, attempt: int | None, shown: int) -> None:
    """Print what the attempt adds (and, without ``attempt``, the next attempts) until
    the task has ended and its last output is shown."""
    current = attempt or handle.task(task).attempts
    try:
        while True:
            record = handle.task(task)
            ended = record.state is None or record.state.is_terminal
            if attempt is None and record.attempts > current:
                rest = handle.logs(task, current)[shown:]
                sys.stdout.write(rest)
                current, shown = record.attempts, 0
                sys.stdout.write(f"--- attempt {current} ---\n")
            text = handle.logs(task, current) if current else ""
            sys.stdout.write(text[shown:])
            sys.stdout.flush()
            shown = len(text)
            if ended or (attempt is not None and record.attempts > attempt):
                return
            time.sleep(FOLLOW_POLL_SECONDS)
    except KeyboardInterrupt:
        return
