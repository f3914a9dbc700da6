"""Run N worker processes and restart any that dies (``fairque worker --processes N``).

SIGTERM/SIGINT are passed on to the children, which stop gracefully; a second signal is
passed on too, so they stop at once. The supervisor exits when every child has.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Callable
from types import FrameType

from fairque.worker.signals import STOP_SIGNALS

logger = logging.getLogger("fairque.worker")


def supervise(command_for: Callable[[int], list[str]], processes: int) -> int:
    """Keep ``processes`` children running ``command_for(index)`` until a signal arrives."""
    children = {i: subprocess.Popen(command_for(i)) for i in range(processes)}
    restarts = dict.fromkeys(children, 0)
    stopping = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in STOP_SIGNALS}
    try:
        while True:
            alive = [c for c in children.values() if c.poll() is None]
            if stopping and not alive:
                return 0
            if not stopping:
                for index, child in list(children.items()):
                    code = child.poll()
                    if code is not None:
                        restarts[index] += 1
                        delay = min(10.0, 0.5 * 2 ** min(restarts[index], 5))
                        logger.warning(
                            "worker process %d exited with %s; restarting in %.1f s",
                            index,
                            code,
                            delay,
                        )
                        time.sleep(delay)
                        if not stopping:
                            children[index] = subprocess.Popen(command_for(index))
            time.sleep(0.2)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
