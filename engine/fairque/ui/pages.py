"""The dashboard's pages (server-rendered) and the fragments ``app.js`` polls to keep
their live parts current."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from fairque.core.models import TaskRecord
from fairque.dag.render import RenderError
from fairque.queue.runs import log_attempt
from fairque.ui import api, data, security
from fairque.ui.app import dashboard_of, io, render
from fairque.ui.charts import charts
from fairque.ui.state import Dashboard

POLL_MS = 1000


async def overview(request: Request) -> HTMLResponse:
    board = dashboard_of(request)
    query = api.tenant_query(request)
    doc = await io(api.overview_doc, board, query)
    return render(
        request, "overview.html", doc=doc, charts=charts(board.samples.snapshot()), query=query
    )


def _workers(board: Dashboard) -> list[dict[str, Any]]:
    from fairque.monitoring.health import live_workers
    from fairque.monitoring.stats import worker_load

    now = data.server_time(board.queue)
    return [worker_load(w, now) for w in live_workers(board.queue)]


async def workers(request: Request) -> HTMLResponse:
    rows = await io(_workers, dashboard_of(request))
    return render(request, "workers.html", workers=rows)


async def dags(request: Request) -> HTMLResponse:
    board = dashboard_of(request)
    page = api.page_param(request)
    rows, total = await io(api.dag_list, board, page)
    problems = board.bag().problems
    return render(request, "dags.html", dags=rows, paging=page.info(total), problems=problems)


def _dag_context(board: Dashboard, dag_id: str, page: data.Page) -> dict[str, Any]:
    from fairque.dag.runs import graph_view, paused_dags
    from fairque.monitoring.documents import dag_document

    dag = board.dag(dag_id)
    doc = dag_document(dag, dag_id in paused_dags(board.queue))
    svg, problem = _svg(board, lambda: graph_view(dag))
    runs = data.runs_page(board.queue, dag_id, page)
    return {"dag": doc, "svg": svg, "graph_problem": problem, "runs": runs}


def _svg(board: Dashboard, view: Any) -> tuple[str | None, str | None]:
    try:
        return board.graphs.svg(view()), None
    except RenderError as e:
        return None, str(e)


async def dag(request: Request) -> HTMLResponse:
    board = dashboard_of(request)
    context = await io(_dag_context, board, request.path_params["dag_id"], api.page_param(request))
    return render(request, "dag.html", **context)


async def runs(request: Request) -> HTMLResponse:
    board = dashboard_of(request)
    page = await io(data.runs_page, board.queue, None, api.page_param(request))
    return render(request, "runs.html", runs=page)


def _run_context(board: Dashboard, run_id: str, task: str | None, root: str) -> dict[str, Any]:
    from fairque.ui.graph import run_view

    info, lineage = data.run_with_lineage(board.queue, run_id)
    link = f"{root}/runs/{quote(run_id, safe='')}?task="
    dag = board.dag_or_none(info.dag_id)
    svg, problem = _svg(board, lambda: run_view(info, lineage, dag, link))
    panel = None
    if task is not None and task in info.task_ids:
        panel = _panel_context(board, info.task_ids[task], None)
    return {
        "run": info,
        "order": data.table_order(info.tasks),
        "lineage": lineage,
        "svg": svg,
        "graph_problem": problem,
        "panel": panel,
        "selected": task,
        "final": info.state.is_finished and (panel is None or panel["final"]),
    }


async def run(request: Request) -> HTMLResponse:
    board = dashboard_of(request)
    task = request.query_params.get("task")
    root = request.scope.get("root_path", "")
    context = await io(_run_context, board, request.path_params["run_id"], task, root)
    return render(request, "run.html", poll=POLL_MS, **context)


async def run_live(request: Request) -> HTMLResponse:
    board = dashboard_of(request)
    task = request.query_params.get("task")
    root = request.scope.get("root_path", "")
    context = await io(_run_context, board, request.path_params["run_id"], task, root)
    return render(request, "_run_live.html", **context)


def _panel_context(board: Dashboard, task_id: str, attempt: int | None) -> dict[str, Any]:
    record: TaskRecord = board.queue.get_task(task_id)
    number = log_attempt(record, attempt)
    queue = board.queue
    text = "" if number is None else queue.run_pipeline(queue.calls.task_log(task_id, number))
    running = record.state is not None and not record.state.is_terminal
    return {
        "task": record,
        "attempt": number,
        "log": text,
        "final": not running,
        "following": running and (attempt is None or attempt == record.attempts),
    }


async def task(request: Request) -> Response:
    board = dashboard_of(request)
    task_id = request.path_params["task_id"]
    if not task_id:  # the header's "task id" box without its script
        wanted = quote(request.query_params.get("id", ""), safe="")
        return RedirectResponse(f"{request.scope.get('root_path', '')}/tasks/{wanted}")
    context = await io(_panel_context, board, task_id, api.attempt_param(request))
    return render(request, "task.html", poll=POLL_MS, panel=context)


async def task_live(request: Request) -> HTMLResponse:
    board = dashboard_of(request)
    context = await io(
        _panel_context, board, request.path_params["task_id"], api.attempt_param(request)
    )
    return render(request, "_task_panel.html", panel=context)


async def login(request: Request) -> Response:
    board = dashboard_of(request)
    root = request.scope.get("root_path", "")
    target = request.query_params.get("next", root + "/")
    local = target.startswith("/") and not target.startswith(("//", "/\\"))
    target = target if local else root + "/"  # never a redirect to another site
    if request.method == "GET":
        return render(request, "login.html", next=target)
    form = await request.form()
    problem = security.csrf_problem(request, str(form.get(security.CSRF_FIELD) or ""))
    given = str(form.get("token") or "")
    if problem is None and board.token is not None and security.same(given, board.token):
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            security.AUTH_COOKIE,
            security.session_value(board.token),
            httponly=True,
            samesite="strict",
            path="/",
        )
        return response
    message = problem or "wrong token"
    return render(request, "login.html", status=401, next=target, login_error=message)


async def logout(request: Request) -> Response:
    response = RedirectResponse(request.scope.get("root_path", "") + "/login", status_code=303)
    response.delete_cookie(security.AUTH_COOKIE, path="/")
    return response


def routes() -> list[Route]:
    return [
        Route("/", overview),
        Route("/workers", workers),
        Route("/dags", dags),
        Route("/dags/{dag_id:path}", dag),
        Route("/runs", runs),
        Route("/runs/{run_id:path}/live", run_live),
        Route("/runs/{run_id:path}", run),
        Route("/tasks/{task_id:path}/live", task_live),
        Route("/tasks/{task_id:path}", task),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]
