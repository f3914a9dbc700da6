"""Worker processes started by the benchmark: each in a session of its own, stopped by
process group (it and whatever it forked), with its output in a log file."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from tests.performance.common import REPO_ROOT
from tests.performance.jobs import URL_ENV


class WorkerProcess:
    """A started worker command; ``stop()`` ends its whole process group."""

    def __init__(self, name: str, argv: Sequence[str], log: Path, redis_url: str) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        env = dict(os.environ)
        env[URL_ENV] = redis_url
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env.pop("FAIRQUE_REDIS_URL", None)
        self._out: IO[bytes] = log.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 20) -> str:
        """The end of the worker's output, for error messages."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGKILL the whole group: no graceful shutdown to wait for, since every
        scenario flushes the database after its workers are gone."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)
        self._out.close()


class Launcher:
    """Starts worker commands with logs in one folder."""

    def __init__(self, folder: Path, redis_url: str) -> None:
        self.folder = folder
        self.redis_url = redis_url
        self.last: WorkerProcess | None = None  # for error reports: its log tail
        self._count = 0

    @contextlib.contextmanager
    def running(self, name: str, argv: Sequence[str]) -> Iterator[WorkerProcess]:
        """Run ``argv`` for the duration of the block (numbered log file per start)."""
        self._count += 1
        log = self.folder / f"{self._count:03d}-{name}.log"
        worker = WorkerProcess(name, argv, log, self.redis_url)
        self.last = worker
        try:
            yield worker
        finally:
            worker.stop()
