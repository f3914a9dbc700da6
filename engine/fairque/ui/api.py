"""The JSON API under ``/api/v1``: the documents the CLI prints with ``--json``, from the
same serializer (:mod:`fairque.monitoring.documents`), plus the paginated overview."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from fairque.monitoring import documents
from fairque.ui import data
from fairque.ui.app import dashboard_of, io
from fairque.ui.data import BadQueryError, Page, TenantQuery
from fairque.ui.state import Dashboard


def tenant_query(request: Request) -> TenantQuery:
    """The overview's search, sort (``sort``, ``order``) and page from the query string."""
    params = request.query_params
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise BadQueryError(f"order must be asc or desc, not {order!r}")
    return TenantQuery(
        search=params.get("search", "").strip(),
        sort=params.get("sort", "queued"),
        descending=order == "desc",
        page=Page.parse(params.get("page"), params.get("per_page")),
    )


def overview_doc(board: Dashboard, query: TenantQuery) -> dict[str, Any]:
    """The overview document; its throughput and oldest wait feed the charts."""
    doc = data.overview(board.queue, query, board.share_totals())
    board.samples.record(doc)
    return doc


def dag_list(board: Dashboard, page: Page) -> tuple[list[dict[str, Any]], int]:
    """One page of ``fairque dag list --json`` (all of it while the folder holds no more
    DAGs than a page), and how many DAGs there are."""
    from fairque.dag.runs import paused_dags

    bag = board.bag()
    ids = list(bag.dags)  # DAGs are summarised without being built
    paused = paused_dags(board.queue)
    shown = [bag.info(dag_id) for dag_id in ids[page.offset : page.offset + page.size]]
    return documents.dag_summaries(board.queue, shown, paused), len(ids)


def dag_doc(board: Dashboard, dag_id: str, page: Page) -> dict[str, Any]:
    """One DAG's definition and a page of its runs."""
    from fairque.dag.runs import paused_dags

    dag = board.dag(dag_id)
    doc = documents.dag_document(dag, dag_id in paused_dags(board.queue))
    runs = data.runs_page(board.queue, dag_id, page)
    return {**doc, "runs": {**runs, "runs": documents.run_list_document(runs["runs"])}}


def runs_doc(board: Dashboard, dag_id: str | None, page: Page) -> dict[str, Any]:
    """A page of runs: ``fairque run list --json``'s entries with the paging."""
    runs = data.runs_page(board.queue, dag_id, page)
    return {**runs, "runs": documents.run_list_document(runs["runs"])}


def workers_doc(board: Dashboard) -> list[dict[str, Any]]:
    """``fairque worker list --json``."""
    from fairque.monitoring.health import live_workers

    return documents.workers_document(live_workers(board.queue))


def attempt_param(request: Request) -> int | None:
    """The ``attempt`` query parameter (None when absent)."""
    text = request.query_params.get("attempt")
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise BadQueryError(f"attempt must be a whole number, not {text!r}") from None


def page_param(request: Request) -> Page:
    """The ``page`` and ``per_page`` query parameters."""
    return Page.parse(request.query_params.get("page"), request.query_params.get("per_page"))


async def overview(request: Request) -> JSONResponse:
    return JSONResponse(await io(overview_doc, dashboard_of(request), tenant_query(request)))


async def tenants(request: Request) -> JSONResponse:
    doc = await io(overview_doc, dashboard_of(request), tenant_query(request))
    keys = ("search", "sort", "order", "page", "per_page", "total", "pages", "tenants")
    return JSONResponse({key: doc[key] for key in keys})


async def workers(request: Request) -> JSONResponse:
    return JSONResponse(await io(workers_doc, dashboard_of(request)))


async def dags(request: Request) -> JSONResponse:
    rows, _ = await io(dag_list, dashboard_of(request), page_param(request))
    return JSONResponse(rows)


async def dag(request: Request) -> JSONResponse:
    dag_id = request.path_params["dag_id"]
    return JSONResponse(await io(dag_doc, dashboard_of(request), dag_id, page_param(request)))


async def runs(request: Request) -> JSONResponse:
    dag_id = request.query_params.get("dag_id") or None
    return JSONResponse(await io(runs_doc, dashboard_of(request), dag_id, page_param(request)))


async def run(request: Request) -> JSONResponse:
    board = dashboard_of(request)
    return JSONResponse(await io(data.run_doc, board.queue, request.path_params["run_id"]))


async def task(request: Request) -> JSONResponse:
    board = dashboard_of(request)
    return JSONResponse(await io(data.task_doc, board.queue, request.path_params["task_id"]))


async def attempts(request: Request) -> JSONResponse:
    board = dashboard_of(request)
    doc = await io(data.task_doc, board.queue, request.path_params["task_id"])
    return JSONResponse({"task_id": doc["task_id"], "attempts": doc["attempt_history"]})


async def logs(request: Request) -> JSONResponse:
    board = dashboard_of(request)
    task_id = request.path_params["task_id"]
    return JSONResponse(await io(data.task_logs, board.queue, task_id, attempt_param(request)))


def routes() -> list[Route]:
    return [
        Route("/api/v1/overview", overview),
        Route("/api/v1/tenants", tenants),
        Route("/api/v1/workers", workers),
        Route("/api/v1/dags", dags),
        Route("/api/v1/dags/{dag_id:path}", dag),
        Route("/api/v1/runs", runs),
        Route("/api/v1/runs/{run_id:path}", run),
        Route("/api/v1/tasks/{task_id:path}/attempts", attempts),
        Route("/api/v1/tasks/{task_id:path}/logs", logs),
        Route("/api/v1/tasks/{task_id:path}", task),
    ]
