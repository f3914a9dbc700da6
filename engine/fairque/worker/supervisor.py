"""Run N worker processes and restart any that dies (``fairque worker --processes N``).

SIGTERM/SIGINT are passed on to the children, which stop gracefully; a second signal is
passed on too, so they stop at once. The supervisor exits when every child has: with
code 3 (EXIT_GAVE_UP) when a child had to give up its tasks, else 0. A child
that dies is restarted after a backoff (0.5 s doubling to 10 s, back to 0.5 s once a
child has lived 30 s); the supervisor never sleeps through a signal.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from fairque.core.process import EXIT_GAVE_UP, STOP_SIGNALS

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.2
STABLE_SECONDS = 30.0


@dataclass
class _Child:
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    failures: int = 0
    restart_at: float | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command)
        self.started = time.monotonic()
        self.restart_at = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def supervise(command_for: Callable[[int], list[str]], processes: int) -> int:
    """Keep ``processes`` children running ``command_for(index)`` until a signal arrives."""
    children = [_Child(command_for(i)) for i in range(processes)]
    received: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        for child in children:
            if child.alive():
                child.process.send_signal(signum)  # type: ignore[union-attr]

    previous = {sig: signal.signal(sig, forward) for sig in STOP_SIGNALS}
    try:
        for child in children:
            child.start()
        while True:
            if received:
                if not any(child.alive() for child in children):
                    codes = [child.process.returncode for child in children if child.process]
                    return EXIT_GAVE_UP if EXIT_GAVE_UP in codes else 0
            else:
                for index, child in enumerate(children):
                    _tend(index, child, received)
            time.sleep(POLL_SECONDS)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _tend(index: int, child: _Child, received: list[int]) -> None:
    """Schedule the restart of a dead child, or restart it when its backoff is over."""
    now = time.monotonic()
    if child.alive():
        return
    if child.restart_at is None:
        lived = now - child.started
        child.failures = 1 if lived > STABLE_SECONDS else child.failures + 1
        delay = min(10.0, 0.5 * 2 ** (child.failures - 1))
        code = child.process.returncode if child.process else None
        logger.warning("worker process %d exited with %s; restarting in %.1f s", index, code, delay)
        child.restart_at = now + delay
    elif now >= child.restart_at:
        child.start()
        for signum in received:  # a signal that came while it was being started
            child.process.send_signal(signum)  # type: ignore[union-attr]
