"""Alerts on a running system: thresholds, a pure evaluation of the system view
(:func:`fairque.monitoring.stats.collect`), and a monitor that logs each alert and hands
it to callbacks. ``fairque health`` evaluates the same rules."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from fairque.core.errors import RedisUnavailableError
from fairque.monitoring.health import scheduler_lock_owner
from fairque.monitoring.stats import collect, serves
from fairque.queue.sync_queue import TaskQueue

logger = logging.getLogger(__name__)

DEFAULT_MAX_TICK_LAG = 30.0
"""The default threshold of the ``tick_lag`` alert (``fairque health --max-tick-lag``)."""

SYSTEM = "system"
"""The subject of alerts about the whole system rather than one user or worker."""


@dataclass(frozen=True)
class AlertThresholds:
    """When alerts fire; None turns a check off. A value fires when it exceeds its
    threshold (reaching it does not)."""

    max_queue_depth_per_user: int | None = None
    """Queued tasks of one user."""
    max_oldest_age_seconds: float | None = None
    """Age of the oldest queued task."""
    max_failure_rate: float | None = None
    """failed / (finished + failed) over the last minute, 0..1."""
    min_ended_for_rate: int = 10
    """The failure rate is judged only once this many tasks ended in the last minute."""
    require_served_users: bool = True
    """Alert for each user with queued tasks that no live worker serves."""
    require_scheduler_lock: bool = False
    """Alert when no scheduler holds the lock."""
    max_tick_lag_seconds: float | None = DEFAULT_MAX_TICK_LAG
    """How late (p99 over the last 5 minutes, seconds after the tick) the schedulers may
    create the runs of DAG ticks."""


@dataclass(frozen=True)
class Alert:
    """One firing alert: what (``name``), about whom (``subject``: a user id, a worker
    id or ``"system"``), the measured ``value`` and the ``threshold`` it crossed."""

    name: str
    message: str
    subject: str
    value: float | None = None
    threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form."""
        return asdict(self)


AlertCallback = Callable[[Alert], object]


def evaluate(
    stats: Mapping[str, Any], thresholds: AlertThresholds, *, lock_held: bool
) -> list[Alert]:
    """The alerts ``stats`` (a :func:`~fairque.monitoring.stats.collect` view) fires;
    ``lock_held`` says whether a scheduler holds the lock. A schedule or DAG the
    scheduler failed to fire in its latest pass (``stats["schedule_errors"]``) always
    fires ``schedule_failing``. No I/O."""
    return [
        *_depth(stats, thresholds.max_queue_depth_per_user),
        *_oldest(stats, thresholds.max_oldest_age_seconds),
        *_failure_rate(stats, thresholds.max_failure_rate, thresholds.min_ended_for_rate),
        *(_unserved(stats) if thresholds.require_served_users else []),
        *(_no_scheduler() if thresholds.require_scheduler_lock and not lock_held else []),
        *_failing_schedules(stats),
        *_tick_lag(stats, thresholds.max_tick_lag_seconds),
    ]


def _queued(stats: Mapping[str, Any]) -> dict[str, int]:
    users: Mapping[str, Mapping[str, Any]] = stats["users"]
    return {u: int(c.get("queued", 0)) for u, c in sorted(users.items()) if c.get("queued", 0)}


def _depth(stats: Mapping[str, Any], limit: int | None) -> list[Alert]:
    if limit is None:
        return []
    return [
        Alert(
            "queue_depth",
            f"user {user} has {n} queued tasks (threshold {limit})",
            user,
            n,
            limit,
        )
        for user, n in _queued(stats).items()
        if n > limit
    ]


def _oldest(stats: Mapping[str, Any], limit: float | None) -> list[Alert]:
    age = stats.get("oldest_queued_age")
    if limit is None or age is None or age <= limit:
        return []
    message = f"the oldest queued task has waited {age:.1f} s (threshold {limit:g} s)"
    return [Alert("oldest_age", message, SYSTEM, round(age, 3), limit)]


def _failure_rate(stats: Mapping[str, Any], limit: float | None, min_ended: int) -> list[Alert]:
    ended = stats.get("ended_last_minute") or {}
    failed = int(ended.get("failed", 0))
    total = failed + int(ended.get("finished", 0))
    if limit is None or total == 0 or total < min_ended:
        return []
    rate = failed / total
    if rate <= limit:
        return []
    message = (
        f"{failed} of the {total} tasks ended in the last minute failed "
        f"({rate:.0%}, threshold {limit:.0%})"
    )
    return [Alert("failure_rate", message, SYSTEM, round(rate, 4), limit)]


def _unserved(stats: Mapping[str, Any]) -> list[Alert]:
    workers: list[Mapping[str, Any]] = stats.get("workers", [])
    return [
        Alert(
            "unserved",
            f"{user} has {n} queued task(s) and no live worker serves it",
            user,
            n,
        )
        for user, n in _queued(stats).items()
        if not any(serves(w, user) for w in workers)
    ]


def _no_scheduler() -> list[Alert]:
    return [Alert("scheduler_lock", "no scheduler holds the scheduler lock", SYSTEM)]


def _failing_schedules(stats: Mapping[str, Any]) -> list[Alert]:
    errors: Mapping[str, Mapping[str, Any]] = stats.get("schedule_errors") or {}
    alerts = []
    for subject, error in sorted(errors.items()):
        kind, _, name = subject.partition(":")
        what = "DAG" if kind == "dag" else "schedule"
        message = f"{what} {name} failing: {error.get('reason', '?')}"
        alerts.append(Alert("schedule_failing", message, subject, error.get("failures")))
    return alerts


def _tick_lag(stats: Mapping[str, Any], limit: float | None) -> list[Alert]:
    lag: Mapping[str, Any] = stats.get("scheduler_lag") or {}
    p99 = (lag.get("ticks") or {}).get("p99")
    if limit is None or p99 is None or p99 <= limit:
        return []
    dags: Mapping[str, Mapping[str, Any]] = lag.get("dags") or {}
    worst = sorted(dags, key=lambda d: -float(dags[d].get("max") or 0))[:3]
    message = (
        f"DAG runs are created {p99:.1f} s after their tick (p99 over the last "
        f"{lag.get('window_seconds', 0):g} s, threshold {limit:g} s); latest: "
        f"{', '.join(worst) or '?'}; run more schedulers"
    )
    return [Alert("tick_lag", message, SYSTEM, round(float(p99), 3), limit)]


class AlertMonitor:
    """Evaluates ``thresholds`` against the live system: :meth:`check` once, or
    :meth:`run` every ``interval`` seconds on a thread of your own.

    Each firing alert is logged on ``fairque.alerts`` (WARNING) and passed to every
    callback, on every check while it fires. A callback that raises is logged and does
    not keep the others from being called. An unreachable Redis is itself an alert
    (``redis_unreachable``).
    """

    def __init__(
        self,
        queue: TaskQueue,
        thresholds: AlertThresholds | None = None,
        callbacks: Iterable[AlertCallback] = (),
    ) -> None:
        self.queue = queue
        self.thresholds = thresholds or AlertThresholds()
        self.callbacks = list(callbacks)

    def evaluate(self) -> tuple[dict[str, Any], list[Alert]]:
        """The system view and the alerts it fires, without logging or callbacks.

        Raises RedisUnavailableError when the server cannot be reached.
        """
        stats = collect(self.queue)
        lock_held = True
        if self.thresholds.require_scheduler_lock:
            lock_held = scheduler_lock_owner(self.queue) is not None
        return stats, evaluate(stats, self.thresholds, lock_held=lock_held)

    def check(self) -> list[Alert]:
        """Evaluate once; log each alert and call the callbacks. Returns the alerts."""
        try:
            alerts = self.evaluate()[1]
        except RedisUnavailableError as e:
            alerts = [Alert("redis_unreachable", str(e), SYSTEM)]
        for alert in alerts:
            logger.warning("alert %s (%s): %s", alert.name, alert.subject, alert.message)
            for callback in self.callbacks:
                try:
                    callback(alert)
                except Exception:
                    logger.exception("alert callback %r failed on %s", callback, alert.name)
        return alerts

    def run(self, interval: float, stop: threading.Event) -> None:
        """Call :meth:`check` every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            self.check()
            stop.wait(interval)
