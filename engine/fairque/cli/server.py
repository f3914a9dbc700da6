"""``fairque server ...``: the private Valkey/Redis server of a state folder.

``start`` and ``url`` print only the URL, so ``export FAIRQUE_REDIS_URL=$(fairque server url)``
works; ``status`` exits 1 when no server is running. The server keeps its data in an
append-only file in the state folder's ``data/`` unless started with ``--ephemeral``.
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


EphemeralOption = Annotated[
    bool,
    typer.Option(
        "--ephemeral",
        help="Keep nothing on disk (no append-only file): every stop loses the data.",
    ),
]


def _server(state_dir: Path | None, *, durable: bool = True) -> EmbeddedServer:
    """The server of ``state_dir`` (its module, and the Redis client, loaded on first use)."""
    from fairque.server.embedded import EmbeddedServer

    return EmbeddedServer(state_dir, durable=durable)


@server_app.command()
@handle_errors
def start(
    state_dir: StateDirOption = None,
    timeout: TimeoutOption = 10.0,
    ephemeral: EphemeralOption = False,
) -> None:
    """Start the server (or reuse the running one) and print its URL.

    Its data is kept in an append-only file in the state folder's data/ (fsync every
    second; FAIRQUE_SERVER_APPENDFSYNC=always|everysec|no), loaded again on start.
    """
    typer.echo(_server(state_dir, durable=not ephemeral).start(timeout))


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
    """Show the server's pid, URL, version, persistence and where its data lives (and
    how big it is); exit 1 when it is not running."""
    server = _server(state_dir)
    current = server.status()
    if as_json:
        typer.echo(json.dumps(_status_dict(server, current), indent=2))
    elif current is None:
        err_console.print(
            f"no server recorded in {server.state_dir}; start one with `fairque server start`"
            f" (data: {server.data_dir}, {_size(server.data_bytes())})",
            highlight=False,
        )
    else:
        console.print(_status_table(server, current))
    if current is None or not current.running:
        raise typer.Exit(1)


def _size(count: int) -> str:
    """``812 B``, ``4.2 KiB``, ``1.5 MiB``..."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{count} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _status_dict(server: EmbeddedServer, current: ServerStatus | None) -> dict[str, Any]:
    """The JSON form of ``status``: always has ``running``, ``state_dir``, ``data_dir``
    and ``data_bytes`` (the size of the data folder now)."""
    fields = dataclasses.asdict(current) if current else {"running": False}
    return {
        "state_dir": str(server.state_dir),
        **fields,
        "data_dir": str(server.data_dir),
        "data_bytes": server.data_bytes(),
    }


def _status_table(server: EmbeddedServer, current: ServerStatus) -> Table:
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
        ("persistence", current.persistence),
        ("data", f"{server.data_dir} ({_size(server.data_bytes())})"),
        ("state", str(server.state_dir)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table
