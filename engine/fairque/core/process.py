"""Process signals shared by the workers, the supervisor and the scheduler.

SIGTERM and SIGINT ask a long-running loop to stop: the first one gracefully, any later
one at once. :func:`stop_on_signals` installs the handlers for the duration of a
``with`` block and puts the previous handlers back afterwards. It serves a thread loop
(the handler runs in the main thread between bytecodes) and an asyncio loop (pass the
loop: the handler then runs as a loop callback through ``loop.add_signal_handler``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

EXIT_GAVE_UP = 3
"""Exit code of a worker process that stopped without handing back its tasks (Redis
unreachable at the end of its grace period; their leases bring them back)."""


class StopCounter:
    """Turns the signals received into stop requests: graceful first, then immediate.
    Each signal is logged on ``log``."""

    def __init__(self, stop: Callable[[bool], None], log: logging.Logger = logger) -> None:
        self.stop = stop
        self.log = log
        self.received = 0

    def __call__(self, signum: int) -> None:
        self.received += 1
        graceful = self.received == 1
        self.log.warning(
            "received %s: %s",
            signal.Signals(signum).name,
            "stopping gracefully" if graceful else "stopping now",
        )
        self.stop(graceful)


@contextmanager
def stop_on_signals(
    stop: Callable[[bool], None],
    loop: asyncio.AbstractEventLoop | None = None,
    log: logging.Logger = logger,
) -> Iterator[StopCounter]:
    """Call ``stop(True)`` on the first SIGTERM/SIGINT and ``stop(False)`` on each later one;
    each signal is logged on ``log`` (the caller's logger, e.g. ``fairque.scheduler...``).

    With ``loop`` (the running loop, in the main thread), ``stop`` runs on the loop.
    Does nothing outside the main thread, where Python cannot install handlers. The
    handlers in place before are restored on exit.
    """
    counter = StopCounter(stop, log)
    if threading.current_thread() is not threading.main_thread():
        yield counter
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    try:
        for sig in STOP_SIGNALS:
            if loop is None:
                signal.signal(sig, _frame_handler(counter))
            else:
                loop.add_signal_handler(sig, counter, sig)
        yield counter
    finally:
        for sig, old in previous.items():
            if loop is not None:
                loop.remove_signal_handler(sig)
            signal.signal(sig, old if old is not None else signal.SIG_DFL)


def _frame_handler(counter: StopCounter) -> Callable[[int, FrameType | None], None]:
    def handle(signum: int, frame: FrameType | None) -> None:
        counter(signum)

    return handle
