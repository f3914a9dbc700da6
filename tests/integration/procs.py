"""Real processes for the fault tests: start them, wait on conditions, signal, clean up.

Every process starts in a session of its own, so :meth:`Procs.kill_all` can end it and
whatever it started (the children of ``fairque worker --processes N``) by process group,
without touching anything else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from fairque.server.process import pid_alive
from tests.timing import budget, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "fairque.cli.app"]
CLI_TIMEOUT = 60.0  # seconds (scaled) a short CLI command may take, start-up included


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m fairque.cli.app ARGS`` to completion (output captured)."""
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=budget(CLI_TIMEOUT),
        cwd=REPO_ROOT,
        check=False,
    )


def read_runs(path: Path) -> list[tuple[str, int]]:
    """The run log written by ``tests.integration.jobs.mark``: (token, pid) per line."""
    if not path.exists():
        return []
    runs: list[tuple[str, int]] = []
    for line in path.read_text().splitlines():
        token, _, pid = line.rpartition(" ")
        if token and pid.isdigit():  # a line being written is skipped until complete
            runs.append((token, int(pid)))
    return runs


def group_members(pgid: int) -> list[int]:
    """Pids of the live (not zombie) processes in process group ``pgid`` (Linux /proc)."""
    members: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()  # state, ppid, pgrp, ...
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(entry.name))
    return sorted(members)


def boot_clock() -> float:
    """Seconds since boot (CLOCK_BOOTTIME), the clock of :func:`started_on_boot_clock`."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def started_on_boot_clock(pid: int) -> float:
    """When process ``pid`` was started (fork/exec), on :func:`boot_clock` (10 ms steps).

    So a test can time an event up to a process's start, leaving its start-up out.
    """
    stat = (Path("/proc") / str(pid) / "stat").read_text()
    start_ticks = int(stat.rsplit(")", 1)[-1].split()[19])  # field 22: starttime
    return start_ticks / os.sysconf("SC_CLK_TCK")


class Proc:
    """One started process; its stdout and stderr go to ``log``."""

    def __init__(
        self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        self._out: IO[bytes] = log.open("ab")
        self.popen = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=None if env is None else {**os.environ, **env},
        )
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, lines: int = 40) -> str:
        """The end of the output, for assertion messages."""
        text = "\n".join(self.output().splitlines()[-lines:])
        return f"\n--- {self.name} (pid {self.pid}, exit {self.popen.poll()}) ---\n{text}"

    def send(self, sig: signal.Signals) -> None:
        self.popen.send_signal(sig)

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to end and return its exit code (fails after the scaled
        ``timeout``)."""
        try:
            return self.popen.wait(budget(timeout))
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} still running {budget(timeout):g} s later{self.tail()}"
            ) from None

    def kill_group(self) -> None:
        """SIGKILL the process's whole group (it and what it started), then reap it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(budget(10))
        self._out.close()


class Procs:
    """A factory of processes for one test; :meth:`kill_all` ends every one of them."""

    def __init__(self, folder: Path, redis_url: str) -> None:
        self.folder = folder
        self.redis_url = redis_url
        self.started: list[Proc] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        """Start ``argv``; ``env`` adds to (or overrides) the test's environment."""
        proc = Proc(name, argv, self.folder / f"{name}.log", env)
        self.started.append(proc)
        return proc

    def worker(
        self,
        worker_id: str,
        *options: str,
        redis_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> Proc:
        """``fairque worker`` with fast polling, serving every user, running ``tests.*``."""
        argv = [
            *CLI,
            "worker",
            "--redis-url",
            redis_url or self.redis_url,
            "--allowed-modules",
            "tests",
            "--worker-id",
            worker_id,
            "--poll-interval",
            "0.1",
            *options,
        ]
        return self.start(worker_id, argv, env)

    def tails(self) -> str:
        """The end of every process's output."""
        return "".join(proc.tail() for proc in self.started)

    def kill_all(self) -> None:
        """SIGKILL every process group started here and wait until none is left."""
        for proc in self.started:
            proc.kill_group()

        def leftovers() -> list[int]:
            return [p for proc in self.started for p in group_members(proc.pid) if pid_alive(p)]

        wait_until(lambda: not leftovers(), 10.0, lambda: f"processes to die: {leftovers()}")


class CounterSampler:
    """Reads one integer hash field (say a tenant's ``started USER`` stats counter)
    every ``every`` seconds on a thread, while used as a context manager."""

    def __init__(self, client: Any, key: str, field: str, every: float = 0.01) -> None:
        self.client, self.key, self.field, self.every = client, key, field, every
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(int(self.client.hget(self.key, self.field) or 0))
            time.sleep(self.every)  # the sampling period, not a wait for a condition

    def __enter__(self) -> CounterSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
