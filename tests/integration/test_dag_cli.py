"""The DAG and run commands end to end: typer's runner against the test server with a
worker in the background, and real subprocesses as a user would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fairque import FairQueueConfig, TaskQueue, Worker
from tests.timing import budget

from .conftest import invoke

ROOT = Path(__file__).resolve().parents[2]
BROKEN = ROOT / "tests" / "unit" / "dag_files" / "broken"


def test_validate_accepts_the_examples_and_lists_every_problem_of_broken_files(
    cli: CliRunner,
) -> None:
    code, out = invoke(cli, "dag", "validate")
    assert code == 0, out
    assert "orders_etl.yaml: ok" in out
    code, out = invoke(
        cli, "dag", "validate", str(BROKEN / "cycle.yaml"), str(BROKEN / "unknown_key.yaml")
    )
    assert code == 1
    assert " -> " in out and "depends_on" in out
    code, out = invoke(cli, "dag", "validate", "--json", str(BROKEN / "bad_cron.yaml"))
    assert code == 1 and json.loads(out)


def test_list_shows_schedules_and_last_runs(cli: CliRunner) -> None:
    code, out = invoke(cli, "dag", "list", "--json")
    assert code == 0, out
    rows = {row["dag_id"]: row for row in json.loads(out)}
    assert rows["orders_etl"]["schedule"] == "0 9 * * *" and rows["orders_etl"]["next_run"]
    assert rows["fan_out_in"]["schedule"] is None and rows["fan_out_in"]["last_run_state"] is None


def test_trigger_wait_show_and_render_a_run(cli: CliRunner, worker: Worker, tmp_path: Path) -> None:
    code, out = invoke(
        cli, "dag", "trigger", "orders_etl", "--wait", "--timeout", str(budget(30)), "--json"
    )
    assert code == 0, out
    run = json.loads(out[out.index("{") :])
    assert run["state"] == "success" and run["tenant"] == "user:1"
    code, out = invoke(cli, "run", "show", run["run_id"], "--json")
    shown = json.loads(out)
    assert shown["tasks"]["load"]["state"] == "finished"
    assert [a["outcome"] for a in shown["tasks"]["load"]["attempts"]] == ["finished"]
    code, out = invoke(cli, "run", "cancel", run["run_id"])
    assert code == 1 and "has ended (success)" in out
    assert json.loads(invoke(cli, "run", "show", run["run_id"], "--json")[1])["state"] == "success"
    pulls = {(e["key"], e["consumer"]) for e in shown["lineage"] if e["kind"] == "pull"}
    assert ("extracted", "transform") in pulls
    dot = tmp_path / "run.dot"
    code, out = invoke(cli, "dag", "render", "orders_etl", "--run", run["run_id"], "-o", str(dot))
    assert code == 0, out
    source = dot.read_text()
    assert "transform" in source and "style=dashed" in source and "extracted" in source


def test_a_failed_run_exits_1_and_cleanup_still_ran(cli: CliRunner, worker: Worker) -> None:
    code, out = invoke(
        cli, "dag", "trigger", "failure_cleanup", "--wait", "--timeout", str(budget(30)), "--json"
    )
    assert code == 1
    run = json.loads(out[out.index("{") :])
    assert run["state"] == "failed"
    assert run["tasks"]["flaky"]["state"] == "failed"
    assert run["tasks"]["cleanup"]["state"] == "finished"
    code, out = invoke(cli, "run", "show", run["run_id"], "--json")
    flaky = json.loads(out)["tasks"]["flaky"]
    (attempt,) = flaky["attempts"]
    assert flaky["attempt_count"] == 1 and attempt["attempt"] == 1
    assert attempt["outcome"] == "failed" and attempt["worker"] == "dag-worker"
    assert attempt["error"]["type"] == "RuntimeError" and attempt["error"]["traceback"]
    code, out = invoke(cli, "run", "show", run["run_id"])
    assert code == 0 and "Attempts" in out and "RuntimeError" in out and "lease_expired" not in out
    code, out = invoke(cli, "run", "cancel", run["run_id"])
    assert code == 1 and "has ended (failed)" in out
    code, out = invoke(cli, "run", "show", run["run_id"], "--json")
    assert json.loads(out)["state"] == "failed"


def test_bad_conf_is_refused_and_no_run_is_created(cli: CliRunner, redis_url: str) -> None:
    for conf in ('{"source": 5}', '{"nope": 1}', "not json", "[1]"):
        code, out = invoke(cli, "dag", "trigger", "orders_etl", "--conf", conf)
        assert code == 1, (conf, out)
    with TaskQueue(FairQueueConfig.create_default(redis=redis_url)) as queue:
        assert queue.list_runs() == []


def test_unknown_dag_is_named_with_the_known_ones(cli: CliRunner) -> None:
    code, out = invoke(cli, "dag", "trigger", "orders_elt")
    assert code == 1 and "orders_etl" in out


def test_dag_test_runs_in_process_and_dry_run_prints_records(cli: CliRunner) -> None:
    code, out = invoke(cli, "dag", "test", "orders_etl", "--conf", '{"source": "api"}')
    assert code == 0, out
    assert '"source": "api"' in out and "load: finished" in out
    code, out = invoke(cli, "dag", "test", "failure_cleanup")
    assert code == 1 and "cleanup: finished" in out
    code, out = invoke(cli, "dag", "test", "orders_etl", "--dry-run")
    records = json.loads(out)
    assert records[0]["name"] == "extract"
    assert all(r["task_id"].startswith("dry-run:") for r in records)


def test_render_without_graphviz_explains_how_to_install_it(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shutil.which", lambda name, *a, **k: None)
    code, out = invoke(cli, "dag", "render", "orders_etl", "-o", str(tmp_path / "g.svg"))
    assert code == 1 and "graphviz" in out.lower()
    code, out = invoke(cli, "dag", "render", "orders_etl", "-o", str(tmp_path / "g.mmd"))
    assert code == 0 and (tmp_path / "g.mmd").read_text().startswith("---")


def test_pause_unpause_and_cancel_a_run(cli: CliRunner, redis_url: str) -> None:
    assert invoke(cli, "dag", "pause", "nightly_report")[0] == 0
    rows = {r["dag_id"]: r for r in json.loads(invoke(cli, "dag", "list", "--json")[1])}
    assert rows["nightly_report"]["paused"] is True
    assert invoke(cli, "dag", "unpause", "nightly_report")[0] == 0
    code, out = invoke(cli, "dag", "trigger", "fan_out_in", "--json")
    run_id = json.loads(out[out.index("{") :])["run_id"]
    code, out = invoke(cli, "run", "cancel", run_id)
    assert code == 0 and "canceled" in out
    listed = json.loads(invoke(cli, "run", "list", "fan_out_in", "--json")[1])
    assert [r["state"] for r in listed] == ["canceled"]


@pytest.mark.slow
def test_trigger_wait_as_real_processes(
    redis_url: str, redis_client: object, tmp_path: Path
) -> None:
    env = {**os.environ, "FAIRQUE_REDIS_URL": redis_url, "FAIRQUE_STATE_DIR": str(tmp_path)}
    base = [sys.executable, "-m", "fairque.cli.app"]
    worker = subprocess.Popen(
        [*base, "worker", "--poll-interval", "0.1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        done = subprocess.run(
            [*base, "dag", "trigger", "fan_out_in", "--wait", "--timeout", str(budget(90))],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=budget(120),
            check=False,
        )
    finally:
        worker.terminate()
        worker.wait(timeout=budget(10))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "success" in done.stdout


def flat(cli: CliRunner, *args: str) -> tuple[int, str]:
    """``invoke`` with the output's line wrapping undone."""
    code, out = invoke(cli, *args)
    return code, " ".join(out.split())


def _bypass_dag(folder: Path, target: Path, callable_: str) -> Path:
    folder.mkdir(exist_ok=True)
    dag = folder / "bypass.yaml"
    dag.write_text(
        "dag_id: bypass\ntasks:\n"
        "  first: {callable: 'tests.unit.bypass_tasks:fine', args: [one]}\n"
        "  second: {callable: 'tests.unit.bypass_tasks:fine', args: [two]}\n"
        f"  evil: {{callable: '{callable_}', args: [[touch, '{target}']]}}\n"
    )
    return dag


def test_validate_honours_fairque_allowed_modules(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "hacked"
    dag = _bypass_dag(tmp_path / "dags", target, "tests.unit.bypass_tasks:subprocess.run")
    code, out = flat(cli, "dag", "validate", str(dag))  # default: examples, dags
    assert code == 1
    assert out.count("not in allowed_modules") == 1, out  # once for the module
    assert "--allowed-modules tests.unit.bypass_tasks" in out
    assert "FAIRQUE_ALLOWED_MODULES=tests.unit.bypass_tasks" in out
    monkeypatch.setenv("FAIRQUE_ALLOWED_MODULES", "tests")
    code, out = flat(cli, "dag", "validate", str(dag))
    assert code == 1
    assert "module 'subprocess' is not in allowed_modules ['tests']" in out
    assert out.count("problem") == 1 and "1 problem(s)" in out
    code, out = flat(cli, "dag", "validate", "--allowed-modules", "examples", str(dag))
    assert code == 1 and "allowed_modules ['examples']" in out
    good = _bypass_dag(tmp_path / "good", target, "tests.unit.bypass_tasks:fine")
    code, out = flat(cli, "dag", "validate", str(good))
    assert code == 0, out
    assert not target.exists()


@pytest.mark.parametrize(
    "callable_",
    [
        "tests.unit.bypass_tasks:subprocess.run",
        "tests.unit.bypass_tasks:run",
        "tests.unit.bypass_tasks:os.system",
        "subprocess:run",
    ],
)
def test_dag_test_refuses_the_bypass_catalogue_and_runs_nothing(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, callable_: str
) -> None:
    monkeypatch.setenv("FAIRQUE_ALLOWED_MODULES", "tests")
    target = tmp_path / "hacked"
    folder = tmp_path / "dags"
    _bypass_dag(folder, target, callable_)
    code, out = flat(cli, "dag", "test", "bypass", "--dags-folder", str(folder))
    assert code == 1
    assert "not in allowed_modules" in out and "no DAG 'bypass'" in out
    assert not target.exists()
    _bypass_dag(folder, target, "tests.unit.bypass_tasks:fine")
    code, out = flat(cli, "dag", "test", "bypass", "--dags-folder", str(folder))
    assert code == 0, out
    assert "evil: finished" in out  # the same file with a plain function runs


def test_mapped_fan_out_through_trigger_show_and_render(
    cli: CliRunner, worker: Worker, tmp_path: Path
) -> None:
    code, out = invoke(
        cli, "dag", "trigger", "mapped_fanout", "--wait", "--timeout", str(budget(30)), "--json"
    )
    assert code == 0, out
    run = json.loads(out[out.index("{") :])
    assert run["state"] == "success"
    shown = json.loads(invoke(cli, "run", "show", run["run_id"], "--json")[1])
    tasks = shown["tasks"]
    assert [tasks[f"process[{i}]"]["map_index"] for i in range(50)] == list(range(50))
    assert tasks["process"]["map_count"] == 50 and len(tasks["process"]["result"]) == 50
    assert tasks["summarize"]["result"]["files"] == 50
    code, plain = invoke(cli, "run", "show", run["run_id"])
    assert code == 0 and "process[49]" in plain
    mermaid = tmp_path / "run.mmd"
    code, out = invoke(
        cli, "dag", "render", "mapped_fanout", "--run", run["run_id"], "-o", str(mermaid)
    )
    assert code == 0, out
    drawn = mermaid.read_text()
    assert "mapped x50: 50 finished" in drawn and "process#91;" not in drawn
