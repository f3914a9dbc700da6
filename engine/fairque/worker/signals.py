"""SIGTERM/SIGINT handling shared by the workers and the scheduler: the first signal
asks for a graceful stop, a second one for an immediate stop."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def stop_on_signals(stop: Callable[[bool], None], log: logging.Logger = logger) -> Iterator[None]:
    """Call ``stop(graceful=True)`` on the first signal, ``stop(False)`` on the next;
    each signal is logged on ``log`` (the caller's logger).

    Does nothing outside the main thread, where Python cannot install handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = 0

    def handle(signum: int, frame: FrameType | None) -> None:
        nonlocal received
        received += 1
        graceful = received == 1
        log.warning(
            "received %s: %s",
            signal.Signals(signum).name,
            "stopping gracefully" if graceful else "stopping now",
        )
        stop(graceful)

    previous = {sig: signal.signal(sig, handle) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
