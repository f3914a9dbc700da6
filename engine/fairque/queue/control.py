"""Calls for the scheduler and for DAG control: stored schedules, schedule cursors,
the schedules failing, paused DAGs, the scheduler lock's owner and the server clock.

Like :class:`~fairque.queue.calls.QueueCalls`, these only build calls; a queue's
``run_pipeline`` sends them, so their Redis errors are mapped at the queue's boundary.
Replies are raw text: the layers above parse schedules themselves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from fairque.core.keys import Keys
from fairque.queue.calls import PipelineCall


def put_schedule(keys: Keys, schedule_id: str, text: str) -> PipelineCall[None]:
    """Store (or replace) a schedule's JSON text."""
    return PipelineCall([("HSET", keys.schedules, schedule_id, text)], lambda _: None)


def remove_schedule(keys: Keys, schedule_id: str) -> PipelineCall[bool]:
    """Delete a schedule, its cursor and its error; the reply says if it existed."""
    commands = [
        ("HDEL", keys.schedules, schedule_id),
        ("HDEL", keys.schedule_cursors, schedule_id),
        ("HDEL", keys.scheduler_errors, f"schedule:{schedule_id}"),
    ]
    return PipelineCall(commands, lambda r: bool(r[0]))


def schedule_text(keys: Keys, schedule_id: str) -> PipelineCall[str | None]:
    """One schedule's JSON text (None when there is none)."""
    return PipelineCall([("HGET", keys.schedules, schedule_id)], lambda r: _text(r[0]))


def schedule_texts(keys: Keys) -> PipelineCall[dict[str, str]]:
    """Every schedule's JSON text by id."""
    return PipelineCall([("HGETALL", keys.schedules)], lambda r: _texts(r[0]))


def cursor(keys: Keys, key: str) -> PipelineCall[float | None]:
    """The last tick handled for ``key`` (a schedule id or ``dag:{dag_id}``), or None."""
    return PipelineCall(
        [("HGET", keys.schedule_cursors, key)], lambda r: None if r[0] is None else float(r[0])
    )


def update_schedule_errors(
    keys: Keys, put: Mapping[str, str], drop: Sequence[str]
) -> PipelineCall[None]:
    """Write the entries of failing schedules and DAGs (``schedule:{id}``/``dag:{id}``
    -> JSON) that changed and remove those of the ones that fire again, in one step;
    the other entries (another scheduler's) are left as they are."""
    commands: list[tuple[Any, ...]] = []
    if put:
        flat = [part for item in sorted(put.items()) for part in item]
        commands.append(("HSET", keys.scheduler_errors, *flat))
    if drop:
        commands.append(("HDEL", keys.scheduler_errors, *drop))
    return PipelineCall(commands, lambda _: None, atomic=True)


def schedule_errors(keys: Keys) -> PipelineCall[dict[str, dict[str, Any]]]:
    """The failing schedules and DAGs as the scheduler recorded them: ``reason``,
    ``since`` (server time of the first failing pass) and ``failures`` (passes)."""
    return PipelineCall([("HGETALL", keys.scheduler_errors)], lambda r: _errors(r[0]))


def set_dag_paused(keys: Keys, dag_id: str, paused: bool) -> PipelineCall[None]:
    """Pause or unpause a DAG's schedule."""
    command = "SADD" if paused else "SREM"
    return PipelineCall([(command, keys.paused_dags, dag_id)], lambda _: None)


def paused_dags(keys: Keys) -> PipelineCall[set[str]]:
    """The ids of the paused DAGs."""
    return PipelineCall([("SMEMBERS", keys.paused_dags)], lambda r: {str(m) for m in r[0]})


def lock_owner(keys: Keys) -> PipelineCall[str | None]:
    """The token of the scheduler holding the lock, or None."""
    return PipelineCall([("GET", keys.scheduler_lock)], lambda r: _text(r[0]))


def server_time() -> PipelineCall[float]:
    """The server's clock, in epoch seconds."""
    return PipelineCall([("TIME",)], lambda r: _seconds(r[0]))


def _seconds(reply: Any) -> float:
    seconds, micros = reply
    return int(seconds) + int(micros) / 1_000_000


def _errors(raw: Mapping[Any, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for subject, text in sorted(_texts(raw).items()):
        try:
            entry = json.loads(text)
        except ValueError:
            entry = None
        found[subject] = entry if isinstance(entry, dict) else {"reason": text}
    return found


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _texts(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in raw.items()}
