"""`fairque server ...` in-process (typer's CliRunner) and as real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from fairque.cli.app import app
from fairque.core.errors import ServerError
from fairque.server import EmbeddedServer
from fairque.server import embedded as embedded_module
from fairque.server.process import pid_alive
from tests.timing import budget

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI_MODULE = [sys.executable, "-W", "error", "-m", "fairque.cli.app"]

runner = CliRunner()


def ping(url: str) -> bool:
    with redis.Redis.from_url(url, socket_timeout=2) as client:
        return bool(client.ping())


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m fairque.cli.app ARGS`` with the test's environment."""
    return subprocess.run(
        [*CLI_MODULE, *args],
        capture_output=True,
        text=True,
        timeout=budget(60),
        cwd=cwd,
        check=False,
    )


# --- in-process ----------------------------------------------------------------------


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"fairque {version('fairque')}"


def test_help_lists_the_server_group() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "server" in result.stdout


def test_server_lifecycle(state_dir: Path) -> None:
    started = runner.invoke(app, ["server", "start"])
    assert started.exit_code == 0, started.output
    url = started.stdout.strip()
    assert url.startswith("redis://127.0.0.1:") and ping(url)
    assert (state_dir / "server.json").exists()

    assert runner.invoke(app, ["server", "url"]).stdout.strip() == url
    shown = runner.invoke(app, ["server", "status"])
    assert shown.exit_code == 0 and url in shown.stdout
    as_json = json.loads(runner.invoke(app, ["server", "status", "--json"]).stdout)
    assert as_json["running"] is True and as_json["url"] == url
    assert as_json["state_dir"] == str(state_dir)

    stopped = runner.invoke(app, ["server", "stop"])
    assert stopped.exit_code == 0 and "stopped" in stopped.stdout
    assert runner.invoke(app, ["server", "stop"]).exit_code == 0
    not_running = runner.invoke(app, ["server", "status"])
    assert not_running.exit_code == 1
    assert "fairque server start" in not_running.stderr
    as_json = json.loads(runner.invoke(app, ["server", "status", "--json"]).stdout)
    assert as_json["running"] is False


def test_state_dir_option(tmp_path: Path) -> None:
    folder = tmp_path / "elsewhere"
    url = runner.invoke(app, ["server", "url", "--state-dir", str(folder)]).stdout.strip()
    try:
        assert EmbeddedServer(folder).url == url
    finally:
        assert runner.invoke(app, ["server", "stop", "--state-dir", str(folder)]).exit_code == 0


def test_errors_are_red_messages_with_exit_code_1(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_binary() -> str:
        raise ServerError("no Valkey or Redis server binary found. get one")

    monkeypatch.setattr(embedded_module, "find_server_binary", no_binary)
    result = runner.invoke(app, ["server", "start"])
    assert result.exit_code == 1
    assert "error:" in result.stderr and "binary found" in result.stderr
    assert result.stdout == ""


# --- real processes ------------------------------------------------------------------


@pytest.mark.slow
def test_processes_share_the_server_through_the_state_folder(state_dir: Path) -> None:
    assert os.environ["FAIRQUE_STATE_DIR"] == str(state_dir)
    started = run_cli("server", "url")
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip()
    assert ping(url)

    status = run_cli("server", "status", "--json")
    assert status.returncode == 0, status.stderr
    pid = json.loads(status.stdout)["pid"]
    assert EmbeddedServer(state_dir).url == url

    stopped = run_cli("server", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not pid_alive(pid)
    assert run_cli("server", "status").returncode == 1


@pytest.mark.slow
def test_cli_py_behaves_like_the_console_script() -> None:
    script = [sys.executable, "-W", "error", str(REPO_ROOT / "cli.py")]
    as_script = subprocess.run(
        [*script, "--version"], capture_output=True, text=True, timeout=budget(60), check=False
    )
    as_module = run_cli("--version")
    assert as_script.returncode == as_module.returncode == 0
    assert as_script.stdout == as_module.stdout == f"fairque {version('fairque')}\n"

    helped = subprocess.run(
        [*script, "server", "--help"],
        capture_output=True,
        text=True,
        timeout=budget(60),
        check=False,
    )
    assert helped.returncode == 0
    assert "fairque server" in helped.stdout
