"""The dashboard's actions: POST only, refused with ``--read-only`` or without the CSRF
token, answered with the CLI's error texts, and logged with the remote address.

Each action does what its CLI command does, through the same calls: trigger
(``fairque dag trigger``, the conf checked by ``DAG.check_conf``), pause and unpause,
cancel a run, clear a run's failed tasks or one task with its downstream
(``fairque run clear``), cancel or retry one task.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote, urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from fairque.core.errors import FairQueueError, QueueError
from fairque.dag.model import DAG
from fairque.ui import security
from fairque.ui.app import dashboard_of, io
from fairque.ui.state import Dashboard

logger = logging.getLogger("fairque.ui")

Action = Callable[[Dashboard, Request, FormData], str]
"""An action: does its work (blocking I/O) and returns where to go next."""


def conf_from_form(dag: DAG, form: Mapping[str, Any]) -> dict[str, Any] | None:
    """The run's conf from the trigger form: one field per typed param (``param.NAME``,
    left empty for the param's default) and an optional JSON object (``conf``) for
    anything else. Values are converted by the param's type; one that does not convert
    is passed as typed, so :meth:`DAG.check_conf` answers as it does to the CLI."""
    conf: dict[str, Any] = {}
    text = str(form.get("conf") or "").strip()
    if text:
        try:
            conf = json.loads(text)
        except json.JSONDecodeError as e:
            raise FairQueueError(f"--conf is not valid JSON: {e}") from None
        if not isinstance(conf, dict):
            raise FairQueueError('--conf must be a JSON object, e.g. \'{"source": "api"}\'')
    for name, spec in dag.params.items():
        raw = form.get(f"param.{name}")
        if raw is None or str(raw) == "":
            continue
        conf[name] = _typed(spec.type, str(raw), spec.enum is not None)
    return conf or None


def _typed(kind: str, raw: str, is_enum: bool) -> Any:
    converters: dict[str, Callable[[str], Any]] = {
        "integer": int,
        "number": float,
        "boolean": lambda t: {"true": True, "false": False}[t],
        "object": json.loads,
        "array": json.loads,
    }
    convert = json.loads if is_enum else converters.get(kind)
    if convert is None:
        return raw
    try:
        return convert(raw)
    except (ValueError, KeyError):
        return raw


def _run_url(run_id: str, notice: str) -> str:
    return f"/runs/{quote(run_id, safe='')}?{urlencode({'notice': notice})}"


def trigger(board: Dashboard, request: Request, form: FormData) -> str:
    from fairque.dag.runs import trigger as trigger_run

    dag = board.dag(request.path_params["dag_id"])
    tenant = str(form.get("tenant") or "").strip() or None
    handle = trigger_run(board.queue, dag, conf=conf_from_form(dag, form), tenant=tenant)
    return _run_url(handle.run_id, f"run {handle.run_id} of {dag.dag_id} queued")


def _pause(paused: bool) -> Action:
    def action(board: Dashboard, request: Request, form: FormData) -> str:
        from fairque.dag.runs import set_paused

        dag = board.dag(request.path_params["dag_id"])
        set_paused(board.queue, dag.dag_id, paused)
        notice = f"{dag.dag_id} {'paused' if paused else 'unpaused'}"
        return f"/dags/{quote(dag.dag_id, safe='')}?{urlencode({'notice': notice})}"

    return action


def cancel_run(board: Dashboard, request: Request, form: FormData) -> str:
    run_id = request.path_params["run_id"]
    info = board.queue.cancel_run(run_id)
    return _run_url(run_id, f"run {run_id}: {info.state}")


def clear_run(board: Dashboard, request: Request, form: FormData) -> str:
    run_id = request.path_params["run_id"]
    tasks = [str(t) for t in form.getlist("task") if str(t)] or None
    downstream = str(form.get("downstream", "1")) not in ("", "0", "false")
    info = board.queue.clear_run(run_id, tasks, downstream)
    return _run_url(run_id, f"run {run_id}: {info.state}")


def _task_url(board: Dashboard, task_id: str, notice: str) -> str:
    record = board.queue.get_task(task_id)
    if record.run_id and record.name:
        return f"{_run_url(record.run_id, notice)}&{urlencode({'task': record.name})}"
    return f"/tasks/{quote(task_id, safe='')}?{urlencode({'notice': notice})}"


def cancel_task(board: Dashboard, request: Request, form: FormData) -> str:
    task_id = request.path_params["task_id"]
    outcome = board.queue.cancel(task_id, f"canceled from the dashboard by {_who(request)}")
    return _task_url(board, task_id, f"task {task_id}: {outcome}")


def retry_task(board: Dashboard, request: Request, form: FormData) -> str:
    """Run one ended task of a run again (``fairque run clear RUN --task NAME
    --no-downstream``); a task outside any run cannot be retried from here."""
    task_id = request.path_params["task_id"]
    record = board.queue.get_task(task_id)
    if not record.run_id or not record.name:
        raise QueueError(f"task {task_id} is not part of a run; push it again to run it again")
    info = board.queue.clear_run(record.run_id, [record.name], False)
    return _task_url(board, task_id, f"run {record.run_id}: {info.state}")


def _who(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _back(request: Request, message: str) -> str:
    """Where an error is shown: the page the form was on (same origin), with the text."""
    referer = request.headers.get("referer", "")
    host = request.headers.get("host", "")
    path = request.scope.get("root_path", "") + "/"
    if referer:
        from urllib.parse import urlsplit

        parts = urlsplit(referer)
        if parts.netloc == host:
            query = "&".join(
                p for p in parts.query.split("&") if p and not p.startswith(("error=", "notice="))
            )
            path = parts.path + (f"?{query}" if query else "")
    joiner = "&" if "?" in path else "?"
    return f"{path}{joiner}{urlencode({'error': message})}"


def _endpoint(name: str, action: Action) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        board = dashboard_of(request)
        form = await request.form()
        if board.read_only:
            return _refuse(request, "the dashboard is read-only (--read-only)", 403)
        problem = security.csrf_problem(request, str(form.get(security.CSRF_FIELD) or ""))
        if problem is not None:
            return _refuse(request, problem, 403)
        subject = " ".join(f"{k}={v!r}" for k, v in request.path_params.items())
        try:
            target = await io(action, board, request, form)
        except FairQueueError as e:
            logger.warning("action %s %s by %s refused: %s", name, subject, _who(request), e)
            if security.bearer(request):
                return JSONResponse({"error": str(e)}, status_code=400)
            return RedirectResponse(_back(request, str(e)), status_code=303)
        logger.info("action %s %s by %s", name, subject, _who(request))
        target = request.scope.get("root_path", "") + target
        if security.bearer(request):
            return JSONResponse({"ok": True, "location": target})
        return RedirectResponse(target, status_code=303)

    return endpoint


def _refuse(request: Request, message: str, status: int) -> Response:
    logger.warning("action refused for %s on %s: %s", _who(request), request.url.path, message)
    return JSONResponse({"error": message}, status_code=status)


ACTIONS: dict[str, tuple[str, Action]] = {
    "trigger": ("/dags/{dag_id:path}/trigger", trigger),
    "pause": ("/dags/{dag_id:path}/pause", _pause(True)),
    "unpause": ("/dags/{dag_id:path}/unpause", _pause(False)),
    "cancel_run": ("/runs/{run_id:path}/cancel", cancel_run),
    "clear": ("/runs/{run_id:path}/clear", clear_run),
    "cancel_task": ("/tasks/{task_id:path}/cancel", cancel_task),
    "retry_task": ("/tasks/{task_id:path}/retry", retry_task),
}


def routes() -> list[Route]:
    return [
        Route(path, _endpoint(name, action), methods=["POST"])
        for name, (path, action) in ACTIONS.items()
    ]
