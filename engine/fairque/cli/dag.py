"""``fairque dag list|validate|render|trigger|backfill|test|pause|unpause``.

Each command imports the DAG, queue and rendering modules it needs, so that ``fairque
dag validate`` loads neither the Redis client nor graphviz.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from fairque.cli.common import (
    JsonOption,
    RedisUrlOption,
    StateDirOption,
    cli_errors,
    console,
    err_console,
    fail,
    open_queue,
    print_json,
)
from fairque.core.errors import FairQueueError
from fairque.core.imports import (
    ALLOWED_MODULES_ENV,
    DEFAULT_ALLOWED_MODULES,
    default_allowed_modules,
    split_modules,
)

if TYPE_CHECKING:
    from fairque.dag.loader import DagBag
    from fairque.dag.model import DAG
    from fairque.queue.runs import RunInfo
    from fairque.queue.sync_queue import TaskQueue
    from fairque.scheduler.backfill import Backfill

dag_app = typer.Typer(help="DAG files: list, validate, render, trigger, backfill, test, pause.")

DagsFolderOption = Annotated[
    Path | None,
    typer.Option(
        "--dags-folder",
        envvar="FAIRQUE_DAGS_FOLDER",
        help="Folder of DAG files [default: ./dags].",
        show_default=False,
    ),
]
WaitTimeoutOption = Annotated[float, typer.Option(help="Seconds --wait waits at most.")]
ConfOption = Annotated[
    str | None, typer.Option("--conf", help='Run parameters as JSON, e.g. \'{"source": "api"}\'.')
]


AllowedModulesOption = Annotated[
    str | None,
    typer.Option(
        "--allowed-modules",
        help="Module prefixes task functions may come from, comma-separated "
        f"[default: ${ALLOWED_MODULES_ENV}, else {','.join(DEFAULT_ALLOWED_MODULES)}].",
        show_default=False,
    ),
]


def _allowed(option: str | None) -> list[str]:
    """The ``--allowed-modules`` prefixes, else the workers' default."""
    return split_modules(option or "") or default_allowed_modules()


NoCacheOption = Annotated[
    bool,
    typer.Option(
        "--no-cache",
        help="Parse and check every DAG file, ignoring the DAG cache of the state folder "
        "(also: FAIRQUE_DAG_CACHE=off).",
    ),
]


def _bag(folder: Path | None, allowed: list[str] | None = None, no_cache: bool = False) -> DagBag:
    from fairque.dag.loader import dags_folder, load_dags

    bag = load_dags(dags_folder(folder), allowed or ["*"], cache=not no_cache, lazy=True)
    for problem in bag.problems:
        err_console.print(f"[yellow]warning:[/yellow] {problem}")
    return bag


def _dag(folder: Path | None, dag_id: str, allowed: list[str] | None = None) -> DAG:
    from fairque.dag.loader import dags_folder

    bag = _bag(folder, allowed)
    if dag_id not in bag.dags:
        known = ", ".join(sorted(bag.dags)) or "none"
        fail(f"no DAG {dag_id!r} in {dags_folder(folder)} (known: {known})")
    return bag.dags[dag_id]


def _conf(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        fail(f"--conf is not valid JSON: {e}")
    if not isinstance(value, dict):
        fail('--conf must be a JSON object, e.g. \'{"source": "api"}\'')
    return value


@dag_app.command("list")
def list_dags(
    as_json: JsonOption = False,
    dags_folder_: DagsFolderOption = None,
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
    no_cache: NoCacheOption = False,
) -> None:
    """DAGs with their schedule, next run, paused flag and last run's state."""
    from fairque.dag.runs import paused_dags
    from fairque.monitoring.documents import dag_summaries

    with cli_errors():
        bag = _bag(dags_folder_, no_cache=no_cache)
        with open_queue(redis_url, state_dir) as queue:
            paused = paused_dags(queue)
            rows = dag_summaries(queue, [bag.info(dag_id) for dag_id in bag.dags], paused)
    if as_json:
        print_json(rows)
        return
    table = Table("dag_id", "schedule", "next run", "paused", "last run", "tasks", "file")
    for row in rows:
        table.add_row(
            row["dag_id"],
            row["schedule"] or "manual",
            row["next_run"] or "-",
            "yes" if row["paused"] else "no",
            row["last_run_state"] or "-",
            str(row["tasks"]),
            row["file"] or "",
        )
    console.print(table)


@dag_app.command()
def validate(
    paths: Annotated[list[Path] | None, typer.Argument(help="DAG files or folders.")] = None,
    allowed_modules: AllowedModulesOption = None,
    as_json: JsonOption = False,
    dags_folder_: DagsFolderOption = None,
    no_cache: NoCacheOption = False,
) -> None:
    """Check DAG files without running anything; exit 1 listing every problem.

    Task functions are checked under the workers' import rule and allowed modules.
    Unchanged YAML files are not parsed again (see --no-cache); their task functions
    are checked every time."""
    from fairque.dag.loader import dags_folder
    from fairque.dag.validate import validate_paths

    with cli_errors():
        targets = paths or [dags_folder(dags_folder_)]
        report = validate_paths(targets, _allowed(allowed_modules), cache=not no_cache)
    problems = [p for found in report.values() for p in found]
    if as_json:
        print_json({f: [p.to_dict() for p in found] for f, found in report.items()})
    else:
        from rich.text import Text

        out = Text()  # one print: a thousand files print in one write
        for file, found in report.items():
            out.append(f"{file}: ")
            if found:
                out.append(f"{len(found)} problem(s)", style="red")
            else:
                out.append("ok", style="green")
            for problem in found:
                out.append(f"\n  {problem}")
            out.append("\n")
        console.print(out, highlight=False, end="")
    if problems:
        raise typer.Exit(1)


@dag_app.command("render")
def render_dag(
    dag_id: str,
    output: Annotated[Path, typer.Option("-o", "--output", help=".dot, .svg, .png or .mmd")],
    run_id: Annotated[str | None, typer.Option("--run", help="Colour by this run.")] = None,
    dags_folder_: DagsFolderOption = None,
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Draw the DAG (or one run of it, coloured by state, with its XCom lineage)."""
    from fairque.dag.render import render
    from fairque.dag.runs import graph_view

    with cli_errors():
        dag = _dag(dags_folder_, dag_id)
        if run_id is None:
            view = graph_view(dag)
        else:
            with open_queue(redis_url, state_dir) as queue:
                run = queue.get_run(run_id)
                lineage = queue.run_pipeline(queue.calls.lineage(run_id))
            view = graph_view(dag, run, lineage)
        written = render(view, output)
    console.print(f"wrote {written}")


@dag_app.command("trigger")
def trigger_dag(
    dag_id: str,
    conf: ConfOption = None,
    tenant: Annotated[str | None, typer.Option(help="Whose fair share the run uses.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the run until it ends.")] = False,
    timeout: WaitTimeoutOption = 3600.0,
    as_json: JsonOption = False,
    dags_folder_: DagsFolderOption = None,
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Start a run of a DAG; with --wait, exit 0 if it succeeded and 1 if not."""
    from fairque.dag.runs import trigger

    with cli_errors():
        dag = _dag(dags_folder_, dag_id)
        with open_queue(redis_url, state_dir) as queue:
            handle = trigger(queue, dag, conf=_conf(conf), tenant=tenant)
            if not as_json:
                console.print(f"run [bold]{handle.run_id}[/bold] of {dag_id} queued")
            if not wait:
                if as_json:
                    console.print_json(json.dumps(queue.get_run(handle.run_id).to_dict()))
                return
            info = _follow(queue, handle.run_id, timeout, quiet=as_json)
    if as_json:
        console.print_json(json.dumps(info.to_dict()))
    else:
        console.print(f"run {info.run_id}: [bold]{info.state}[/bold]")
    if info.state.value != "success":
        raise typer.Exit(1)


@dag_app.command("backfill")
def backfill_dag(
    dag_id: str,
    start: Annotated[
        str, typer.Option("--start", help="First date (YYYY-MM-DD or ISO date and time).")
    ],
    end: Annotated[
        str, typer.Option("--end", help="Last date, included (a date alone: its whole day).")
    ],
    conf: ConfOption = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the runs until they all end.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the runs it would create; write nothing.")
    ] = False,
    timeout: WaitTimeoutOption = 3600.0,
    as_json: JsonOption = False,
    dags_folder_: DagsFolderOption = None,
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Create one run per schedule tick from --start to --end, oldest first.

    Runs get the scheduler's ids ({dag_id}__{tick}), so a tick the scheduler or an
    earlier backfill already ran is not run again. With --wait, exit 1 unless every run
    of the range succeeded."""
    from fairque.scheduler.backfill import backfill

    with cli_errors():
        dag = _dag(dags_folder_, dag_id)
        with open_queue(redis_url, state_dir) as queue:
            report = backfill(queue, dag, start, end, conf=_conf(conf), dry_run=dry_run)
            if not as_json:
                _print_backfill(report)
            infos = [
                _follow(queue, run_id, timeout, quiet=as_json)
                for run_id in (report.run_ids if wait and not dry_run else [])
            ]
    if as_json:
        data = report.to_dict()
        if wait and not dry_run:
            data["runs"] = {info.run_id: info.state.value for info in infos}
        console.print_json(json.dumps(data))
    for info in infos:
        if not as_json:
            console.print(f"run {info.run_id}: [bold]{info.state}[/bold]")
    if any(info.state.value != "success" for info in infos):
        raise typer.Exit(1)


def _print_backfill(report: Backfill) -> None:
    verb = "would create" if report.dry_run else "created"
    for run_id in report.run_ids:
        mark = "[dim]exists[/dim] " if run_id in report.existing else f"[green]{verb}[/green] "
        console.print(mark + run_id, highlight=False)
    span = f"{report.start.isoformat()} .. {report.end.isoformat()}"
    if not report.run_ids:
        console.print(f"no schedule tick of {report.dag_id} in {span} (up to now)")
    elif not report.created:
        console.print(
            f"nothing to do: the {len(report.existing)} run(s) of {span} exist already",
            highlight=False,
        )
    else:
        outcome = "would be created" if report.dry_run else "created"
        console.print(
            f"{len(report.created)} run(s) {outcome}, {len(report.existing)} existed already",
            highlight=False,
        )


def _follow(queue: TaskQueue, run_id: str, timeout: float, quiet: bool) -> RunInfo:
    from rich.live import Live

    deadline = time.monotonic() + timeout
    info = queue.get_run(run_id)
    with Live(run_table(info), console=err_console, transient=quiet) as live:
        while not info.state.is_finished:
            if time.monotonic() > deadline:
                raise FairQueueError(
                    f"run {run_id} did not end within {timeout} s (it goes on; "
                    f"see `fairque run show {run_id}`); is a worker running?"
                )
            time.sleep(0.2)
            info = queue.get_run(run_id)
            live.update(run_table(info))
    return info


def run_table(info: RunInfo) -> Table:
    """A run's tasks with state (``skipped`` and ``upstream_failed`` for those CANCELED
    tasks, see TaskRecord.display_state), attempts, duration and error."""
    table = Table(
        "task", "state", "attempts", "duration", "error", title=f"{info.run_id}: {info.state}"
    )
    for name, task in info.tasks.items():
        if task is None:
            table.add_row(name, "expired", "", "", "")
            continue
        duration = f"{task.duration:.2f} s" if task.duration is not None else ""
        error = task.error.get("message", "") if task.error else ""
        attempts = f"{task.attempts} ({task.pokes} pokes)" if task.pokes else str(task.attempts)
        table.add_row(name, str(task.display_state), attempts, duration, error[:80])
    return table


@dag_app.command("test")
def test_dag(
    dag_id: str,
    conf: ConfOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the task records a trigger would write.")
    ] = False,
    retry_delay: Annotated[
        bool,
        typer.Option(
            "--retry-delay/--no-retry-delay",
            help="Wait between retries as workers do (default), or retry at once.",
        ),
    ] = True,
    allowed_modules: AllowedModulesOption = None,
    dags_folder_: DagsFolderOption = None,
) -> None:
    """Run the whole DAG in this process (no worker, no Redis), or show its records.

    Task functions are imported under the workers' rule and allowed modules. Retries
    (the queue's default max_retries and retry delay when a task sets none) and
    timeout_seconds are honoured as workers honour them; execute_after is not waited
    for and tasks run one at a time."""
    import sys

    from fairque.core.config import QueueConfig
    from fairque.core.models import TaskState
    from fairque.dag.loader import dags_folder
    from fairque.dag.runs import manual_run_id
    from fairque.tasks.inprocess import run_in_process

    # as a worker started here would import them (and as the loader checked them)
    sys.path[:0] = [str(Path.cwd()), str(dags_folder(dags_folder_).resolve().parent)]
    allowed = _allowed(allowed_modules)
    defaults = QueueConfig()
    with cli_errors():
        dag = _dag(dags_folder_, dag_id, allowed)
        merged = dag.check_conf(_conf(conf))
        if dry_run:
            records = [t.to_dict() for t in dag.compile("dry-run", conf=merged)]
            console.print_json(json.dumps(records))
            return
        run_id = manual_run_id(dag.dag_id)
        result = run_in_process(
            dag.pipeline_for(merged, run_id=run_id),
            conf=merged,
            run_id=run_id,
            allowed_modules=allowed,
            default_max_retries=defaults.default_max_retries,
            default_retry_delay_seconds=defaults.default_retry_delay_seconds if retry_delay else 0,
            retry_backoff_max_seconds=defaults.retry_backoff_max_seconds,
        )
    for name in (n for t in dag.task_names for n in (*result.instances(t), t)):
        state = result.states.get(name)
        record = result.tasks.get(name)
        shown = record.display_state if record is not None else state
        attempts = result.attempts.get(name, 0)
        tries = f" (attempt {attempts})" if attempts > 1 else ""
        detail = result.errors.get(name) or json.dumps(result.results.get(name))
        console.print(f"{name}: [bold]{shown}[/bold]{tries} {detail}", highlight=False)
        errors = result.attempt_errors.get(name, [])
        earlier = errors if state is TaskState.FINISHED else errors[:-1]  # last: shown above
        for number, error in enumerate(earlier, 1):
            console.print(f"  attempt {number} failed: {error}", highlight=False)
    if not result.succeeded:
        raise typer.Exit(1)


@dag_app.command()
def pause(
    dag_id: str,
    dags_folder_: DagsFolderOption = None,
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Stop the DAG's schedule from firing (manual triggers still work)."""
    _set_paused(dag_id, True, dags_folder_, redis_url, state_dir)


@dag_app.command()
def unpause(
    dag_id: str,
    dags_folder_: DagsFolderOption = None,
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Let the DAG's schedule fire again."""
    _set_paused(dag_id, False, dags_folder_, redis_url, state_dir)


def _set_paused(
    dag_id: str, paused: bool, folder: Path | None, redis_url: str | None, state_dir: Path | None
) -> None:
    from fairque.dag.runs import set_paused

    with cli_errors():
        _dag(folder, dag_id)
        with open_queue(redis_url, state_dir) as queue:
            set_paused(queue, dag_id, paused)
    console.print(f"{dag_id} {'paused' if paused else 'unpaused'}")
