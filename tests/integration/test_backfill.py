"""`fairque dag backfill` and the Python backfill: one run per schedule tick, ids shared
with the scheduler so no tick runs twice, logical dates and data intervals in the task
context, start_date/end_date honoured by the scheduler and by backfills."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from itertools import pairwise
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fairque import FairQueueConfig, TaskQueue, Worker
from fairque.cli.app import app
from fairque.core.errors import DagError
from fairque.dag.loader import load_dags
from fairque.dag.model import DAG
from fairque.scheduler.backfill import backfill
from fairque.scheduler.scheduler import TaskScheduler
from tests.timing import budget

from .conftest import ConfigFactory, QueueFactory, background_worker

DAILY = """\
dag_id: {dag_id}
schedule: "{cron}"
{extra}
tasks:
  first:
    callable: "tests.integration.backfill_tasks:record_dates"
  second:
    callable: "tests.integration.backfill_tasks:{second}"
    depends_on: [first]
"""


def _folder(
    tmp_path: Path,
    dag_id: str = "daily",
    cron: str = "0 0 * * *",
    extra: str = "",
    second: str = "record_dates",
) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir(exist_ok=True)
    text = DAILY.format(dag_id=dag_id, cron=cron, extra=extra, second=second)
    (folder / f"{dag_id}.yaml").write_text(text)
    return folder


def _dag(folder: Path, dag_id: str = "daily") -> DAG:
    bag = load_dags(folder)
    assert not bag.problems, bag.problems
    return bag.dags[dag_id]


def _day(day: int, hour: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, tzinfo=UTC)


@pytest.fixture
def worker(redis_url: str, redis_client: object) -> Iterator[Worker]:
    with background_worker(redis_url, "backfill-worker", allowed_modules=["tests"]) as running:
        yield running


@pytest.fixture
def cli(redis_url: str, redis_client: object, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("FAIRQUE_REDIS_URL", redis_url)
    return CliRunner()


def invoke(cli: CliRunner, folder: Path, *args: str) -> tuple[int, str]:
    result = cli.invoke(app, ["dag", *args, "--dags-folder", str(folder)])
    return result.exit_code, result.output


# --- the Python API -------------------------------------------------------------------


def test_three_days_make_three_runs_oldest_first_and_again_none(
    make_queue: QueueFactory, tmp_path: Path
) -> None:
    queue, dag = make_queue(), _dag(_folder(tmp_path))
    ids = [f"daily__2024-01-0{d}T00:00:00Z" for d in (1, 2, 3)]
    dry = backfill(queue, dag, _day(1), _day(3), dry_run=True)
    assert dry.created == ids and queue.list_runs() == []  # nothing written
    done = backfill(queue, dag, _day(1), _day(3))
    assert done.created == ids and done.existing == []
    run = queue.get_run(ids[0])
    assert run.dag_id == "daily" and run.logical_date == "2024-01-01T00:00:00+00:00"
    again = backfill(queue, dag, _day(1), _day(3))
    assert again.created == [] and again.existing == ids
    assert backfill(queue, dag, _day(1), _day(3), dry_run=True).existing == ids
    assert len(queue.list_runs("daily")) == 3


def test_backfill_and_the_scheduler_never_run_a_tick_twice(
    make_config: ConfigFactory, make_queue: QueueFactory, tmp_path: Path
) -> None:
    folder = _folder(tmp_path)
    queue, dag = make_queue(), _dag(folder)
    now = datetime(2024, 1, 2, 23, 59, 30, tzinfo=UTC)
    scheduler = TaskScheduler(make_config(worker_id="sched"), dags_folder=folder, clock=lambda: now)
    try:
        assert scheduler.run_once() == []  # first seen now: nothing before it fires
        backfill(queue, dag, _day(2), _day(2))  # the backfill runs the 2nd first
        now = datetime(2024, 1, 3, 0, 0, 30, tzinfo=UTC)
        assert scheduler.run_once() == ["daily__2024-01-03T00:00:00Z"]
        now = datetime(2024, 1, 4, 0, 0, 30, tzinfo=UTC)
        backfill(queue, dag, _day(4), _day(4))  # ... and the 4th before the scheduler
        assert scheduler.run_once() == []  # the 4th exists: not fired again
        report = backfill(queue, dag, _day(1), _day(4))
    finally:
        scheduler.close()
    assert report.created == ["daily__2024-01-01T00:00:00Z"]
    assert len(report.existing) == 3
    fired = queue.get_run("daily__2024-01-03T00:00:00Z").tasks["first"]
    assert fired is not None and fired.payload["dates"] == {
        "logical_date": "2024-01-03T00:00:00+00:00",
        "data_interval_start": "2024-01-02T00:00:00+00:00",
        "data_interval_end": "2024-01-03T00:00:00+00:00",
    }
    assert len(queue.list_runs("daily")) == 4


def test_a_date_alone_as_end_covers_its_whole_day(
    make_queue: QueueFactory, tmp_path: Path, cli: CliRunner
) -> None:
    folder = _folder(tmp_path, cron="0 6 * * *")
    code, out = invoke(
        cli, folder, "backfill", "daily", "--start", "2024-01-01", "--end", "2024-01-03", "--json"
    )
    assert code == 0, out
    created = json.loads(out)["created"]
    assert created == [f"daily__2024-01-0{d}T06:00:00Z" for d in (1, 2, 3)]


def test_start_and_end_dates_of_the_dag_bound_backfills_and_the_scheduler(
    make_config: ConfigFactory, make_queue: QueueFactory, tmp_path: Path
) -> None:
    extra = "start_date: 2024-01-02\nend_date: 2024-01-03\ncatchup: true"
    folder = _folder(tmp_path, extra=extra)
    queue, dag = make_queue(), _dag(folder)
    assert dag.start_date == _day(2) and dag.end_date is not None
    report = backfill(queue, dag, _day(1), _day(5))
    assert report.created == ["daily__2024-01-02T00:00:00Z", "daily__2024-01-03T00:00:00Z"]
    for run_id in report.created:
        queue.cancel_run(run_id)  # let the scheduler's max_active_runs room be
    now = datetime(2024, 1, 3, 12, tzinfo=UTC)
    scheduler = TaskScheduler(make_config(worker_id="sched"), dags_folder=folder, clock=lambda: now)
    try:
        scheduler.run_once()
        now = datetime(2024, 1, 6, 12, tzinfo=UTC)
        assert scheduler.run_once() == []  # the 4th, 5th and 6th are after end_date
    finally:
        scheduler.close()
    assert len(queue.list_runs("daily")) == 2


# --- running: dates in the task context, --wait, a failing task -----------------------


def test_tasks_see_the_logical_date_and_data_interval(
    cli: CliRunner, worker: Worker, tmp_path: Path, redis_url: str
) -> None:
    folder = _folder(tmp_path)
    args = ["backfill", "daily", "--start", "2024-01-01", "--end", "2024-01-02"]
    code, out = invoke(cli, folder, *args, "--wait", "--timeout", str(budget(30)))
    assert code == 0, out
    assert "created daily__2024-01-01T00:00:00Z" in out and "success" in out
    with TaskQueue(FairQueueConfig.create_default(redis=redis_url)) as queue:
        task = queue.get_run("daily__2024-01-02T00:00:00Z").tasks["second"]
    assert task is not None and task.result == {
        "logical_date": "2024-01-02T00:00:00+00:00",
        "data_interval_start": "2024-01-01T00:00:00+00:00",
        "data_interval_end": "2024-01-02T00:00:00+00:00",
    }
    code, out = invoke(cli, folder, *args)
    assert code == 0 and "nothing to do" in out and "exist already" in out


def test_wait_exits_1_when_a_run_fails_and_the_others_still_run(
    cli: CliRunner, worker: Worker, tmp_path: Path
) -> None:
    folder = _folder(tmp_path, second="fail_on_second_day", extra="default_args: {max_retries: 0}")
    args = ["backfill", "daily", "--start", "2024-01-01", "--end", "2024-01-03", "--wait"]
    code, out = invoke(cli, folder, *args, "--timeout", str(budget(30)), "--json")
    assert code == 1, out
    report = json.loads(out[out.index("{") :])
    assert report["runs"] == {
        "daily__2024-01-01T00:00:00Z": "success",
        "daily__2024-01-02T00:00:00Z": "failed",
        "daily__2024-01-03T00:00:00Z": "success",
    }


def test_a_backfill_beyond_max_active_runs_runs_one_at_a_time(
    cli: CliRunner, worker: Worker, tmp_path: Path, redis_url: str
) -> None:
    folder = _folder(tmp_path, extra="max_active_runs: 1")
    args = ["backfill", "daily", "--start", "2024-01-01", "--end", "2024-01-03", "--wait"]
    code, out = invoke(cli, folder, *args, "--timeout", str(budget(30)), "--json")
    assert code == 0, out
    assert set(json.loads(out[out.index("{") :])["runs"].values()) == {"success"}
    with TaskQueue(FairQueueConfig.create_default(redis=redis_url)) as queue:
        runs = sorted(queue.list_runs("daily"), key=lambda r: r.run_id)
    spans = [(r.started_at or 0, r.ended_at or 0) for r in runs]
    assert all(ended <= started for (_, ended), (started, _) in pairwise(spans))


def test_manual_triggers_have_their_moment_as_logical_date_and_interval(
    make_queue: QueueFactory, tmp_path: Path
) -> None:
    from fairque.dag.runs import trigger

    queue, dag = make_queue(), _dag(_folder(tmp_path))
    handle = trigger(queue, dag)
    payload = queue.get_run(handle.run_id).tasks["first"].payload  # type: ignore[union-attr]
    dates = payload["dates"]
    assert dates["logical_date"] == dates["data_interval_start"] == dates["data_interval_end"]


# --- bad input and failures -------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2024-01-03", "--end", "2024-01-01"], "before its start"),
        (["--start", "yesterday", "--end", "2024-01-01"], 'start "yesterday" is not a date'),
        (["--start", "2024-01-01", "--end", "2024-02-30"], 'end "2024-02-30" is not a date'),
    ],
)
def test_bad_ranges_are_refused_and_write_nothing(
    cli: CliRunner, tmp_path: Path, redis_url: str, args: list[str], message: str
) -> None:
    code, out = invoke(cli, _folder(tmp_path), "backfill", "daily", *args)
    assert code == 1 and message in out, out
    with TaskQueue(FairQueueConfig.create_default(redis=redis_url)) as queue:
        assert queue.list_runs() == []


def test_unscheduled_or_unknown_dags_and_bad_conf_are_refused(
    cli: CliRunner, tmp_path: Path
) -> None:
    folder = _folder(tmp_path)
    (folder / "manual.yaml").write_text(
        "dag_id: manual\ntasks:\n  a:\n"
        "    callable: tests.integration.backfill_tasks:record_dates\n"
    )
    span = ["--start", "2024-01-01", "--end", "2024-01-02"]
    code, out = invoke(cli, folder, "backfill", "manual", *span)
    assert code == 1 and "has no schedule" in out, out
    code, out = invoke(cli, folder, "backfill", "dayly", *span)
    assert code == 1 and "daily" in out, out
    code, out = invoke(cli, folder, "backfill", "daily", *span, "--conf", '{"nope": 1}')
    assert code == 1 and "unknown param" in out, out


def test_dates_and_iso_text_are_accepted_by_the_python_api(
    make_queue: QueueFactory, tmp_path: Path
) -> None:
    queue, dag = make_queue(), _dag(_folder(tmp_path, cron="0 6 * * *"))
    report = backfill(queue, dag, date(2024, 1, 1), "2024-01-03", dry_run=True)
    assert len(report.created) == 3
    with pytest.raises(DagError, match="start"):
        backfill(queue, dag, None, "2024-01-03")  # type: ignore[arg-type]


def test_future_ticks_are_left_to_the_scheduler(make_queue: QueueFactory, tmp_path: Path) -> None:
    queue, dag = make_queue(), _dag(_folder(tmp_path))
    far = datetime(2999, 1, 1, tzinfo=UTC)
    assert backfill(queue, dag, far, far.replace(day=3)).run_ids == []


def test_redis_down_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIRQUE_REDIS_URL", "redis://127.0.0.1:1/0")
    code, out = invoke(
        CliRunner(),
        _folder(tmp_path),
        "backfill",
        "daily",
        "--start",
        "2024-01-01",
        "--end",
        "2024-01-02",
    )
    assert code == 1 and "Traceback" not in out, out


def test_times_with_offsets_and_dry_run_write_nothing(
    make_queue: QueueFactory, tmp_path: Path, cli: CliRunner
) -> None:
    folder = _folder(tmp_path, cron="0 * * * *")
    span = ["--start", "2024-01-01T10:00:00+00:00", "--end", "2024-01-01T12:00:00+00:00"]
    code, out = invoke(cli, folder, "backfill", "daily", *span, "--dry-run")
    assert code == 0 and out.count("would create") == 3, out
    assert "3 run(s) would be created" in out
    assert make_queue().list_runs() == []
