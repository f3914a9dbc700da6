"""What the dashboard reads: one function per page or API answer, each a few pipelined
reads of counters and indexes (never a scan of the keyspace), paginated.

The documents the CLI also prints come from :mod:`fairque.monitoring.documents`; this
module adds the dashboard's own views (the tenants overview, pages of runs) around them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fairque.core.errors import FairQueueError
from fairque.core.models import TaskRecord, TaskState
from fairque.core.tenants import ShareTotals
from fairque.monitoring.documents import run_document, task_document
from fairque.queue import control
from fairque.queue.calls import (
    STATE_READS,
    Arg,
    PipelineCall,
    parse_state_reads,
    queued_by_queue,
)
from fairque.queue.runs import RunInfo, log_attempt
from fairque.queue.sync_queue import TaskQueue

PRIORITIES = tuple(str(p) for p in range(1, 7))
COUNTED = ("queued", "started", "deferred", "scheduled", "finished", "failed", "canceled")
"""Per-tenant counters of the stats hash (``"{state} {user}"``)."""
TENANT_SORTS = ("queued", "running", "user")
MAX_PER_PAGE = 500


class BadQueryError(FairQueueError, ValueError):
    """A page or API query with a bad parameter (answered with 400)."""


@dataclass(frozen=True)
class Page:
    """Which slice of a long list: 1-based page number and its size."""

    number: int = 1
    size: int = 50

    @classmethod
    def parse(cls, number: str | None, size: str | None, default_size: int = 50) -> Page:
        """From query parameters; BadQueryError naming the bad one."""
        page = _positive(number, "page", 1)
        per_page = _positive(size, "per_page", default_size)
        if per_page > MAX_PER_PAGE:
            raise BadQueryError(f"per_page must be at most {MAX_PER_PAGE}, not {per_page}")
        return cls(page, per_page)

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    def info(self, total: int) -> dict[str, int]:
        """The paging part of a document."""
        pages = max(1, math.ceil(total / self.size))
        return {"page": self.number, "per_page": self.size, "total": total, "pages": pages}


def _positive(text: str | None, name: str, default: int) -> int:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadQueryError(f"{name} must be a whole number, not {text!r}") from None
    if value < 1:
        raise BadQueryError(f"{name} must be 1 or more, not {value}")
    return value


@dataclass(frozen=True)
class TenantQuery:
    """The overview's table: a search (substring of the tenant id), a sort, a page."""

    search: str = ""
    sort: str = "queued"
    descending: bool = True
    page: Page = Page()

    def __post_init__(self) -> None:
        if self.sort not in TENANT_SORTS:
            raise BadQueryError(f"sort must be one of {', '.join(TENANT_SORTS)}, not {self.sort!r}")


def _call(commands: list[tuple[Arg, ...]]) -> PipelineCall[list[Any]]:
    return PipelineCall(commands, list)


def overview(queue: TaskQueue, query: TenantQuery, totals: ShareTotals) -> dict[str, Any]:
    """The fairness picture: overall counts, throughput, the oldest wait, and one page of
    tenants (see :func:`tenant_rows`; ``totals``: what their shares are measured
    against). A few pipelined reads and one read-only script; only the page's tenants
    travel."""
    k = queue.keys
    head = queue.calls.state_reads()
    head += [("SCARD", k.all_users), ("ZCARD", k.active_users), ("TIME",)]
    head += [("HGETALL", k.queue_counts)]
    replies = queue.run_pipeline(_call(head))
    n = STATE_READS
    seconds, micros = replies[n + 2]
    now = int(seconds) + int(micros) / 1_000_000
    states, oldest = parse_state_reads(replies, now)
    ended = queue.run_pipeline(queue.calls.ended_since(int((now - 60) * 1000)))
    running = states[TaskState.STARTED.value]
    rows, matching = tenant_rows(queue, query, now, running, totals)
    return {
        "server_time": now,
        "states": states,
        "tasks_active": sum(states[s.value] for s in TaskState if s.is_active),
        "tenants_total": int(replies[n]),
        "active_users": int(replies[n + 1]),
        "queues": queued_by_queue(states[TaskState.QUEUED.value], replies[n + 3]),
        "ended_last_minute": ended,
        "throughput_per_second": round(sum(ended.values()) / 60, 3),
        "oldest_queued_age": oldest,
        "fairness": "time" if totals.by_time else "count",
        "jain_index": None if totals.jain is None else round(totals.jain, 4),
        "search": query.search,
        "sort": query.sort,
        "order": "desc" if query.descending else "asc",
        **query.page.info(matching),
        "tenants": rows,
    }


def tenant_rows(
    queue: TaskQueue, query: TenantQuery, now: float, running: int, totals: ShareTotals
) -> tuple[list[dict[str, Any]], int]:
    """One page of tenants (and how many match the search), each with: queued (also per
    priority), running, deferred, scheduled, ended counts, the wait of its next task,
    its share of the ``running`` tasks (``running_share``), and its entry of ``fairque
    tenant list --json`` (``queue.tenant_page``: weight, ``max_running``, rate, burst and
    tokens, ``served_last_minute``, and its ``share`` of the last minute's service
    against its ``fair_share``, both measured against ``totals``, over every tenant).

    This is the one place the overview reads tenants."""
    sort = "started" if query.sort == "running" else query.sort
    needle = "".join(c.lower() if c.isascii() else c for c in query.search)
    found = queue.run_script(
        queue.calls.tenants(sort, query.descending, needle, query.page.offset, query.page.size)
    )
    details = _tenant_details(queue, found.users, now)
    figures = queue.tenant_page(found.users, totals)
    rows = []
    for user, entry in zip(found.users, figures, strict=True):
        row = details[user]
        row["running_share"] = round(row["running"] / running, 4) if running else 0.0
        rows.append({**row, **entry})
    return rows, found.matching


def _tenant_details(queue: TaskQueue, users: Sequence[str], now: float) -> dict[str, Any]:
    """Counters per state and priority, and the wait of the next task, of a few users."""
    if not users:
        return {}
    names = [*COUNTED, *(f"p{p}" for p in PRIORITIES)]
    commands: list[tuple[Arg, ...]] = [
        ("HMGET", queue.keys.stats, *(f"{name} {u}" for name in names)) for u in users
    ]
    replies = queue.run_pipeline(_call(commands))
    details: dict[str, Any] = {}
    for user, values in zip(users, replies, strict=True):
        numbers = dict(zip(names, (int(v or 0) for v in values), strict=True))
        row: dict[str, Any] = {state: numbers[state] for state in COUNTED}
        row["running"] = row["started"]
        row["queued_by_priority"] = {p: numbers[f"p{p}"] for p in PRIORITIES if numbers[f"p{p}"]}
        row["next_task_age"] = None
        details[user] = row
    waiting = [u for u in users if details[u]["queued"]]
    if waiting:
        heads = queue.run_pipeline(queue.calls.queue_heads(waiting))
        ids = [task_id for head in heads for task_id in head]
        found: list[float | None] = (
            queue.run_pipeline(queue.calls.enqueued_times(ids)) if ids else []
        )
        times = iter(found)
        for user, head in zip(waiting, heads, strict=True):
            queued_at = [t for t in (next(times) for _ in head) if t is not None]
            if queued_at:
                details[user]["next_task_age"] = round(max(0.0, now - min(queued_at)), 3)
    return details


def server_time(queue: TaskQueue) -> float:
    """The Redis server's clock (seconds)."""
    return queue.run_pipeline(control.server_time())


SUMMARY_FIELDS = ("task_id", "user_id", "state", "attempts", "started_at", "finished_at")
"""What a list of runs reads of each task: enough for the run's state and times."""


def runs_page(queue: TaskQueue, dag_id: str | None, page: Page) -> dict[str, Any]:
    """One page of runs (of a DAG, or of all), newest first; each run's tasks hold only
    :data:`SUMMARY_FIELDS` (a list shows the runs, not their tasks)."""
    calls = queue.calls
    total = queue.run_pipeline(calls.run_count(dag_id))
    ids = queue.run_pipeline(calls.run_ids(dag_id, page.size, page.offset)) if total else []
    runs = [r for r in (queue.run_pipeline(calls.run_records(ids)) if ids else []) if r]
    task_ids = [task_id for run in runs for task_id in run.task_ids.values()]
    found: list[TaskRecord | None] = queue.run_pipeline(
        calls.task_records(task_ids, SUMMARY_FIELDS)
    )
    records = iter(found)
    for run in runs:
        run.tasks = {name: next(records) for name in run.task_ids}
    return {**page.info(total), "dag_id": dag_id, "runs": runs}


def table_order(tasks: Mapping[str, TaskRecord | None]) -> list[str]:
    """The run's task names as its table lists them: each mapped task's instances
    (``process[0]``, ``process[1]``, ...) right after it, by map index."""
    instances: dict[str, list[tuple[int, str]]] = {}
    names = []
    for name, task in tasks.items():
        parent = name.rpartition("[")[0]
        if task is not None and task.map_index is not None and parent in tasks:
            instances.setdefault(parent, []).append((task.map_index, name))
        else:
            names.append(name)
    ordered = []
    for name in names:
        ordered.append(name)
        ordered.extend(n for _, n in sorted(instances.pop(name, [])))
    return ordered + [n for group in instances.values() for _, n in sorted(group)]


def run_with_lineage(queue: TaskQueue, run_id: str) -> tuple[RunInfo, list[dict[str, Any]]]:
    """A run with its tasks, and its XCom lineage; RunNotFoundError for an unknown id."""
    info = queue.get_run(run_id)
    lineage = queue.run_pipeline(queue.calls.lineage(run_id))
    return info, lineage


def run_doc(queue: TaskQueue, run_id: str) -> dict[str, Any]:
    """``fairque run show --json`` of one run."""
    return run_document(*run_with_lineage(queue, run_id))


def task_doc(queue: TaskQueue, task_id: str) -> dict[str, Any]:
    """One task's record (KeyError-like TaskNotFoundError for an unknown id)."""
    return task_document(queue.get_task(task_id))


def task_logs(queue: TaskQueue, task_id: str, attempt: int | None) -> dict[str, Any]:
    """What one attempt of a task printed (the latest when ``attempt`` is None)."""
    record = queue.get_task(task_id)
    number = log_attempt(record, attempt)
    text = "" if number is None else queue.run_pipeline(queue.calls.task_log(task_id, number))
    state = None if record.state is None else record.state.value
    return {"task_id": task_id, "attempt": number, "state": state, "text": text}
