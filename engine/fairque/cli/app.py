"""The root ``fairque`` command: ``--version`` and one sub-app per command group.

To add a command group, create ``fairque/cli/<group>.py`` with its own
``typer.Typer`` and register it below with ``app.add_typer``; a single command
(``fairque demo``, ``fairque worker``) is registered with ``app.command``.
Sub-modules must not import this module (it imports them).
"""

from __future__ import annotations

from typing import Annotated

import typer

from fairque.cli.bench import bench
from fairque.cli.dag import dag_app
from fairque.cli.demo import demo
from fairque.cli.pool import pool_app
from fairque.cli.queue import queue_app
from fairque.cli.run import run_app
from fairque.cli.scheduler import scheduler
from fairque.cli.server import server_app
from fairque.cli.tenant import tenant_app
from fairque.cli.ui import ui
from fairque.cli.worker import health, worker_app

app = typer.Typer(
    name="fairque",
    no_args_is_help=True,
    help=(
        "A fair, multi-tenant task queue and DAG workflow engine on Redis or Valkey.\n\n"
        "With nothing configured, commands share a private Valkey server kept in ./.fairque "
        "(see `fairque server`); set FAIRQUE_REDIS_URL or --redis-url to use your own."
    ),
    pretty_exceptions_show_locals=False,
    # Help texts are plain text: square brackets (`fairque[metrics]`, `[default: ...]`)
    # are shown as written, not parsed as rich markup. Sub-apps inherit this setting.
    rich_markup_mode=None,
)


def _package_version() -> str:
    """The installed version of fairque, or ``unknown`` from a bare source tree."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fairque")
    except PackageNotFoundError:
        return "unknown"


def _print_version(value: bool) -> None:
    """Eager ``--version`` callback: print ``fairque <version>`` and exit 0."""
    if value:
        typer.echo(f"fairque {_package_version()}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Root options, evaluated before any sub-command (only ``--version`` for now)."""


# --- command groups: one line each, in the order of `fairque --help` ----------------
app.add_typer(server_app, name="server")
app.add_typer(worker_app, name="worker")
app.add_typer(queue_app, name="queue")
app.add_typer(tenant_app, name="tenant")
app.add_typer(pool_app, name="pool")
app.add_typer(dag_app, name="dag")
app.add_typer(run_app, name="run")

# --- single commands ------------------------------------------------------------------
app.command(name="health")(health)
app.command(name="scheduler")(scheduler)
app.command(name="demo")(demo)
app.command(name="ui")(ui)
app.command(
    name="bench",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)(bench)


def main() -> None:
    """Entry point of the ``fairque`` console script, ``python cli.py`` and ``-m``."""
    app(prog_name="fairque")


if __name__ == "__main__":
    main()
