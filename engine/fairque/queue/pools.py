"""Pool calls, shared by the sync and async queues.

A pool is a named number of slots: at most that many tasks naming it (``pool=``) run
at once across all workers (see the gates in lua/_common.lua). ``set_pool`` and
``unset_pool`` build script calls (``pool.lua``: applied at once); ``list_pools`` is a
read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fairque.core.errors import PoolError, TaskError
from fairque.core.models import DAG_GATE_PREFIX, LANE_SEPARATOR, validate_queue_name
from fairque.queue.calls import Arg, PipelineCall, QueueCalls, ScriptCall

MAX_SLOTS = 1_000_000


def check_pool_name(name: object) -> str:
    """The pool name, or a PoolError naming the problem."""
    try:
        return validate_queue_name(name, "pool")
    except TaskError as e:
        raise PoolError(str(e)) from None


def check_slots(slots: object) -> int:
    """The slot count (a whole number from 0 to 1,000,000), or a PoolError."""
    if isinstance(slots, bool) or not isinstance(slots, int) or not 0 <= slots <= MAX_SLOTS:
        raise PoolError(f"slots must be a whole number from 0 to {MAX_SLOTS:,}, not {slots!r}")
    return slots


def set_pool(calls: QueueCalls, name: str, slots: int) -> ScriptCall[int]:
    """Declare pool ``name`` with ``slots`` (0 holds its tasks), or change its slots."""
    args: list[Arg] = [check_pool_name(name), check_slots(slots)]
    return calls.call("pool", args, lambda r: int(r[1]))


def unset_pool(calls: QueueCalls, name: str) -> ScriptCall[int]:
    """Remove pool ``name``: its queued tasks run unlimited; pushes naming it are refused."""
    return calls.call("pool", [check_pool_name(name), ""], lambda r: int(r[1]))


def list_pools(calls: QueueCalls) -> PipelineCall[list[dict[str, Any]]]:
    """Every pool by name: its slots, running (started) and queued tasks."""
    k = calls.keys
    return PipelineCall(
        [("HGETALL", k.pools), ("HGETALL", k.pools_running), ("HGETALL", k.queue_counts)],
        lambda r: _pools(r[0], r[1], r[2]),
    )


def _pools(
    slots: Mapping[str, str], running: Mapping[str, str], lanes: Mapping[str, str]
) -> list[dict[str, Any]]:
    queued: dict[str, int] = {}
    for lane, count in lanes.items():
        for gate in lane.split(LANE_SEPARATOR)[1:]:
            queued[gate] = queued.get(gate, 0) + int(count)
    return [
        {
            "pool": name,
            "slots": int(slots[name]),
            "running": int(running.get(name, 0)),
            "queued": queued.get(name, 0),
        }
        for name in sorted(slots)
        if not name.startswith(DAG_GATE_PREFIX)
    ]
