"""The liveness record of a worker: what it writes, and how records are read back.

It lives below the worker and monitoring layers because both use it: a worker writes
its record with :func:`beat` and :func:`retire`; monitoring reads records back with
:func:`member_ids` and :func:`records`.

Each worker keeps ``fq:worker:{id}`` (a hash with a TTL of three heartbeats) and its id
in ``fq:workers``. A record whose key expired is a dead worker; readers drop its id.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from fairque.core.config import WorkerConfig
from fairque.core.keys import Keys
from fairque.core.models import DEFAULT_QUEUE
from fairque.queue.calls import Arg, PipelineCall


@dataclass(frozen=True)
class WorkerInfo:
    """What a live worker reports about itself."""

    id: str
    host: str
    pid: int
    assigned_users: list[str]
    steal_targets: list[str]
    running: list[str]
    max_concurrent_tasks: int
    processed: int
    failed: int
    started_at: float
    last_seen: float
    queues: list[str] = field(default_factory=lambda: [DEFAULT_QUEUE])

    def serves(self, user_id: str) -> bool:
        """True if this worker may take ``user_id``'s tasks (assigned or by stealing)."""
        users = (*self.assigned_users, *self.steal_targets)
        return "*" in users or user_id in users

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form."""
        return dict(self.__dict__)


def beat(
    keys: Keys,
    worker: WorkerConfig,
    *,
    running: list[str],
    processed: int,
    failed: int,
    started_at: float,
) -> PipelineCall[None]:
    """Write the worker's record and refresh its TTL."""
    ttl_ms = max(1000, int(worker.heartbeat_seconds * 3000))
    record: dict[str, Arg] = {
        "id": worker.id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "assigned_users": json.dumps(worker.assigned_users),
        "steal_targets": json.dumps(worker.steal_targets),
        "queues": json.dumps(worker.queues),
        "running": json.dumps(running),
        "max_concurrent_tasks": worker.max_concurrent_tasks,
        "processed": processed,
        "failed": failed,
        "started_at": started_at,
        "last_seen": time.time(),
    }
    flat = [item for pair in record.items() for item in pair]
    key = keys.worker(worker.id)
    commands: list[tuple[Arg, ...]] = [
        ("HSET", key, *flat),
        ("PEXPIRE", key, ttl_ms),
        ("SADD", keys.workers, worker.id),
    ]
    return PipelineCall(commands, lambda _: None)


def retire(keys: Keys, worker_id: str) -> PipelineCall[None]:
    """Remove the worker's record (clean shutdown)."""
    commands: list[tuple[Arg, ...]] = [
        ("DEL", keys.worker(worker_id)),
        ("SREM", keys.workers, worker_id),
    ]
    return PipelineCall(commands, lambda _: None)


def member_ids(keys: Keys) -> PipelineCall[list[str]]:
    """Ids of every worker that registered and did not retire (some may be dead)."""
    return PipelineCall([("SMEMBERS", keys.workers)], lambda r: sorted(r[0]))


def records(keys: Keys, ids: list[str]) -> PipelineCall[list[WorkerInfo]]:
    """The live workers among ``ids``; dead ones (expired records) are dropped."""
    commands: list[tuple[Arg, ...]] = [("HGETALL", keys.worker(i)) for i in ids]
    return PipelineCall(commands, lambda replies: [_info(r) for r in replies if r])


def _info(raw: dict[str, str]) -> WorkerInfo:
    return WorkerInfo(
        id=raw["id"],
        host=raw.get("host", "?"),
        pid=int(raw.get("pid", 0)),
        assigned_users=json.loads(raw.get("assigned_users", "[]")),
        steal_targets=json.loads(raw.get("steal_targets", "[]")),
        running=json.loads(raw.get("running", "[]")),
        max_concurrent_tasks=int(raw.get("max_concurrent_tasks", 0)),
        processed=int(raw.get("processed", 0)),
        failed=int(raw.get("failed", 0)),
        started_at=float(raw.get("started_at", 0)),
        last_seen=float(raw.get("last_seen", 0)),
        queues=json.loads(raw.get("queues", json.dumps([DEFAULT_QUEUE]))),
    )
