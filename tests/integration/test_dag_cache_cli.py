"""The DAG commands with the DAG cache: the same answers with and without it, a second
run parses nothing, and --no-cache / FAIRQUE_DAG_CACHE=off bypass it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fairque.cli.app import app
from fairque.dag.cache import DagCache
from tests.unit.test_dag_cache import dag_yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    dags = tmp_path / "dags"
    dags.mkdir()
    for name in ("a", "b"):
        (dags / f"{name}.yaml").write_text(dag_yaml(name))
    (dags / "broken.yaml").write_text(
        dag_yaml("broken").replace("depends_on: [t0]", "depends_on: [t9]")
    )
    return dags


@pytest.fixture
def cli(redis_url: str, redis_client: object, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("FAIRQUE_REDIS_URL", redis_url)
    monkeypatch.chdir(ROOT)
    return CliRunner()


def invoke(cli: CliRunner, *args: str) -> tuple[int, str]:
    result = cli.invoke(app, list(args))
    return result.exit_code, result.stdout


def parsed(folder: Path, allowed: list[str]) -> list[str]:
    cache = DagCache.shared()
    assert cache is not None
    return sorted(cache.for_folder(folder, allowed).parsed)


def test_validate_answers_the_same_from_the_cache(
    cli: CliRunner, folder: Path, state_dir: Path
) -> None:
    first = invoke(cli, "dag", "validate", "--json", "--allowed-modules", "examples", str(folder))
    second = invoke(cli, "dag", "validate", "--json", "--allowed-modules", "examples", str(folder))
    assert first == second and first[0] == 1
    assert parsed(folder, ["examples"]) == ["a.yaml", "b.yaml", "broken.yaml"]  # once
    (problem,) = json.loads(second[1])[str(folder / "broken.yaml")]
    assert (problem["line"], problem["column"]) == (9, 18) and "'t9'" in problem["message"]
    assert list((state_dir / "dag-cache").glob("*.json")) != []


def test_list_and_trigger_from_the_cache(cli: CliRunner, folder: Path) -> None:
    code, cold = invoke(cli, "dag", "list", "--json", "--dags-folder", str(folder))
    assert code == 0, cold
    code, warm = invoke(cli, "dag", "list", "--json", "--dags-folder", str(folder))
    code, bypass = invoke(cli, "dag", "list", "--json", "--no-cache", "--dags-folder", str(folder))
    assert json.loads(cold) == json.loads(warm) == json.loads(bypass)
    rows = {row["dag_id"]: row for row in json.loads(warm)}
    assert sorted(rows) == ["a", "b"] and rows["a"]["tasks"] == 3
    assert rows["a"]["file"] == str(folder / "a.yaml")
    assert parsed(folder, ["*"]) == ["a.yaml", "b.yaml", "broken.yaml"]
    runs = []
    for _ in range(2):
        code, out = invoke(cli, "dag", "trigger", "a", "--json", "--dags-folder", str(folder))
        assert code == 0, out
        assert sorted(json.loads(out)["tasks"]) == ["t0", "t1", "t2"]
        runs.append(json.loads(out)["run_id"])
    code, out = invoke(cli, "dag", "list", "--json", "--dags-folder", str(folder))
    rows = {row["dag_id"]: row for row in json.loads(out)}
    assert rows["a"]["last_run_id"] == runs[-1] and rows["a"]["last_run_state"] == "queued"
    assert rows["b"]["last_run_id"] is None and rows["b"]["last_run_state"] is None


@pytest.mark.parametrize("how", ["--no-cache", "env"])
def test_the_cache_can_be_bypassed(
    cli: CliRunner, folder: Path, state_dir: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["dag", "validate", "--allowed-modules", "examples", str(folder)]
    if how == "env":
        monkeypatch.setenv("FAIRQUE_DAG_CACHE", "off")
    else:
        args.insert(2, how)
    code, out = invoke(cli, *args)
    assert code == 1 and "broken.yaml: 1 problem(s)" in out and "a.yaml: ok" in out
    assert not (state_dir / "dag-cache").exists()
