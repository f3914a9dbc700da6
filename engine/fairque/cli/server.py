"""``fairque server ...``: the private Valkey/Redis server of a state folder.

``start`` and ``url`` print only the URL, so ``export FAIRQUE_REDIS_URL=$(fairque server url)``
works; ``status`` exits 1 when no server is running.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from fairque.cli.common import JsonOption, StateDirOption, console, err_console, handle_errors

if TYPE_CHECKING:
    from fairque.server.embedded import EmbeddedServer, ServerStatus

server_app = typer.Typer(
    name="server",
    help="Start, stop and inspect the private Valkey/Redis server of a state folder.",
    no_args_is_help=True,
)

TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Seconds to wait for the server.")
]


def _server(state_dir: Path | None) -> EmbeddedServer:
    """The server of ``state_dir`` (its module, and the Redis client, loaded on first use)."""
    from fairque.server.embedded import EmbeddedServer

    return EmbeddedServer(state_dir)


@server_app.command()
@handle_errors
def start(state_dir: StateDirOption = None, timeout: TimeoutOption = 10.0) -> None:
    """Start the server (or reuse the running one) and print its URL."""
    typer.echo(_server(state_dir).start(timeout))


@server_app.command()
@handle_errors
def url(state_dir: StateDirOption = None, timeout: TimeoutOption = 10.0) -> None:
    """Print only the server's URL, starting the server if needed."""
    typer.echo(_server(state_dir).start(timeout))


@server_app.command()
@handle_errors
def stop(state_dir: StateDirOption = None, timeout: TimeoutOption = 10.0) -> None:
    """Stop the server (exit 0 also when none was running)."""
    server = _server(state_dir)
    if server.stop(timeout):
        console.print(f"stopped the server of {server.state_dir}", highlight=False)
    else:
        console.print(f"no server was running for {server.state_dir}", highlight=False)


@server_app.command()
@handle_errors
def status(state_dir: StateDirOption = None, as_json: JsonOption = False) -> None:
    """Show the server's pid, URL, version and binary; exit 1 when it is not running."""
    server = _server(state_dir)
    current = server.status()
    if as_json:
        typer.echo(json.dumps(_status_dict(server.state_dir, current), indent=2))
    elif current is None:
        err_console.print(
            f"no server recorded in {server.state_dir}; start one with `fairque server start`",
            highlight=False,
        )
    else:
        console.print(_status_table(server.state_dir, current))
    if current is None or not current.running:
        raise typer.Exit(1)


def _status_dict(state_dir: Path, current: ServerStatus | None) -> dict[str, Any]:
    """The JSON form of ``status``: always has ``running`` and ``state_dir``."""
    fields = dataclasses.asdict(current) if current else {"running": False}
    return {"state_dir": str(state_dir), **fields}


def _status_table(state_dir: Path, current: ServerStatus) -> Table:
    """A two-column table of the recorded server."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    running = "[green]running[/green]" if current.running else "[red]not running[/red]"
    rows = [
        ("status", running),
        ("url", current.url),
        ("pid", str(current.pid)),
        ("version", current.version),
        ("binary", current.binary),
        ("started", current.started_at),
        ("state", str(state_dir)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table
