"""``create_app(config)``: the dashboard as an ASGI app (Starlette), to serve with
``fairque ui`` or to mount in an existing ASGI app.

Pages are rendered on the server (Jinja2, autoescaped); the one script,
``static/app.js``, refreshes the live parts of a page by short polling. Reads go
through :mod:`fairque.ui.data`, JSON documents through
:mod:`fairque.monitoring.documents` (the CLI's ``--json``), actions through the same
queue calls as the CLI.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from fairque.cli.queue import age_text
from fairque.core.config import FairQueueConfig
from fairque.core.errors import (
    DagNotFoundError,
    FairQueueError,
    RedisUnavailableError,
    RunNotFoundError,
    TaskNotFoundError,
)
from fairque.ui import security
from fairque.ui.state import Dashboard

logger = logging.getLogger("fairque.ui")

HERE = Path(__file__).parent
T = TypeVar("T")


def create_app(
    config: FairQueueConfig | None = None,
    *,
    dags_folder: str | Path | None = None,
    read_only: bool = False,
    token: str | None = None,
    allow_any_host: bool = False,
) -> Starlette:
    """The dashboard on the queue of ``config`` (the default config when None).

    ``read_only`` hides and refuses every action. With ``token``, every page and API
    call needs it (bearer header or the login form's cookie); without one, only
    loopback host names are answered unless ``allow_any_host`` (``--no-auth``)."""
    from fairque.ui import actions, api, pages

    dashboard = Dashboard(
        config or FairQueueConfig.create_default(),
        Path(dags_folder) if dags_folder is not None else None,
        read_only=read_only,
        token=token or None,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        dashboard.close()

    routes = [
        *api.routes(),
        *pages.routes(),
        *actions.routes(),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(security.Guard, token=dashboard.token, open_hosts=allow_any_host)],
        exception_handlers={FairQueueError: _error, Exception: _crash},
        lifespan=lifespan,
    )
    app.state.dashboard = dashboard
    app.state.templates = _templates()
    return app


def _templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["u"] = lambda value: quote(str(value), safe="")
    env.filters["age"] = age_text
    env.filters["when"] = when_text
    env.filters["pct"] = lambda value: f"{float(value or 0):.0%}"
    return env


def when_text(seconds: float | None) -> str:
    """A server time as ``YYYY-MM-DD HH:MM:SS`` UTC; ``-`` for none."""
    from datetime import datetime, timezone

    if not seconds:
        return "-"
    return datetime.fromtimestamp(float(seconds), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def dashboard_of(request: Request) -> Dashboard:
    board: Dashboard = request.app.state.dashboard
    return board


async def io(func: Callable[..., T], *args: Any) -> T:
    """Run blocking queue I/O in the thread pool."""
    return await run_in_threadpool(func, *args)


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page or fragment: the template with the request, the dashboard and ``context``."""
    board = dashboard_of(request)
    env: Environment = request.app.state.templates
    html = env.get_template(template).render(
        request=request,
        base=request.scope.get("root_path", ""),
        read_only=board.read_only,
        auth=board.token is not None,
        csrf=security.csrf_token(request),
        csrf_field=security.CSRF_FIELD,
        error=request.query_params.get("error"),
        notice=request.query_params.get("notice"),
        **context,
    )
    return HTMLResponse(html, status_code=status)


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _status(error: FairQueueError) -> int:
    if isinstance(error, (DagNotFoundError, RunNotFoundError, TaskNotFoundError)):
        return 404
    if isinstance(error, RedisUnavailableError):
        return 503
    return 400


async def _error(request: Request, exc: Exception) -> Response:
    status = _status(exc) if isinstance(exc, FairQueueError) else 400
    if wants_json(request):
        return JSONResponse({"error": str(exc)}, status_code=status)
    return render(request, "error.html", status=status, message=str(exc))


async def _crash(request: Request, exc: Exception) -> Response:
    logger.exception("dashboard error on %s", request.url.path)
    message = f"internal error ({type(exc).__name__}); see the dashboard's log"
    if wants_json(request):
        return JSONResponse({"error": message}, status_code=500)
    return render(request, "error.html", status=500, message=message)
