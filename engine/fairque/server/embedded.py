"""A private Valkey/Redis server on 127.0.0.1, owned by a state folder.

The state folder (default ``./.fairque``; ``FAIRQUE_STATE_DIR`` overrides) holds:

``server.json``
    the running server: pid, port, url, binary, version, started_at
``server.lock``
    an fcntl lock held around start and stop, so concurrent starters share one server
``server.port``
    the port of the last server; the next one takes it again when it is free, so a
    client kept open across ``fairque server stop``/``start`` reconnects
``server.pid`` / ``server.log``
    written by the server itself (the log is appended to on every start)
``data/``
    the server's working directory and its data: by default an append-only file
    (``data/appendonlydir/``, fsync'd every second) loaded on start, so a stop, a
    reboot or a kill -9 of the server loses nothing it acknowledged; an ephemeral
    server (``durable=False``) keeps nothing (see :mod:`fairque.server.persistence`)

Every process pointed at the same folder talks to the same server, which is how
``fairque worker`` in one terminal and ``fairque dag trigger`` in another share it.
POSIX only (Linux, macOS): it relies on ``fcntl`` and signals.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

import redis

from fairque.core.config import REDIS_URL_ENV, redis_location
from fairque.core.errors import ServerError
from fairque.core.state import DEFAULT_STATE_DIR, STATE_DIR_ENV
from fairque.server.binary import INSTALL_HINT, find_server_binary
from fairque.server.persistence import EPHEMERAL, Persistence, folder_bytes
from fairque.server.process import (
    HOST,
    POLL_SECONDS,
    free_port,
    local_client,
    locked,
    pid_alive,
    process_title,
    server_info,
    server_loading,
    server_pid,
    version_of,
    wait_until,
)

logger = logging.getLogger(__name__)


_PORT_ATTEMPTS = 3
_LOG_TAIL_LINES = 15
_LOCK_SLACK_SECONDS = 10.0
_PORT_IN_USE = "Address already in use"


@dataclass(frozen=True)
class ServerStatus:
    """What ``server.json`` records about a server, and whether it answers right now."""

    pid: int
    port: int
    url: str
    binary: str
    version: str
    started_at: str
    running: bool
    persistence: str = EPHEMERAL
    """``aof everysec`` (or ``aof always``, ``aof no``) or ``none`` (keeps nothing)."""


class _PortTakenError(ServerError):
    """The server could not bind its port (someone took it after we picked it)."""


# --- the server ----------------------------------------------------------------------


class EmbeddedServer:
    """A Valkey/Redis server on 127.0.0.1 whose lifecycle is recorded in a state folder.

    Several objects (in one or many processes) on the same folder share one server:
    :meth:`start` reuses a live server and starts one otherwise, under a file lock.
    Used as a context manager it yields the URL and, on exit, stops the server if
    this object started it (a server that was already running is left alone).
    """

    def __init__(
        self,
        state_dir: str | Path | None = None,
        *,
        binary: str | None = None,
        durable: bool = True,
        appendfsync: str | None = None,
    ) -> None:
        """Own ``state_dir`` (default: ``$FAIRQUE_STATE_DIR`` or ``./.fairque``).

        ``binary`` forces a server binary instead of :func:`find_server_binary`. A server
        this object starts keeps its data in an append-only file under ``data/`` when
        ``durable`` (fsync policy ``appendfsync``, else ``$FAIRQUE_SERVER_APPENDFSYNC``,
        else ``everysec``), and nothing otherwise. Nothing is created or started until
        :meth:`start`.
        """
        if state_dir is None:
            state_dir = os.environ.get(STATE_DIR_ENV) or Path.cwd() / DEFAULT_STATE_DIR
        self.state_dir = Path(state_dir).expanduser().absolute()
        self.binary = binary
        self.durable = durable
        self.appendfsync = appendfsync
        self._started_here = False

    @property
    def record_path(self) -> Path:
        """``server.json``: the record of the running server."""
        return self.state_dir / "server.json"

    @property
    def lock_path(self) -> Path:
        """``server.lock``: locked around start and stop."""
        return self.state_dir / "server.lock"

    @property
    def pid_path(self) -> Path:
        """``server.pid``: written by the server process."""
        return self.state_dir / "server.pid"

    @property
    def log_path(self) -> Path:
        """``server.log``: the server's own log."""
        return self.state_dir / "server.log"

    @property
    def port_path(self) -> Path:
        """``server.port``: the port of the last server, tried first by the next one."""
        return self.state_dir / "server.port"

    @property
    def data_dir(self) -> Path:
        """``data/``: the server's working directory, where its append-only file lives."""
        return self.state_dir / "data"

    def data_bytes(self) -> int:
        """How many bytes the server's data folder holds now (0 before the first start)."""
        return folder_bytes(self.data_dir)

    @property
    def url(self) -> str | None:
        """The URL of the running server, or None when none is running."""
        status = self.status()
        return status.url if status is not None and status.running else None

    # -- public lifecycle ---------------------------------------------------------

    def start(self, timeout: float = 10.0) -> str:
        """Make sure a server is running and return its URL ``redis://127.0.0.1:PORT/0``.

        Reuses the recorded server when its pid is alive and it answers (whatever its
        persistence); otherwise starts a new one, on the last server's port when it is
        free, and waits up to ``timeout`` seconds (plus one second per MiB of data to
        load) until it answers and has loaded its data. Raises :class:`ServerError` (with
        the tail of the server log) on failure, ConfigValueError for an unknown
        ``appendfsync``.
        """
        persistence = Persistence.choose(durable=self.durable, appendfsync=self.appendfsync)
        timeout += persistence.load_seconds(self.data_bytes())
        with self._locked(timeout):
            current = self._load()
            if current is not None and self._is_live(current):
                logger.debug("reusing server pid %s at %s", current.pid, current.url)
                if current.persistence != persistence.label:
                    logger.warning(
                        "reusing the running server (persistence %s, not %s): stop it first "
                        "to change",
                        current.persistence,
                        persistence.label,
                    )
                return current.url
            if current is not None:
                logger.info("server pid %s is gone; starting a new one", current.pid)
                self._forget()
            status = self._start_new(persistence, timeout)
            self._save(status)
            self._started_here = True
            logger.info("started %s (pid %s) at %s", status.version, status.pid, status.url)
            return status.url

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the recorded server; True if one was running, False if nothing was.

        Tries ``SHUTDOWN NOSAVE`` first (no RDB snapshot; a durable server still writes
        and fsyncs its append-only file before it exits), then SIGTERM, then SIGKILL.
        ``server.json`` is removed in every case. Raises :class:`ServerError` only if
        the process survives SIGKILL.
        """
        with self._locked(timeout):
            current = self._load()
            try:
                if current is None or not pid_alive(current.pid):
                    return False
                self._terminate(current, timeout)
                logger.info("stopped server pid %s", current.pid)
                return True
            finally:
                self._forget()
                self._started_here = False

    def status(self) -> ServerStatus | None:
        """The recorded server with ``running`` checked now, or None when none is recorded."""
        current = self._load()
        if current is None:
            return None
        return dataclasses.replace(current, running=self._is_live(current))

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._started_here:
            self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedServer(state_dir={str(self.state_dir)!r})"

    # -- record ---------------------------------------------------------------------

    def _load(self) -> ServerStatus | None:
        """The parsed ``server.json`` (running=False), or None if absent or unreadable."""
        try:
            data = json.loads(self.record_path.read_text())
            return ServerStatus(
                pid=int(data["pid"]),
                port=int(data["port"]),
                url=str(data["url"]),
                binary=str(data["binary"]),
                version=str(data["version"]),
                started_at=str(data["started_at"]),
                running=False,
                persistence=str(data.get("persistence", EPHEMERAL)),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            logger.warning("ignoring unreadable %s: %s", self.record_path, e)
            return None

    def _save(self, status: ServerStatus) -> None:
        """Write ``server.json`` atomically (without the ``running`` flag)."""
        data = dataclasses.asdict(status)
        del data["running"]
        tmp = self.record_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, self.record_path)
        self.port_path.write_text(f"{status.port}\n")

    def _last_port(self) -> int | None:
        """The port in ``server.port``, or None when absent or unreadable."""
        try:
            port = int(self.port_path.read_text().strip())
        except (OSError, ValueError):
            return None
        return port if 0 < port < 65536 else None

    def _forget(self) -> None:
        """Remove ``server.json`` and a leftover pidfile."""
        self.record_path.unlink(missing_ok=True)
        self.pid_path.unlink(missing_ok=True)

    def _is_live(self, status: ServerStatus) -> bool:
        """True when the recorded pid is alive and is the server answering on its port."""
        return pid_alive(status.pid) and server_pid(status.port) == status.pid

    @contextlib.contextmanager
    def _locked(self, timeout: float) -> Iterator[None]:
        """Hold ``server.lock`` exclusively (creating the state folder if needed)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with locked(self.lock_path, time.monotonic() + timeout + _LOCK_SLACK_SECONDS):
            yield

    # -- starting -------------------------------------------------------------------

    def _start_new(self, persistence: Persistence, timeout: float) -> ServerStatus:
        """Launch a server on the last server's port, else on a free port, retrying when
        the port was taken meanwhile."""
        binary = self.binary or find_server_binary()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        last: ServerError | None = None
        last_port = self._last_port()
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            port = last_port if attempt == 1 and last_port is not None else free_port()
            try:
                return self._launch(binary, port, persistence, deadline)
            except _PortTakenError as e:
                logger.info("attempt %s: %s", attempt, e)
                last = e
        raise ServerError(f"could not find a free port for {binary}: {last}") from last

    def _launch(
        self, binary: str, port: int, persistence: Persistence, deadline: float
    ) -> ServerStatus:
        """Run ``binary`` daemonized on ``port`` and wait until it answers."""
        self.pid_path.unlink(missing_ok=True)
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._run_daemonize(self._command(binary, port, persistence), deadline, log_offset)
        try:
            pid = self._wait_ready(port, deadline, log_offset)
        except ServerError:
            self._kill_unready(port)
            raise
        info = server_info(port) or {}
        version = version_of(info)
        major = str(info.get("redis_version", "")).split(".")[0]
        if major.isdigit() and int(major) < 7:
            logger.warning("%s is older than Redis 7; fairque needs Redis 7+", version)
        return ServerStatus(
            pid=pid,
            port=port,
            url=f"redis://{HOST}:{port}/0",
            binary=binary,
            version=version,
            started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            running=True,
            persistence=persistence.label,
        )

    def _command(self, binary: str, port: int, persistence: Persistence) -> list[str]:
        """The server's command line: daemonized, loopback only, data in ``data/``."""
        return [
            binary,
            "--daemonize", "yes",
            "--port", str(port),
            "--bind", HOST,
            "--dir", str(self.data_dir),
            "--pidfile", str(self.pid_path),
            "--logfile", str(self.log_path),
            *persistence.server_args(),
            "--protected-mode", "yes",
        ]  # fmt: skip

    def _run_daemonize(self, command: list[str], deadline: float, log_offset: int) -> None:
        """Run the binary, which forks the server and exits; raise if that fails."""
        binary = command[0]
        try:
            done = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=max(deadline - time.monotonic(), 0.1),
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ServerError(f"cannot run server binary {binary}: {e}. {INSTALL_HINT}") from e
        if done.returncode != 0:
            output = (done.stderr + done.stdout).strip()
            raise ServerError(
                f"server binary {binary} exited with code {done.returncode}:\n{output}"
                + self._log_tail(log_offset)
            )

    def _wait_ready(self, port: int, deadline: float, log_offset: int) -> int:
        """Wait until the server we launched answers on ``port`` and has loaded its data
        (an append-only file); return its pid."""
        while True:
            pid = self._pidfile_pid()
            if pid is not None and not pid_alive(pid):
                tail = self._log_tail(log_offset)
                error = _PortTakenError if _PORT_IN_USE in tail else ServerError
                raise error(f"server on port {port} exited during startup" + tail)
            if (
                pid is not None
                and server_pid(port, timeout=0.25) == pid
                and not server_loading(port, timeout=0.25)
            ):
                return pid
            if time.monotonic() >= deadline:
                raise ServerError(
                    f"server on port {port} did not answer within the timeout"
                    + self._log_tail(log_offset)
                )
            time.sleep(POLL_SECONDS)

    def _kill_unready(self, port: int) -> None:
        """SIGKILL a server we launched on ``port`` that never became ready (no orphans)."""
        wait_until(lambda: self._pidfile_pid() is not None, time.monotonic() + 1.0)
        pid = self._pidfile_pid()
        if pid is not None and pid_alive(pid) and f"{HOST}:{port}" in process_title(pid):
            logger.warning("killing server pid %s, which never answered on port %s", pid, port)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _pidfile_pid(self) -> int | None:
        """The pid in ``server.pid``, or None when absent or not written yet."""
        try:
            return int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def _log_tail(self, offset: int = 0) -> str:
        """The last lines the server logged since ``offset``, ready to append to a message."""
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(offset)
                lines = handle.read().decode(errors="replace").splitlines()
        except OSError:
            return f"\n(no server log at {self.log_path})"
        if not lines:
            return f"\n(the server log {self.log_path} is empty)"
        return f"\nlast lines of {self.log_path}:\n" + "\n".join(lines[-_LOG_TAIL_LINES:])

    # -- stopping -------------------------------------------------------------------

    def _terminate(self, status: ServerStatus, timeout: float) -> None:
        """Stop the server process: SHUTDOWN NOSAVE, else SIGTERM, else SIGKILL."""
        pid = status.pid

        def gone() -> bool:
            return not pid_alive(pid)

        deadline = time.monotonic() + timeout / 2
        if (
            server_pid(status.port) == pid
            and self._shutdown(status.port)
            and wait_until(gone, deadline)
        ):
            return
        if f"{HOST}:{status.port}" not in process_title(pid):
            logger.warning("pid %s is no longer our server; not signalling it", pid)
            return
        for sig, until in ((signal.SIGTERM, deadline), (signal.SIGKILL, deadline + timeout / 2)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            if wait_until(gone, until):
                return
        raise ServerError(f"server pid {pid} is still alive after SIGKILL")

    @staticmethod
    def _shutdown(port: int) -> bool:
        """Send SHUTDOWN NOSAVE; True when the server accepted it."""
        try:
            with local_client(port, 2.0) as client:
                client.shutdown(nosave=True)
        except (redis.RedisError, OSError) as e:
            logger.info("SHUTDOWN NOSAVE on port %s failed: %s", port, e)
            return False
        return True


# --- choosing a URL ------------------------------------------------------------------


def resolve_redis_url(
    explicit: str | None = None,
    *,
    start_embedded: bool = True,
    state_dir: str | Path | None = None,
) -> str:
    """The Redis URL to connect to.

    Precedence (:func:`fairque.core.config.redis_location`): ``explicit``, then
    ``$FAIRQUE_REDIS_URL``, then the state folder's embedded server; blank values count
    as not given and the word ``embedded`` means the embedded server. The embedded
    server is started when ``start_embedded``; otherwise it must already be running,
    else :class:`ServerError` says to run ``fairque server start``.
    """
    chosen = redis_location(explicit)
    if chosen is not None:
        return chosen
    server = EmbeddedServer(state_dir)
    if start_embedded:
        return server.start()
    url = server.url
    if url is None:
        raise ServerError(
            f"no Redis server is configured and no embedded server runs in {server.state_dir}: "
            f"run `fairque server start`, or set {REDIS_URL_ENV} to an existing server"
        )
    return url
