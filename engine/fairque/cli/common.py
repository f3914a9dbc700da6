"""What every fairque command shares: options, consoles, error handling, URL choice.

Typical command::

    @server_app.command()
    def stats(redis_url: RedisUrlOption = None, state_dir: StateDirOption = None) -> None:
        with cli_errors():
            url = redis_url_for(redis_url, state_dir)
            ...

The queue, the configuration and the server are imported by the functions that use
them, so that building the app (``fairque --help``) does not load the Redis client.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from fairque.core.errors import FairQueueError
from fairque.core.logs import configure_logging

if TYPE_CHECKING:
    from fairque.queue.sync_queue import TaskQueue

P = ParamSpec("P")
R = TypeVar("R")

PIPE_WIDTH = 10_000
"""Width of the output sent to a pipe or a file: wide enough that no table is cut."""


def _console(stderr: bool = False) -> Console:
    """A rich Console, as wide as the terminal, or :data:`PIPE_WIDTH` when the output is
    not a terminal (rich would use 80 columns, or the width of the terminal of another
    stream, and cut or wrap long cells such as run ids)."""
    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=PIPE_WIDTH)


console = _console()
"""Rich console on stdout: results a user may pipe or capture."""

err_console = _console(stderr=True)
"""Rich console on stderr: errors, warnings and progress."""

RedisUrlOption = Annotated[
    str | None,
    typer.Option(
        "--redis-url",
        envvar="FAIRQUE_REDIS_URL",
        help="Redis/Valkey URL: redis://, rediss:// (TLS), unix:// or "
        "redis+sentinel://HOST:PORT[,HOST:PORT]/SERVICE[/DB], e.g. redis://127.0.0.1:6379/0; "
        "`embedded` (the default) uses the private server of the state folder.",
        show_default=False,
    ),
]
StateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar="FAIRQUE_STATE_DIR",
        help="State folder of the embedded server [default: ./.fairque].",
        show_default=False,
        file_okay=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
PrefixOption = Annotated[str, typer.Option(help="Key prefix of the queue.")]
LogLevelOption = Annotated[
    str, typer.Option("--log-level", help="Lowest level logged: DEBUG, INFO, WARNING or ERROR.")
]
LogFormatOption = Annotated[
    str,
    typer.Option(
        "--log-format",
        help="Log lines on stderr: text, or json (one object a line: time, level, logger, "
        "message and fields such as task_id, user_id, duration) for log shippers.",
    ),
]


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON: highlighted on a terminal, plain otherwise (a
    pipe gets the same text at once: rich takes seconds to lay out 1,000 DAGs)."""
    if console.is_terminal:
        console.print_json(json.dumps(data))
    else:
        console.file.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def setup_logging(level: str, log_format: str) -> None:
    """Configure the log output of a long-running command; a bad value is a CLI error."""
    try:
        configure_logging(level, log_format.lower())
    except ValueError as e:
        fail(str(e))


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` in red on stderr and exit with ``code``."""
    err_console.print(f"[bold red]error:[/bold red] {escape(message)}")
    raise typer.Exit(code)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn a :class:`FairQueueError` raised inside the block into :func:`fail`."""
    try:
        yield
    except FairQueueError as e:
        fail(str(e))


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Decorator form of :func:`cli_errors` for a whole command (keeps its signature)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with cli_errors():
            return func(*args, **kwargs)

    return wrapper


def redis_url_for(
    redis_url: str | None, state_dir: Path | None, *, start_embedded: bool = True
) -> str:
    """The URL a command should use (see :func:`fairque.server.resolve_redis_url`)."""
    from fairque.server.embedded import resolve_redis_url

    return resolve_redis_url(redis_url, start_embedded=start_embedded, state_dir=state_dir)


def open_queue(redis_url: str | None, state_dir: Path | None, **settings: Any) -> TaskQueue:
    """A TaskQueue on the server a command should use (``settings`` as in create_default)."""
    from fairque.core.config import FairQueueConfig
    from fairque.queue.sync_queue import TaskQueue

    url = redis_url_for(redis_url, state_dir)
    return TaskQueue(FairQueueConfig.create_default(redis=url, **settings))
