"""``fairque dag test`` renders templates and honours timeouts and retries like workers."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fairque.cli.app import app
from tests.timing import budget

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FAIRQUE_ALLOWED_MODULES", "tests")
    monkeypatch.chdir(ROOT)
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "ops.yaml").write_text(
        "dag_id: ops\n"
        "params: {region: {default: eu}}\n"
        "tasks:\n"
        "  report:\n"
        "    callable: 'tests.unit.sample_tasks:add'\n"
        "    kwargs: {x: 'report {{ ds }}', y: ' for {{ params.region }} ({{ dag_id }})'}\n"
        "  slow:\n"
        "    callable: 'tests.unit.test_inprocess_like_workers:sleepy'\n"
        "    timeout_seconds: 0.3\n"
        "    max_retries: 1\n"
        "    retry_delay_seconds: 0.1\n"
        "    depends_on: [report]\n"
    )
    return dags


def test_dag_test_renders_templates_and_times_out_like_a_worker(folder: Path) -> None:
    started = time.monotonic()
    result = CliRunner().invoke(
        app, ["dag", "test", "ops", "--dags-folder", str(folder), "--conf", '{"region": "us"}']
    )
    assert time.monotonic() - started < budget(3)
    out = " ".join(result.output.split())
    assert result.exit_code == 1, out
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert f'report: finished "report {today} for us (ops)"' in out
    assert (
        "slow: failed (attempt 2) TaskTimeoutError: "
        "task 'slow' ran longer than its timeout of 0.3 s" in out
    )
    assert "attempt 1 failed: TaskTimeoutError" in out


def test_dag_test_reports_a_template_failing_at_render(folder: Path) -> None:
    (folder / "ops.yaml").write_text(
        "dag_id: ops\n"
        "params: {region: {default: eu}}\n"
        "tasks:\n"
        "  report: {callable: 'tests.unit.sample_tasks:add', args: ['{{ params.region.x }}!', 1]}\n"
    )
    result = CliRunner().invoke(app, ["dag", "test", "ops", "--dags-folder", str(folder)])
    out = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "task 'report' args[0]: UndefinedError" in out


def test_dag_test_runs_return_values_and_mapped_instances(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIRQUE_ALLOWED_MODULES", "examples")
    monkeypatch.chdir(ROOT)
    runner = CliRunner()
    chain = runner.invoke(app, ["dag", "test", "taskflow_chain", "--dags-folder", "dags"])
    assert chain.exit_code == 0, chain.output
    assert 'load: finished {"source": "orders", "count": 5, "total": 450}' in chain.output
    fan = runner.invoke(app, ["dag", "test", "mapped_fanout", "--dags-folder", "dags"])
    assert fan.exit_code == 0, fan.output
    lines = fan.output.splitlines()
    assert lines[1].startswith("process[0]: finished") and lines[50].startswith("process[49]:")
    assert '"files": 50, "lines": 2450' in fan.output
    empty = runner.invoke(
        app, ["dag", "test", "mapped_fanout", "--dags-folder", "dags", "--conf", '{"count": 0}']
    )
    assert "process: skipped mapped over an empty list (skipped)" in empty.output
