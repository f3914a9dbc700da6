"""``fairque demo``: fairness shown on a real server and a real worker."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fairque.cli.common import (
    RedisUrlOption,
    StateDirOption,
    cli_errors,
    console,
    redis_url_for,
    setup_logging,
)
from fairque.cli.dag import run_table
from fairque.demo import FLOOD, LIGHT, Served, example_project, run_dag_demo, run_demo

_COLOURS = {FLOOD: "red", LIGHT[0]: "green", LIGHT[1]: "cyan"}


def demo(
    flood: Annotated[int, typer.Option(help="Tasks the flooding user pushes.", min=1)] = 40,
    light: Annotated[int, typer.Option(help="Tasks each light user pushes.", min=1)] = 5,
    dags_folder: Annotated[
        Path | None,
        typer.Option(
            "--dags-folder",
            envvar="FAIRQUE_DAGS_FOLDER",
            help="DAG folder, its parent importable for the task functions [default: ./dags "
            "if it exists, else the example DAGs installed with fairque].",
            show_default=False,
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Where the run pictures go.")] = Path(".fairque/demo"),
    log_level: Annotated[
        str,
        typer.Option(
            "--log-level",
            help="The workers' log lines shown on stderr (INFO: every task end; the "
            "default shows none, the tables say how each task ended).",
        ),
    ] = "CRITICAL",
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Fairness under a flood, then the example DAGs run by a worker and drawn."""
    setup_logging(log_level, "text")
    with cli_errors():
        url = redis_url_for(redis_url, state_dir)
        console.print(f"[bold]fairque demo[/bold] on {url}")
        console.print(
            f"{FLOOD} pushes {flood} tasks and one worker starts on them, one at a time. "
            f"Then {LIGHT[0]} and {LIGHT[1]} push {light} tasks each (and {LIGHT[1]} one "
            "CRITICAL task), behind the whole flood.\n"
        )
        served = run_demo(url, flood=flood, light=light)
        _show(served, light)
        folder = _dags_folder(dags_folder)
        if folder is None:
            console.print("\n(no dags/ folder here and no example DAGs: skipping the DAG part)")
            return
        console.print("\n[bold]DAGs[/bold]: the example DAGs, triggered and run by a worker")
        for shown in run_dag_demo(url, folder, out):
            console.print(run_table(shown.run))
            console.print(f"picture of the run: {shown.picture}\n")
        console.print("See them again with `fairque run list` and `fairque run show RUN_ID`.")


def _dags_folder(given: Path | None) -> Path | None:
    """The DAG folder of the demo's second part, with the folder its task functions are
    imported from put first on ``sys.path``: ``given`` or ``./dags`` and the current
    folder (``examples/`` of a checkout), else the example project shipped with fairque."""
    folder = given or Path("dags")
    if folder.is_dir():
        sys.path.insert(0, os.getcwd())
        return folder
    project = None if given else example_project()
    if project is None:
        return None
    sys.path.insert(0, str(project))
    return project / "dags"


def _show(served: list[Served], light: int) -> None:
    table = Table("#", "user", "task", "priority", "state", title="Served order (first 24)")
    for s in served[:24]:
        colour = _COLOURS.get(s.user_id, "white")
        table.add_row(
            str(s.position),
            f"[{colour}]{s.user_id}[/{colour}]",
            s.label,
            s.priority.name,
            s.state.value,
        )
    console.print(table)
    strip = "".join(
        f"[{_COLOURS.get(s.user_id, 'white')}]{s.user_id.split(':')[-1][0].upper()}[/]"
        for s in served
    )
    console.print(f"Whole order: {strip}")
    for user in LIGHT:
        mine = [s.position for s in served if s.user_id == user]
        console.print(
            f"{user}: its {len(mine)} tasks were served at positions {mine[0]}-{mine[-1]} "
            f"of {len(served)}; in a FIFO queue they would have waited behind the flood."
        )
    if any(s.state.value != "finished" for s in served):
        raise typer.Exit(1)
