"""Run callbacks: a DAG's ``on_failure_callback`` / ``on_success_callback``, called once
per run end by the worker whose ``watch_runs`` claimed that end.

A callback is a plain function ``f(summary: dict) -> None`` named ``module:function``,
imported under the worker's ``allowed_modules``; ``summary`` is
:meth:`~fairque.queue.runs.RunInfo.summary` (run id, DAG id, state, logical date, conf,
``timed_out`` and the failed tasks with their errors). A failed or canceled run calls
``on_failure_callback``, a successful one ``on_success_callback``. A callback that
cannot be imported or raises is logged and changes nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fairque.core.errors import TaskImportError
from fairque.core.imports import resolve_function
from fairque.queue.runs import RunInfo, RunState

logger = logging.getLogger(__name__)


def callback_of(info: RunInfo) -> str | None:
    """The ``module:function`` to call for an ended run, if its DAG set one."""
    if info.state is RunState.SUCCESS:
        return info.on_end.on_success_callback
    return info.on_end.on_failure_callback


def call_run_callback(info: RunInfo, allowed_modules: Sequence[str]) -> bool:
    """Call the callback of an ended run; True when one ran without raising."""
    path = callback_of(info)
    if path is None:
        return False
    try:
        function = resolve_function(path, allowed_modules)
    except TaskImportError as e:
        logger.error("run %s (%s): callback not called: %s", info.run_id, info.state, e)
        return False
    try:
        function(info.summary())
    except Exception:
        logger.exception("run %s (%s): callback %s raised", info.run_id, info.state, path)
        return False
    logger.info("run %s (%s): callback %s called", info.run_id, info.state, path)
    return True


def call_run_callbacks(infos: Sequence[RunInfo], allowed_modules: Sequence[str]) -> int:
    """Call the callback of each ended run in turn; how many ran without raising."""
    return sum(call_run_callback(info, allowed_modules) for info in infos)
