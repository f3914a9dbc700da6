"""What the tests' local server groups (Sentinel, Cluster) share: processes of the
embedded ``valkey-server`` binary on free loopback ports, each with its config and log in
one temporary folder, reached with plain clients and killed by pid on :meth:`close`."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import redis

from fairque.server import find_server_binary
from fairque.server.process import free_port, pid_alive
from tests.timing import budget

_Group = TypeVar("_Group", bound="ServerGroup")


class ServerGroup:
    """A group of named ``valkey-server`` processes; subclasses say how it starts."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.binary = find_server_binary()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}
        self.flags: dict[str, tuple[str, ...]] = {}

    def start(self: _Group) -> _Group:
        raise NotImplementedError

    def __enter__(self: _Group) -> _Group:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _start_server(self, name: str, *lines: str) -> None:
        """Start data node ``name`` on a free port: its files, no persistence, ``lines``."""
        port = free_port()
        conf = [
            f"port {port}",
            "bind 127.0.0.1",
            f"dir {self.folder}",
            f"dbfilename {name}.rdb",
            'save ""',
            "appendonly no",
            "repl-diskless-sync yes",
            "repl-diskless-sync-delay 0",
            *lines,
        ]
        self._launch(name, port, conf)

    def _launch(self, name: str, port: int, conf: list[str], *flags: str) -> None:
        (self.folder / f"{name}.conf").write_text("\n".join(conf) + "\n")
        self.ports[name] = port
        self.flags[name] = flags
        self._spawn(name)

    def _spawn(self, name: str) -> None:
        with (self.folder / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [str(self.binary), str(self.folder / f"{name}.conf"), *self.flags[name]],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def restart(self, name: str) -> None:
        """Start member ``name`` again (after :meth:`kill`) on its port with its config
        (a cluster node also with its ``nodes.conf``: it rejoins as a replica)."""
        assert self.processes[name].poll() is not None, f"{name} is still running"
        self._spawn(name)

    def client(self, name: str) -> redis.Redis:
        """A plain client of one member."""
        return redis.Redis(port=self.ports[name], socket_timeout=budget(2.0), decode_responses=True)

    def _answers(self, name: str) -> bool:
        try:
            with self.client(name) as c:
                return bool(c.ping())
        except redis.RedisError:
            return False

    def replicas_of(self, name: str) -> int:
        """How many replicas are connected to member ``name``."""
        with self.client(name) as c:
            return int(c.info("replication").get("connected_slaves", 0))

    def kill(self, name: str) -> None:
        """SIGKILL member ``name`` and wait until it is gone."""
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=budget(10.0))

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None and pid_alive(process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
        deadline = time.monotonic() + budget(10.0)
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
