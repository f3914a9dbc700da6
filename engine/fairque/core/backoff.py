"""How the worker and scheduler loops wait out a Redis outage: exponential backoff with
jitter, capped, and one WARNING per outage (not one per attempt). No I/O here."""

from __future__ import annotations

import logging
import random
import time


def backoff_delay(failures: int, initial: float, maximum: float, jitter: float) -> float:
    """The wait after the ``failures``-th failure in a row (1, 2, ...): ``initial``
    doubled each time, capped at ``maximum``, times ``jitter`` (from 0.5 to 1.0, so
    many clients that lost the server together do not come back together)."""
    base = min(maximum, initial * 2.0 ** min(max(failures - 1, 0), 30))
    return base * jitter


class Backoff:
    """The state of one loop's retries after transient errors.

    ``failed(error)`` counts a failure, logs the first of an outage at WARNING (later
    ones at DEBUG) and returns how long to wait; ``succeeded()`` ends the outage and
    logs at INFO how long it lasted.
    """

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        initial: float = 0.1,
        maximum: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        self.logger = logger
        self.what = what
        self.initial = initial
        self.maximum = maximum
        self.failures = 0
        self._rng = rng or random.Random()
        self._since = 0.0

    def failed(self, error: BaseException) -> float:
        """Note one more failure; returns the seconds to wait before the next try."""
        self.failures += 1
        delay = backoff_delay(
            self.failures, self.initial, self.maximum, self._rng.uniform(0.5, 1.0)
        )
        if self.failures == 1:
            self._since = time.monotonic()
            self.logger.warning(
                "%s: %s; retrying with backoff up to %.1f s", self.what, error, self.maximum
            )
        else:
            self.logger.debug("%s: attempt %d failed: %s", self.what, self.failures, error)
        return delay

    def succeeded(self) -> None:
        """Note a success; after an outage, log that it ended."""
        if self.failures:
            self.logger.info(
                "%s: Redis answers again after %d failed attempts (%.1f s)",
                self.what,
                self.failures,
                time.monotonic() - self._since,
            )
            self.failures = 0
