"""Capturing what each attempt of a task writes, by context rather than by stream.

While a worker runs, ``sys.stdout`` and ``sys.stderr`` are wrapped in proxies and a
handler sits on the root logger. A write (or a log record) made while an attempt's
:class:`AttemptLog` is bound to the current thread or asyncio task (a
``contextvars.ContextVar``, set by :func:`capturing`) is added to that log; the
proxies still pass every write on to the real stream, so the worker's own output is
unchanged. Thread tasks and ``async def`` tasks running side by side each get their own
lines. The worker's loop ships the new text of every log to Redis at least every
:data:`FLUSH_SECONDS` and before it records the attempt's end.

A log keeps at most ``max_bytes`` (UTF-8) per attempt; the rest is dropped after a
visible :func:`truncation_marker` line.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Final, TextIO

from fairque.queue.calls import PipelineCall, QueueCalls

DEFAULT_MAX_LOG_BYTES: Final = 1024 * 1024
FLUSH_SECONDS: Final = 1.0
LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_current: ContextVar[AttemptLog | None] = ContextVar("fairque_attempt_log", default=None)


def truncation_marker(max_bytes: int) -> str:
    """The line that ends a log cut at ``max_bytes``."""
    return f"\n[fairque: log truncated, this attempt wrote more than {max_bytes} bytes]\n"


class AttemptLog:
    """The output of one attempt: text not yet shipped, and the bytes kept so far.

    Thread-safe. :meth:`write` adds text (cut at the cap); :meth:`pending` shows what is
    not in Redis yet and :meth:`shipped` drops it once Redis has it, so a failed flush
    loses nothing.
    """

    def __init__(self, task_id: str, attempt: int, max_bytes: int = DEFAULT_MAX_LOG_BYTES):
        self.task_id = task_id
        self.attempt = attempt
        self.max_bytes = max_bytes
        self.size = 0
        self.truncated = False
        self._pending: list[str] = []
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        """Keep ``text``, or the part of it under the cap, then the marker once."""
        if not text:
            return
        with self._lock:
            if self.truncated:
                return
            data = text.encode("utf-8", "replace")
            room = self.max_bytes - self.size
            if len(data) <= room:
                self._pending.append(text)
                self.size += len(data)
                return
            head = data[:room].decode("utf-8", "ignore")
            self._pending.append(head + truncation_marker(self.max_bytes))
            self.size = self.max_bytes
            self.truncated = True

    def pending(self) -> tuple[str, int]:
        """The text not shipped yet, and how many pieces it joins (for :meth:`shipped`)."""
        with self._lock:
            return "".join(self._pending), len(self._pending)

    def shipped(self, pieces: int) -> None:
        """Forget the first ``pieces`` pieces: Redis has them."""
        with self._lock:
            del self._pending[:pieces]


def current_log() -> AttemptLog | None:
    """The log of the attempt running in this thread or asyncio task, if any."""
    return _current.get()


@contextmanager
def capturing(log: AttemptLog | None) -> Iterator[AttemptLog | None]:
    """Send this context's stdout, stderr and log records to ``log`` (None: nowhere)."""
    if log is not None:
        _wrap_streams()  # again: something may have replaced sys.stdout since install
    token = _current.set(log)
    try:
        yield log
    finally:
        _current.reset(token)


class _Tee:
    """A text stream that copies writes made inside an attempt to its log."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner

    def write(self, text: str) -> int:
        log = _current.get()
        if log is not None:
            log.write(text)
        return self.inner.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.inner.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _LogHandler(logging.Handler):
    """Adds each record logged inside an attempt to its log, formatted."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        log = _current.get()
        if log is None:
            return
        try:
            log.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


_install_lock = threading.Lock()
_wrap_lock = threading.Lock()
_users = 0
_handler = _LogHandler()


def install() -> None:
    """Start capturing (once per process; each call needs an :func:`uninstall`)."""
    global _users
    with _install_lock:
        _users += 1
        if _users > 1:
            return
        _wrap_streams()
        logging.getLogger().addHandler(_handler)


def _wrap_streams() -> None:
    with _wrap_lock:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if stream is not None and not isinstance(stream, _Tee):
                setattr(sys, name, _Tee(stream))


def uninstall() -> None:
    """Stop capturing once every :func:`install` was matched."""
    global _users
    with _install_lock:
        _users = max(0, _users - 1)
        if _users:
            return
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if isinstance(stream, _Tee):
                setattr(sys, name, stream.inner)
        logging.getLogger().removeHandler(_handler)


class LogBatch:
    """New text of several attempt logs, to send in one pipeline, then :meth:`done`."""

    def __init__(
        self,
        call: PipelineCall[None],
        taken: list[tuple[AttemptLog, int]],
        ended: list[str],
        shipper: LogShipper,
    ) -> None:
        self.call = call
        self._taken = taken
        self._ended = ended
        self._shipper = shipper

    def done(self) -> None:
        """Redis has the text: drop it, and forget the logs of ended attempts."""
        for log, pieces in self._taken:
            log.shipped(pieces)
        for task_id in self._ended:
            self._shipper.logs.pop(task_id, None)


class LogShipper:
    """A worker's attempt logs and when they go to Redis (no I/O here)."""

    def __init__(self, calls: QueueCalls, max_bytes: int = DEFAULT_MAX_LOG_BYTES) -> None:
        self.calls = calls
        self.max_bytes = max_bytes
        self.logs: dict[str, AttemptLog] = {}
        self.next_flush = 0.0

    def open(self, task_id: str, attempt: int) -> AttemptLog:
        """A new log for the attempt just claimed."""
        log = AttemptLog(task_id, attempt, self.max_bytes)
        self.logs[task_id] = log
        return log

    def due(self, running: Collection[str], force: bool = False) -> LogBatch | None:
        """What to send now: every log's new text, at most every FLUSH_SECONDS unless
        ``force`` (an attempt ended); None when there is nothing to send."""
        now = time.monotonic()
        if not self.logs or (not force and now < self.next_flush):
            return None
        self.next_flush = now + FLUSH_SECONDS
        chunks: list[tuple[str, int, str]] = []
        taken: list[tuple[AttemptLog, int]] = []
        for log in self.logs.values():
            text, pieces = log.pending()
            if pieces:
                chunks.append((log.task_id, log.attempt, text))
                taken.append((log, pieces))
        ended = [task_id for task_id in self.logs if task_id not in running]
        if not chunks:  # nothing new to send: forget the ended attempts' logs at once
            for task_id in ended:
                del self.logs[task_id]
            return None
        return LogBatch(self.calls.append_logs(chunks), taken, ended, self)

    def wait_time(self) -> float:
        """Seconds until the next periodic flush (for the loop's sleep)."""
        return max(0.0, self.next_flush - time.monotonic()) if self.logs else FLUSH_SECONDS
