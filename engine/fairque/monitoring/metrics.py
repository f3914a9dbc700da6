"""Prometheus metrics of a worker (optional extra: ``pip install 'fairque[metrics]'``).

:class:`WorkerMetrics` is a worker observer (``worker.core.observer = metrics``) that
counts outcomes and lease reclaims and records task durations and per-user waits; with a
queue it also exports queue depths, read from ``get_stats()`` on every scrape. Metrics
live in the instance's own registry, served by :meth:`WorkerMetrics.serve`::

    fairque_tasks_total{outcome}            finished, failed, canceled, retried, poked
                                            (a sensor's "not yet"), lease_lost
    fairque_task_duration_seconds           histogram of run durations
    fairque_lease_reclaims_total{result}    requeued, failed
    fairque_task_wait_seconds{user}         histogram, enqueue (or due time) to start
    fairque_queue_depth{user,state}         queued, started, deferred, scheduled
    fairque_queue_oldest_age_seconds        age of the oldest queued task
    fairque_queue_stats_up                  1 when the last scrape could read the stats

User labels are bounded: the first ``max_user_labels`` distinct users seen keep their
id, the rest are counted as ``other``. Every worker exports the same queue depths, so
aggregate them with ``max``, not ``sum``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

try:
    from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
    from prometheus_client.core import GaugeMetricFamily, Metric
except ImportError as e:  # the message `fairque worker --metrics-port` shows
    raise ImportError(
        "Prometheus metrics need the prometheus-client package: pip install 'fairque[metrics]'"
    ) from e

from fairque.core.errors import FairQueueError, LeaseLostError
from fairque.core.models import TaskRecord, TaskState
from fairque.queue.results import FinishOutcome, Settled
from fairque.worker.runtime import Outcome, WorkerObserver

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from fairque.queue.sync_queue import TaskQueue

logger = logging.getLogger(__name__)

OTHER_USERS = "other"
INF = float("inf")
DURATION_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
    INF,
)
WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, INF)
OUTCOMES = ("finished", "failed", "canceled", "retried", "poked", "lease_lost")
DEPTH_STATES = (TaskState.QUEUED, TaskState.STARTED, TaskState.DEFERRED, TaskState.SCHEDULED)


class UserLabels:
    """Label values for user ids: the first ``limit`` distinct users keep their id,
    later ones become ``other`` (bounded cardinality). Thread-safe."""

    def __init__(self, limit: int = 100) -> None:
        self.limit = limit
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, user_id: str) -> str:
        with self._lock:
            if user_id in self._known:
                return user_id
            if len(self._known) < self.limit:
                self._known.add(user_id)
                return user_id
        return OTHER_USERS


def outcome_label(result: Settled) -> str:
    """The ``outcome`` label of a settled run."""
    if isinstance(result, LeaseLostError):
        return "lease_lost"
    if result.state is TaskState.SCHEDULED:
        return "poked" if isinstance(result, FinishOutcome) else "retried"  # sensor: not yet
    return str(result.state)


def wait_seconds(task: TaskRecord) -> float | None:
    """Seconds from enqueue (or the due time of a delayed task) to the start of its first
    run; None for retries, recovered tasks and DAG dependents, whose records do not say
    when they became ready."""
    if task.attempts != 1 or task.recoveries or task.depends_on:
        return None
    if task.enqueued_at is None or task.started_at is None:
        return None
    ready = max(task.enqueued_at, task.execute_after or 0.0)
    return max(0.0, task.started_at - ready)


class QueueDepthCollector:
    """Gauges read from ``queue.get_stats()`` at each scrape."""

    def __init__(self, queue: TaskQueue, users: UserLabels) -> None:
        self.queue = queue
        self.users = users

    def describe(self) -> Iterable[Metric]:
        """The families this collector yields (so registering it reads nothing)."""
        return self._families()

    def collect(self) -> Iterable[Metric]:
        """Read the statistics and yield the gauges."""
        depth, oldest, up, lag, passes, steps = self._families()
        try:
            stats = self.queue.get_stats()
        except FairQueueError as e:
            logger.warning("queue statistics unavailable for metrics: %s", e)
            up.add_metric([], 0)
            return [up]
        summary: Mapping[str, Any] = stats["scheduler_lag"]
        for family, figures in ((lag, summary["ticks"]), (passes, summary["passes"])):
            for name in ("p50", "p99", "max"):
                if figures.get(name) is not None:
                    family.add_metric([name], float(figures[name]))
        totals: dict[tuple[str, str], int] = {}
        for user, per_user in sorted(stats["users"].items()):
            counts: Mapping[str, Any] = per_user
            label = self.users(user)
            for state in DEPTH_STATES:
                key = (label, str(state))
                totals[key] = totals.get(key, 0) + int(counts.get(str(state), 0))
        for (label, state_name), n in totals.items():
            depth.add_metric([label, state_name], n)
        oldest.add_metric([], stats.get("oldest_queued_age") or 0.0)
        steps.add_metric([], stats.get("pending_steps", 0))
        up.add_metric([], 1)
        return [depth, oldest, up, lag, passes, steps]

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily(
                "fairque_queue_depth", "Tasks per user and active state.", labels=["user", "state"]
            ),
            GaugeMetricFamily("fairque_queue_oldest_age_seconds", "Age of the oldest queued task."),
            GaugeMetricFamily(
                "fairque_queue_stats_up", "1 when the queue statistics could be read."
            ),
            GaugeMetricFamily(
                "fairque_scheduler_tick_lag_seconds",
                "How late DAG runs were created after their tick, over the last 5 minutes.",
                labels=["stat"],
            ),
            GaugeMetricFamily(
                "fairque_scheduler_pass_seconds",
                "How long the schedulers' firing passes took, over the last 5 minutes.",
                labels=["stat"],
            ),
            GaugeMetricFamily(
                "fairque_pending_steps",
                "Bounded work left over (releases, openings of large batches) for workers.",
            ),
        )


class TenantCollector:
    """Per-tenant policy gauges read from ``queue.list_tenants()`` at each scrape:
    running vs cap, rate tokens, weight, share of the last minute's service vs fair
    share (tenants past the label limit are left out), and Jain's index."""

    GAUGES = (
        ("running", "Started tasks of the tenant."),
        ("max_running", "The tenant's cap on started tasks (absent: unlimited)."),
        ("tokens", "Rate tokens the tenant has now (absent: no rate limit)."),
        ("weight", "The tenant's weight."),
        ("share", "The tenant's share of the last minute's service."),
        ("fair_share", "The tenant's weight over the weights of the competing tenants."),
    )

    def __init__(self, queue: TaskQueue, users: UserLabels) -> None:
        self.queue = queue
        self.users = users

    def describe(self) -> Iterable[Metric]:
        """The families this collector yields (so registering it reads nothing)."""
        return list(self._families().values())

    def collect(self) -> Iterable[Metric]:
        """Read the tenants and yield the gauges."""
        families = self._families()
        try:
            listing = self.queue.list_tenants()
        except FairQueueError as e:
            logger.warning("tenant figures unavailable for metrics: %s", e)
            return []
        for tenant in listing["tenants"]:
            label = self.users(tenant["user_id"])
            if label != tenant["user_id"]:
                continue
            for name, _ in self.GAUGES:
                if tenant[name] is not None:
                    families[name].add_metric([label], float(tenant[name]))
        if listing["jain_index"] is not None:
            families["jain"].add_metric([], listing["jain_index"])
        return list(families.values())

    def _families(self) -> dict[str, GaugeMetricFamily]:
        families = {
            name: GaugeMetricFamily(f"fairque_tenant_{name}", text, labels=["user"])
            for name, text in self.GAUGES
        }
        families["jain"] = GaugeMetricFamily(
            "fairque_tenants_jain_index",
            "Jain's fairness index over the weight-normalised shares (1 = fair).",
        )
        return families


@dataclass
class MetricsServer:
    """A running ``/metrics`` HTTP endpoint."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The port it listens on (useful after asking for port 0)."""
        return int(self.server.server_port)

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class WorkerMetrics(WorkerObserver):
    """Prometheus metrics of one worker process, in a registry of its own.

    ``queue`` (a blocking TaskQueue, also for an AsyncWorker) enables the queue-depth
    gauges; without it only the worker's own counters and histograms are exported.
    """

    def __init__(
        self,
        queue: TaskQueue | None = None,
        *,
        registry: CollectorRegistry | None = None,
        max_user_labels: int = 100,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.users = UserLabels(max_user_labels)
        r = self.registry
        self.outcomes = Counter(
            "fairque_tasks", "Runs recorded, by outcome.", ["outcome"], registry=r
        )
        self.durations = Histogram(
            "fairque_task_duration_seconds",
            "Run durations.",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.reclaims = Counter(
            "fairque_lease_reclaims",
            "Tasks taken back after their lease expired, by result.",
            ["result"],
            registry=r,
        )
        self.waits = Histogram(
            "fairque_task_wait_seconds",
            "Wait from enqueue to start, per user.",
            ["user"],
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        for name in OUTCOMES:
            self.outcomes.labels(outcome=name)
        for name in ("requeued", "failed"):
            self.reclaims.labels(result=name)
        if queue is not None:
            r.register(QueueDepthCollector(queue, self.users))
            r.register(TenantCollector(queue, self.users))

    # --- WorkerObserver ----------------------------------------------------------------

    def claimed(self, task: TaskRecord) -> None:
        """Record the task's wait."""
        wait = wait_seconds(task)
        if wait is not None:
            self.waits.labels(user=self.users(task.user_id)).observe(wait)

    def settled(self, outcome: Outcome, result: Settled) -> None:
        """Count the outcome and record the run's duration."""
        self.outcomes.labels(outcome=outcome_label(result)).inc()
        self.durations.observe(outcome.duration)

    def reclaimed(self, requeued: int, failed: int) -> None:
        """Count the tasks taken back."""
        self.reclaims.labels(result="requeued").inc(requeued)
        self.reclaims.labels(result="failed").inc(failed)

    # --- serving -----------------------------------------------------------------------

    def serve(self, port: int, addr: str = "0.0.0.0") -> MetricsServer:
        """Serve ``/metrics`` on ``addr:port`` (port 0: any free port) from a thread."""
        server, thread = start_http_server(port, addr, registry=self.registry)
        return MetricsServer(server, thread)
