"""Alert rules on a system view, without Redis: each alert fires above its threshold and
not at it; checks that are off never fire."""

from __future__ import annotations

from typing import Any

import pytest

from fairque.monitoring.alerts import Alert, AlertThresholds, evaluate


def view(
    queued: dict[str, int] | None = None,
    *,
    oldest: float | None = None,
    finished: int = 0,
    failed: int = 0,
    workers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A minimal system view shaped like ``fairque.monitoring.stats.collect``."""
    users = {u: {"queued": n} for u, n in (queued or {}).items()}
    return {
        "users": users,
        "oldest_queued_age": oldest,
        "ended_last_minute": {"finished": finished, "failed": failed},
        "workers": workers if workers is not None else [worker("*")],
    }


def worker(*users: str, steals: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"id": "w", "assigned_users": list(users), "steal_targets": list(steals)}


NOTHING = AlertThresholds(require_served_users=False)


def names(alerts: list[Alert]) -> list[str]:
    return [a.name for a in alerts]


def test_a_quiet_system_fires_nothing_even_with_every_check_on() -> None:
    thresholds = AlertThresholds(
        max_queue_depth_per_user=10,
        max_oldest_age_seconds=60,
        max_failure_rate=0.5,
        require_scheduler_lock=True,
    )
    assert evaluate(view({"alice": 3}, oldest=1.0, finished=20), thresholds, lock_held=True) == []


def test_queue_depth_fires_per_user_above_its_threshold_only() -> None:
    thresholds = AlertThresholds(max_queue_depth_per_user=5, require_served_users=False)
    stats = view({"alice": 6, "bob": 5, "carol": 0})
    (alert,) = evaluate(stats, thresholds, lock_held=True)
    assert alert == Alert(
        "queue_depth", "user alice has 6 queued tasks (threshold 5)", "alice", 6, 5
    )
    assert evaluate(view({"alice": 5}), thresholds, lock_held=True) == []


def test_oldest_age_fires_above_its_threshold_only() -> None:
    thresholds = AlertThresholds(max_oldest_age_seconds=30.0)
    (alert,) = evaluate(view({"a": 1}, oldest=30.5), thresholds, lock_held=True)
    assert (alert.name, alert.subject, alert.value, alert.threshold) == (
        "oldest_age",
        "system",
        30.5,
        30.0,
    )
    assert evaluate(view({"a": 1}, oldest=30.0), thresholds, lock_held=True) == []
    assert evaluate(view(oldest=None), thresholds, lock_held=True) == []


@pytest.mark.parametrize(
    ("finished", "failed", "fires"),
    [
        (5, 5, False),  # 50 % = the threshold
        (4, 6, True),  # 60 % over 10 ended tasks
        (0, 9, False),  # 100 %, but only 9 ended: too few to judge
        (0, 0, False),
    ],
)
def test_failure_rate_fires_above_its_threshold_once_enough_tasks_ended(
    finished: int, failed: int, fires: bool
) -> None:
    thresholds = AlertThresholds(max_failure_rate=0.5, require_served_users=False)
    alerts = evaluate(view(finished=finished, failed=failed), thresholds, lock_held=True)
    assert names(alerts) == (["failure_rate"] if fires else [])
    if fires:
        assert alerts[0].value == pytest.approx(0.6) and alerts[0].threshold == 0.5
        assert "6 of the 10 tasks" in alerts[0].message


def test_min_ended_for_rate_is_configurable() -> None:
    thresholds = AlertThresholds(max_failure_rate=0.1, min_ended_for_rate=2)
    assert names(evaluate(view(failed=2), thresholds, lock_held=True)) == ["failure_rate"]
    assert evaluate(view(failed=1), thresholds, lock_held=True) == []


def test_unserved_users_fire_unless_a_worker_serves_them() -> None:
    workers = [worker("alice"), worker("x", steals=("bob",))]
    stats = view({"alice": 1, "bob": 2, "carol": 3, "dave": 0}, workers=workers)
    (alert,) = evaluate(stats, AlertThresholds(), lock_held=True)
    assert (alert.name, alert.subject, alert.value) == ("unserved", "carol", 3)
    assert alert.message == "carol has 3 queued task(s) and no live worker serves it"
    no_workers = view({"alice": 1}, workers=[])
    assert names(evaluate(no_workers, AlertThresholds(), lock_held=True)) == ["unserved"]
    assert evaluate(no_workers, NOTHING, lock_held=True) == []
    assert (
        evaluate(view({"alice": 1}, workers=[worker("*")]), AlertThresholds(), lock_held=True) == []
    )


def test_the_scheduler_lock_is_checked_only_when_required() -> None:
    required = AlertThresholds(require_scheduler_lock=True)
    (alert,) = evaluate(view(), required, lock_held=False)
    assert (alert.name, alert.subject) == ("scheduler_lock", "system")
    assert evaluate(view(), required, lock_held=True) == []
    assert evaluate(view(), AlertThresholds(), lock_held=False) == []


def test_alerts_come_in_a_stable_order_and_as_json() -> None:
    thresholds = AlertThresholds(
        max_queue_depth_per_user=0,
        max_oldest_age_seconds=1,
        max_failure_rate=0.0,
        min_ended_for_rate=1,
        require_scheduler_lock=True,
    )
    stats = view({"b": 1, "a": 1}, oldest=2.0, failed=1, workers=[])
    alerts = evaluate(stats, thresholds, lock_held=False)
    assert [(a.name, a.subject) for a in alerts] == [
        ("queue_depth", "a"),
        ("queue_depth", "b"),
        ("oldest_age", "system"),
        ("failure_rate", "system"),
        ("unserved", "a"),
        ("unserved", "b"),
        ("scheduler_lock", "system"),
    ]
    assert alerts[0].to_dict() == {
        "name": "queue_depth",
        "message": "user a has 1 queued tasks (threshold 0)",
        "subject": "a",
        "value": 1,
        "threshold": 0,
    }
