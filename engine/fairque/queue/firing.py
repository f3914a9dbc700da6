"""Calls for firing scheduled DAGs at scale: the due index, what one batch reads, and
the record of how late each tick fired.

The due index (``fq:dags:due``) scores each scheduled DAG by when it next needs the
scheduler, so a pass reads only the DAGs due now (``claim_due.lua``); ``fq:dags:specs``
holds the schedule each score was computed from, so a scheduler that loads a changed
file recomputes that DAG's score, and only that one.

Lag (how late a tick's run was created, seconds after the tick) and pass durations go to
two capped lists, newest first: memory stays bounded whatever the number of DAGs, and a
reader summarizes the samples of a recent window (:func:`lag_summary`). Like
:mod:`fairque.queue.control`, these functions only build calls.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fairque.core.keys import Keys
from fairque.queue.calls import PipelineCall

LAG_SAMPLES = 10_000
"""Tick lags kept (all DAGs together): 1,000 DAGs every 15 s fill it in 2.5 minutes."""
PASS_SAMPLES = 1_000
"""Firing passes kept (all schedulers together)."""
LAG_WINDOW_SECONDS = 300.0
"""The window :func:`lag_summary` looks at by default (when the samples reach back so far)."""


def dag_key(dag_id: str) -> str:
    """A DAG's name in the cursors and the failures: ``dag:{dag_id}``."""
    return f"dag:{dag_id}"


def due_specs(keys: Keys) -> PipelineCall[dict[str, str]]:
    """The schedule (spec text) each indexed DAG's due time was computed from, by id."""
    return PipelineCall(
        [("HGETALL", keys.dags_specs)], lambda r: {str(k): str(v) for k, v in r[0].items()}
    )


def index_dags(
    keys: Keys, put: Mapping[str, tuple[str, float]], drop: Iterable[str]
) -> PipelineCall[None]:
    """Add or replace DAGs in the due index (id -> (spec, due time)) and remove others
    (with their failure entries), in one step."""
    commands: list[tuple[Any, ...]] = []
    for dag_id, (spec, due) in sorted(put.items()):
        commands += [("HSET", keys.dags_specs, dag_id, spec), ("ZADD", keys.dags_due, due, dag_id)]
    for dag_id in sorted(drop):
        commands += [
            ("ZREM", keys.dags_due, dag_id),
            ("HDEL", keys.dags_specs, dag_id),
            ("HDEL", keys.scheduler_errors, dag_key(dag_id)),
            ("DEL", keys.dag_template(dag_id)),
        ]
    return PipelineCall(commands, lambda _: None, atomic=True)


def next_due(keys: Keys) -> PipelineCall[float | None]:
    """When the first DAG of the due index is due (None: the index is empty)."""
    return PipelineCall(
        [("ZRANGE", keys.dags_due, 0, 0, "WITHSCORES")],
        lambda r: float(r[0][0][1]) if r[0] else None,
    )


def template_versions(template_keys: Sequence[str]) -> PipelineCall[list[str | None]]:
    """The version of each stored run template (None: none stored)."""
    commands = [("LINDEX", key, 0) for key in template_keys]
    return PipelineCall(commands, lambda r: [None if v is None else str(v) for v in r])


def set_due(keys: Keys, due: Mapping[str, float]) -> PipelineCall[None]:
    """Set the next due time of DAGs still in the index (``XX``: a DAG another
    scheduler removed meanwhile stays removed)."""
    if not due:
        return PipelineCall([], lambda _: None)
    flat = [part for dag_id, at in sorted(due.items()) for part in (repr(at), dag_id)]
    return PipelineCall([("ZADD", keys.dags_due, "XX", *flat)], lambda _: None)


@dataclass(frozen=True)
class DagStates:
    """What a batch of due DAGs needs to know: each one's cursor (None: first seen) and
    the paused DAGs."""

    cursors: dict[str, float | None]
    paused: set[str]


def dag_states(keys: Keys, dag_ids: Sequence[str]) -> PipelineCall[DagStates]:
    """The cursors of ``dag_ids`` and the set of paused DAGs, in one round trip."""
    commands = [
        ("HMGET", keys.schedule_cursors, *(dag_key(i) for i in dag_ids)),
        ("SMEMBERS", keys.paused_dags),
    ]

    def parse(replies: list[Any]) -> DagStates:
        cursors = {
            dag_id: None if value is None else float(value)
            for dag_id, value in zip(dag_ids, replies[0], strict=True)
        }
        return DagStates(cursors, {str(m) for m in replies[1]})

    return PipelineCall(commands, parse)


def slot_holders(
    keys: Keys, dag_ids: Sequence[str]
) -> PipelineCall[dict[str, tuple[list[str], int]]]:
    """Per DAG: the run keys holding one of its ``max_active_runs`` slots and how many
    runs wait for one (see push.lua)."""
    commands: list[tuple[Any, ...]] = []
    for dag_id in dag_ids:
        commands += [("SMEMBERS", keys.run_slots(dag_id)), ("ZCARD", keys.queued_runs(dag_id))]

    def parse(replies: list[Any]) -> dict[str, tuple[list[str], int]]:
        return {
            dag_id: (sorted(str(m) for m in replies[2 * i]), int(replies[2 * i + 1]))
            for i, dag_id in enumerate(dag_ids)
        }

    return PipelineCall(commands, parse)


def active_task_counts(run_keys: Sequence[str]) -> PipelineCall[dict[str, int]]:
    """The count of unended tasks of each run (by its key, as the slot sets hold it)."""
    commands = [("HGET", key, "active_tasks") for key in run_keys]
    return PipelineCall(
        commands,
        lambda r: {k: int(v or 0) for k, v in zip(run_keys, r, strict=True)},
    )


def record_lag(
    keys: Keys, lags: Sequence[tuple[str, float]], at: float, token: str, seconds: float
) -> PipelineCall[None]:
    """Record one firing pass (``seconds`` long, at server time ``at``, by the scheduler
    ``token``) and the lag of each tick it fired (DAG id, seconds late)."""
    commands: list[tuple[Any, ...]] = [
        ("LPUSH", keys.scheduler_passes, f"{at:.3f} {token} {seconds:.6f} {len(lags)}"),
        ("LTRIM", keys.scheduler_passes, 0, PASS_SAMPLES - 1),
    ]
    if lags:
        entries = [f"{at:.3f} {dag_id} {lag:.6f}" for dag_id, lag in lags]
        commands += [
            ("LPUSH", keys.scheduler_lag, *entries),
            ("LTRIM", keys.scheduler_lag, 0, LAG_SAMPLES - 1),
        ]
    return PipelineCall(commands, lambda _: None)


LATE_DAGS = 20
"""How many DAGs (the latest, by their worst lag) a summary lists by default."""


def scheduler_lag(
    keys: Keys, now: float, window: float = LAG_WINDOW_SECONDS, dags: int | None = LATE_DAGS
) -> PipelineCall[dict[str, Any]]:
    """The :func:`lag_summary` of the samples of the last ``window`` seconds before ``now``."""
    commands = [("LRANGE", keys.scheduler_lag, 0, -1), ("LRANGE", keys.scheduler_passes, 0, -1)]
    return PipelineCall(commands, lambda r: lag_summary(r[0], r[1], now, window, dags))


def lag_summary(
    lag_entries: Sequence[str],
    pass_entries: Sequence[str],
    now: float,
    window: float,
    dags: int | None = LATE_DAGS,
) -> dict[str, Any]:
    """How late the DAG ticks of the window fired, overall (``ticks``) and per DAG
    (``dags``: the ``dags`` latest by their max, every one when None), as count, p50,
    p99 and max (seconds), and how long the firing passes that fired something took
    (``passes``). JSON-compatible; no I/O."""
    since = now - window
    overall: list[float] = []
    per_dag: dict[str, list[float]] = {}
    for entry in lag_entries:
        at, dag_id, lag = _split(entry)
        if at is not None and at >= since:
            overall.append(float(lag))
            per_dag.setdefault(dag_id, []).append(float(lag))
    latest = sorted(per_dag, key=lambda d: -max(per_dag[d]))[:dags]
    durations = [
        float(d) for at, _, d in map(_split, pass_entries) if at is not None and at >= since
    ]
    return {
        "window_seconds": window,
        "ticks": _figures(overall),
        "passes": _figures(durations),
        "dags": {dag_id: _figures(per_dag[dag_id]) for dag_id in sorted(latest)},
    }


def _split(entry: str) -> tuple[float | None, str, str]:
    parts = str(entry).split(" ")
    try:
        return float(parts[0]), parts[1], parts[2]
    except (IndexError, ValueError):
        return None, "", "0"


def _figures(values: list[float]) -> dict[str, float | int | None]:
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50": _rank(ordered, 50),
        "p99": _rank(ordered, 99),
        "max": ordered[-1] if ordered else None,
    }


def _rank(ordered: list[float], q: float) -> float | None:
    """The nearest-rank percentile ``q`` of sorted values (None when empty)."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]
