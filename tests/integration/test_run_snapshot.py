"""Runs keep the DAG they ran: a snapshot of its structure at trigger time, shown by
`run show` and drawn by `dag render --run` after the file changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fairque import FairQueueConfig, TaskQueue
from fairque.cli.app import app
from fairque.tasks import Pipeline
from tests.unit import sample_tasks as st

BEFORE = """\
dag_id: evolving
tasks:
  extract: {callable: "tests.unit.sample_tasks:extract_data"}
  old_step: {callable: "tests.unit.sample_tasks:transform_data", depends_on: [extract]}
"""
AFTER = """\
dag_id: evolving
tasks:
  extract: {callable: "tests.unit.sample_tasks:extract_data"}
  new_step: {callable: "tests.unit.sample_tasks:load_data", depends_on: [extract]}
"""
OTHER = """\
dag_id: other
tasks:
  only: {callable: "tests.unit.sample_tasks:extract_data"}
"""


@pytest.fixture
def cli(redis_url: str, redis_client: object, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("FAIRQUE_REDIS_URL", redis_url)
    return CliRunner()


def _run(cli: CliRunner, *args: str) -> tuple[int, str]:
    result = cli.invoke(app, list(args))
    return result.exit_code, result.output


def _trigger(cli: CliRunner, folder: Path, dag_id: str) -> dict[str, object]:
    code, out = _run(cli, "dag", "trigger", dag_id, "--json", "--dags-folder", str(folder))
    assert code == 0, out
    return json.loads(out[out.index("{") :])  # type: ignore[no-any-return]


def test_a_run_is_drawn_and_shown_as_it_ran_after_the_file_changed(
    cli: CliRunner, tmp_path: Path
) -> None:
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "evolving.yaml").write_text(BEFORE)
    old = _trigger(cli, folder, "evolving")
    (folder / "evolving.yaml").write_text(AFTER)
    new = _trigger(cli, folder, "evolving")
    code, out = _run(cli, "run", "show", str(old["run_id"]), "--json")
    snapshot = json.loads(out)["dag_snapshot"]
    assert snapshot["tasks"] == ["extract", "old_step"]
    assert snapshot["callables"]["old_step"] == "tests.unit.sample_tasks:transform_data"
    assert snapshot["edges"] == [["extract", "old_step"]]
    assert snapshot["version"] != new["dag_snapshot"]["version"]  # type: ignore[index]
    code, out = _run(cli, "run", "show", str(old["run_id"]))
    assert code == 0 and f"version {snapshot['version']}" in out, out
    dot = tmp_path / "old.dot"
    args = ["dag", "render", "evolving", "--dags-folder", str(folder), "-o", str(dot)]
    code, out = _run(cli, *args, "--run", str(old["run_id"]))
    assert code == 0, out
    drawn = dot.read_text()
    assert "old_step" in drawn and "new_step" not in drawn and snapshot["version"] in drawn
    code, out = _run(cli, *args, "--run", str(new["run_id"]))
    assert code == 0 and "new_step" in dot.read_text() and "old_step" not in dot.read_text()


def test_render_refuses_a_run_of_another_dag_or_of_a_pipeline(
    cli: CliRunner, tmp_path: Path, redis_url: str
) -> None:
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "evolving.yaml").write_text(BEFORE)
    (folder / "other.yaml").write_text(OTHER)
    other = _trigger(cli, folder, "other")
    args = [
        "dag",
        "render",
        "evolving",
        "--dags-folder",
        str(folder),
        "-o",
        str(tmp_path / "x.dot"),
    ]
    code, out = _run(cli, *args, "--run", str(other["run_id"]))
    assert code == 1 and "of DAG 'other'" in out, out
    with TaskQueue(FairQueueConfig.create_default(redis=redis_url)) as queue:
        handle = queue.enqueue(Pipeline.of(st.extract_data()))
    code, out = _run(cli, *args, "--run", handle.run_id)
    assert code == 1 and "of a pipeline" in out, out
    code, out = _run(cli, *args, "--run", "no_such_run")
    assert code == 1 and "Traceback" not in out, out
    assert not (tmp_path / "x.dot").exists()
