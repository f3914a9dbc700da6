"""The tick-lag summary (pure): windows, percentiles, the latest DAGs, bad entries."""

from __future__ import annotations

from fairque.monitoring.alerts import AlertThresholds, evaluate
from fairque.queue.firing import lag_summary

NOW = 1_000_000.0


def _lags(*entries: tuple[float, str, float]) -> list[str]:
    return [f"{at:.3f} {dag} {lag:.6f}" for at, dag, lag in entries]


def test_only_the_window_counts_and_percentiles_are_nearest_rank() -> None:
    lags = _lags(*((NOW - 10, "a", float(i)) for i in range(1, 101)), (NOW - 400, "old", 99.0))
    summary = lag_summary(lags, [f"{NOW - 5:.3f} s1:x 2.5 100"], NOW, 300)
    assert summary["ticks"] == {"count": 100, "p50": 50.0, "p99": 99.0, "max": 100.0}
    assert summary["passes"] == {"count": 1, "p50": 2.5, "p99": 2.5, "max": 2.5}
    assert list(summary["dags"]) == ["a"]  # "old" is outside the window


def test_the_latest_dags_are_listed_and_bad_entries_skipped() -> None:
    lags = _lags(*((NOW - 1, f"d{i:02d}", float(i)) for i in range(30)))
    summary = lag_summary([*lags, "garbage", "", "x y"], [], NOW, 60, dags=3)
    assert list(summary["dags"]) == ["d27", "d28", "d29"]
    assert summary["ticks"]["count"] == 30
    empty = lag_summary([], [], NOW, 60)
    assert empty["ticks"] == {"count": 0, "p50": None, "p99": None, "max": None}


def test_the_tick_lag_alert_fires_above_its_threshold_only() -> None:
    stats = {
        "users": {},
        "scheduler_lag": lag_summary(_lags((NOW - 1, "slow", 45.0)), [], NOW, 300),
    }
    (alert,) = evaluate(stats, AlertThresholds(max_tick_lag_seconds=30), lock_held=True)
    assert alert.name == "tick_lag" and alert.value == 45.0 and "slow" in alert.message
    assert evaluate(stats, AlertThresholds(max_tick_lag_seconds=45), lock_held=True) == []
    assert evaluate(stats, AlertThresholds(max_tick_lag_seconds=None), lock_held=True) == []
