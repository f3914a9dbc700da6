"""``fairque demo`` runs end to end and shows light users interleaved with a flood."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fairque.cli.demo import _dags_folder
from fairque.demo import FLOOD, LIGHT, example_project, run_demo
from tests.timing import budget

ROOT = Path(__file__).resolve().parents[2]


def test_run_demo_serves_light_users_among_the_flood(redis_url: str, redis_client: object) -> None:
    served = run_demo(redis_url, flood=30, light=4)
    assert len(served) == 30 + 2 * 4 + 1
    assert all(s.state.value == "finished" for s in served)
    for user in LIGHT:
        last = max(s.position for s in served if s.user_id == user)
        assert last <= 30  # a FIFO queue would serve them after position 30
    flood_positions = [s.position for s in served if s.user_id == FLOOD]
    assert flood_positions[-1] == len(served)


@pytest.mark.slow
def test_demo_command_as_a_new_user_runs_it(redis_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "FAIRQUE_REDIS_URL": redis_url, "FAIRQUE_STATE_DIR": str(tmp_path)}
    result = subprocess.run(
        [
            *(sys.executable, "-m", "fairque.cli.app", "demo", "--flood", "20", "--light", "3"),
            *("--out", str(tmp_path / "pictures")),
        ],
        capture_output=True,
        text=True,
        timeout=budget(60),
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Whole order:" in result.stdout
    assert "user:alice: its 3 tasks were served" in result.stdout
    assert "failure_cleanup" in result.stdout and "the orders API is down" in result.stdout
    pictures = sorted(p.stem for p in (tmp_path / "pictures").iterdir())
    assert pictures == ["failure_cleanup", "orders_etl"]


def test_without_a_dags_folder_the_demo_uses_the_example_project(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    project = example_project()
    assert project is not None and (project / "dags" / "orders_etl.yaml").is_file()
    assert _dags_folder(None) == project / "dags"
    assert sys.path[0] == str(project)  # where the worker imports examples.etl from
    assert _dags_folder(tmp_path / "elsewhere") is None  # an explicit folder is not replaced
    (tmp_path / "dags").mkdir()
    assert _dags_folder(None) == Path("dags") and sys.path[0] == os.getcwd()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_built_wheel_runs_the_whole_demo_in_an_empty_folder(tmp_path: Path) -> None:
    """uv build, a clean venv, pip install of the wheel, then ``fairque demo`` and
    ``fairque server stop`` in an empty folder, as a new user would. Skipped when uv is
    missing or pip cannot reach an index for the dependencies."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("needs uv to build the wheel")
    dist, venv, empty = tmp_path / "dist", tmp_path / "venv", tmp_path / "empty"
    empty.mkdir()
    built = _run([uv, "build", "--offline", "--wheel", "--out-dir", str(dist)], ROOT)
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("fairque-*.whl")
    assert _run([sys.executable, "-m", "venv", str(venv)], tmp_path).returncode == 0
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    installed = _run([*pip, str(wheel)], ROOT)
    if installed.returncode != 0:
        pytest.skip(f"pip could not install the dependencies: {installed.stderr[-500:]}")
    fairque = str(venv / "bin" / "fairque")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAIRQUE_")}
    try:
        demo = _run([fairque, "demo", "--flood", "12", "--light", "2"], empty, env)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert "Whole order:" in demo.stdout and "orders_etl" in demo.stdout
        assert "the orders API is down" in demo.stdout
        suffix = ".svg" if shutil.which("dot") else ".mmd"
        pictures = sorted(p.name for p in (empty / ".fairque" / "demo").iterdir())
        assert pictures == [f"failure_cleanup{suffix}", f"orders_etl{suffix}"]
    finally:
        stopped = _run([fairque, "server", "stop"], empty, env)
    assert stopped.returncode == 0, stopped.stderr


def _run(
    command: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, timeout=budget(240), cwd=cwd, env=env, check=False
    )
