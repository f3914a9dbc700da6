"""``fairque ui``: the web dashboard (Starlette served by uvicorn), imported only here."""

from __future__ import annotations

from typing import Annotated

import typer

from fairque.cli.common import (
    LogFormatOption,
    LogLevelOption,
    RedisUrlOption,
    StateDirOption,
    cli_errors,
    err_console,
    fail,
    redis_url_for,
    setup_logging,
)
from fairque.cli.dag import DagsFolderOption

TOKEN_ENV = "FAIRQUE_UI_TOKEN"


def ui(
    host: Annotated[
        str,
        typer.Option(help="Address to bind; any other than loopback needs --token or --no-auth."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8844,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Show everything, allow no action.")
    ] = False,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar=TOKEN_ENV,
            help="Require this token (bearer header or login form).",
            show_default=False,
        ),
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option("--no-auth", help="Serve another address than loopback without a token."),
    ] = False,
    dags_folder: DagsFolderOption = None,
    log_level: LogLevelOption = "INFO",
    log_format: LogFormatOption = "text",
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Serve the web dashboard: tenants, workers, DAGs and runs, live, with actions."""
    from fairque.ui.security import is_loopback

    setup_logging(log_level, log_format)
    token = token or None
    if not is_loopback(host) and token is None and not no_auth:
        fail(
            f"binding to {host} serves the dashboard to other machines: give a token "
            f"(--token or {TOKEN_ENV}), or --no-auth to serve it to anyone who can reach it"
        )
    if no_auth and token is None and not is_loopback(host):
        err_console.print(
            f"[bold yellow]warning:[/bold yellow] --no-auth: anyone who can reach {host}:{port} "
            "can see and change the queue"
        )
    import uvicorn

    from fairque.core.config import FairQueueConfig
    from fairque.ui import create_app

    with cli_errors():
        url = redis_url_for(redis_url, state_dir)
        app = create_app(
            FairQueueConfig.create_default(redis=url),
            dags_folder=dags_folder,
            read_only=read_only,
            token=token,
            allow_any_host=no_auth,
        )
    err_console.print(
        f"fairque dashboard on http://{host}:{port}" + (" (read-only)" if read_only else "")
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level.lower(), access_log=False)
