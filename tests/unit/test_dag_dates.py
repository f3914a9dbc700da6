"""start_date/end_date of DAGs, the ticks a backfill covers and their data intervals
(pure: no Redis)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from fairque.core.errors import DagError
from fairque.dag import DAG
from fairque.dag.validate import validate_paths
from fairque.scheduler.backfill import data_interval, intervals, ticks_between
from tests.unit import sample_tasks as st


def _dag(**options: object) -> DAG:
    options.setdefault("schedule", "0 0 * * *")
    return DAG(dag_id="d", pipeline=st.extract_data(), **options)  # type: ignore[arg-type]


def test_dates_are_read_in_the_dags_time_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    dag = _dag(timezone="Europe/Paris", start_date="2024-01-01", end_date=date(2024, 1, 31))
    assert dag.start_date == datetime(2024, 1, 1, tzinfo=paris)
    assert dag.end_date == datetime(2024, 1, 31, 23, 59, 59, 999_999, tzinfo=paris)
    moment = datetime(2024, 1, 1, 6, tzinfo=UTC)
    assert _dag(start_date=moment).start_date == moment
    assert _dag(start_date="2024-01-01T06:00:00+00:00").start_date == moment
    assert _dag().to_dict()["start_date"] is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"start_date": "soon"}, 'start_date "soon" is not a date'),
        ({"start_date": 5}, "must be a date"),
        ({"start_date": "2024-01-02", "end_date": "2024-01-01"}, "end_date is before start_date"),
    ],
)
def test_bad_dates_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(DagError, match=message):
        _dag(**options)


def test_validate_reports_a_bad_start_date(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(
        "dag_id: d\nschedule: '0 0 * * *'\nstart_date: someday\n"
        "tasks:\n  a:\n    callable: tests.unit.sample_tasks:extract_data\n"
    )
    (problem,) = validate_paths([path], ["tests"])[str(path)]
    assert "start_date" in str(problem) and "is not a date" in str(problem)


def test_ticks_are_inclusive_and_clamped_to_the_dags_dates() -> None:
    day = [datetime(2024, 1, d, tzinfo=UTC) for d in range(1, 6)]
    assert ticks_between(_dag(), day[0], day[2]) == day[:3]
    clamped = _dag(start_date="2024-01-02", end_date="2024-01-03")
    assert ticks_between(clamped, day[0], day[4]) == day[1:3]
    with pytest.raises(DagError, match="no schedule"):
        ticks_between(_dag(schedule=None), day[0], day[2])
    with pytest.raises(DagError, match="before its start"):
        ticks_between(_dag(), day[2], day[0])


def test_data_interval_runs_from_the_previous_tick() -> None:
    tick = datetime(2024, 3, 1, tzinfo=UTC)
    assert data_interval(_dag(), tick) == (datetime(2024, 2, 29, tzinfo=UTC), tick)
    monthly = _dag(schedule="0 0 1 * *")
    assert data_interval(monthly, tick) == (datetime(2024, 2, 1, tzinfo=UTC), tick)


def test_consecutive_ticks_chain_their_intervals() -> None:
    ticks = [datetime(2024, 1, d, tzinfo=UTC) for d in (1, 2, 3)]
    assert intervals(_dag(), ticks) == [
        (datetime(2023, 12, 31, tzinfo=UTC), ticks[0]),
        (ticks[0], ticks[1]),
        (ticks[1], ticks[2]),
    ]
    assert intervals(_dag(), []) == []
