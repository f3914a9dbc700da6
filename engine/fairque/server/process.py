"""Low-level helpers of the embedded server: processes, probes, ports, file locks.

Everything here is stateless and POSIX-only; :mod:`fairque.server.embedded` composes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from fairque.core.errors import ServerError

HOST = "127.0.0.1"
POLL_SECONDS = 0.02


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not is_zombie(pid)


def is_zombie(pid: int) -> bool:
    """True when Linux's /proc says the process has exited but is not reaped yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]


def process_title(pid: int) -> str:
    """The command line of ``pid`` (a server shows ``... 127.0.0.1:PORT``), or ``""``."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        pass
    try:
        done = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


def local_client(port: int, timeout: float) -> redis.Redis:
    """A non-retrying client to the local server on ``port``."""
    return redis.Redis(
        host=HOST,
        port=port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def server_info(port: int, timeout: float = 1.0) -> dict[str, Any] | None:
    """INFO server of the server on ``port``, or None when nothing answers."""
    try:
        with local_client(port, timeout) as client:
            info: dict[str, Any] = client.info("server")
    except (redis.RedisError, OSError):
        return None
    return info


def server_loading(port: int, timeout: float = 1.0) -> bool:
    """True while the server on ``port`` is loading its data (or does not answer INFO)."""
    try:
        with local_client(port, timeout) as client:
            info: dict[str, Any] = client.info("persistence")
    except (redis.RedisError, OSError):
        return True
    return bool(int(info.get("loading", 0)))


def server_pid(port: int, timeout: float = 1.0) -> int | None:
    """The pid reported by the server answering on ``port``, or None."""
    info = server_info(port, timeout)
    return int(info["process_id"]) if info and "process_id" in info else None


def version_of(info: dict[str, Any]) -> str:
    """A readable version such as ``valkey 8.1.8`` or ``redis 7.0.15``."""
    name = str(info.get("server_name") or "redis")
    number = info.get("valkey_version") or info.get("redis_version") or "unknown"
    return f"{name} {number}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], deadline: float) -> bool:
    """Poll ``condition`` until it holds (True) or ``deadline`` (monotonic) passes (False)."""
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)


@contextlib.contextmanager
def locked(path: Path, deadline: float) -> Iterator[None]:
    """Hold an exclusive fcntl lock on ``path`` (created if missing) inside the block.

    Waits until ``deadline`` (monotonic) at most, then raises :class:`ServerError`.
    """
    with open(path, "a+") as handle:
        _acquire(handle, deadline)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _acquire(handle: TextIO, deadline: float) -> None:
    """Take an exclusive lock on ``handle``, polling until ``deadline``."""
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise ServerError(
                    f"timed out waiting for the lock {handle.name}: "
                    "another fairque process is starting or stopping the server"
                ) from None
            time.sleep(POLL_SECONDS)
