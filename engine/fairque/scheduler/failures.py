"""Each schedule and DAG fires on its own: one that fails is logged, recorded and retried.

A pass of the scheduler handles every schedule (``schedule:{id}``) and every scheduled
DAG (``dag:{id}``) through :meth:`Failures.attempt`. Whatever one raises (a stored
schedule that does not parse, a cron that never fires, task ids too long, a conf the DAG
refuses, a Redis command error on its keys) stays with it: the others fire on time, the
failing one is tried again on the next pass (its cursor did not move). A lost connection
(RedisUnavailableError) is not the schedule's fault and ends the pass as before.

The log says when a subject starts failing, when its reason changes and when it recovers,
not on every pass. At the end of a pass the failures are written to
``fq:scheduler:errors`` (``reason``, ``since``, ``failures``), which ``queue stats`` shows
and ``fairque health`` turns into alerts ("schedule X failing: reason").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TypeVar

from fairque.core.errors import FairQueueError, RedisUnavailableError

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class Failure:
    """Why a schedule or DAG failed, since when (server time) and in how many passes."""

    reason: str
    since: float
    failures: int = 1


def describe(error: BaseException) -> str:
    """A one-line reason for ``error`` (its type unless it is one of ours)."""
    text = str(error) or type(error).__name__
    if not isinstance(error, FairQueueError):
        text = f"{type(error).__name__}: {text}"
    return text.splitlines()[0][:500]


class Failures:
    """The schedules and DAGs failing, pass after pass (see the module docstring)."""

    def __init__(self) -> None:
        self.failing: dict[str, Failure] = {}
        self._attempted: set[str] = set()
        self._now = 0.0
        self._written: dict[str, str] | None = None

    def begin(self, now: float) -> None:
        """Start a pass at ``now`` (server time, epoch seconds)."""
        self._attempted = set()
        self._now = now

    def attempt(self, subject: str, action: Callable[[], list[T]]) -> list[T]:
        """``action()``, or ``[]`` when it fails (recorded, logged on a change)."""
        self._attempted.add(subject)
        try:
            done = action()
        except RedisUnavailableError:
            raise
        except Exception as e:
            self._failed(subject, e)
            return []
        if self.failing.pop(subject, None) is not None:
            logger.info("%s fires again", subject)
        return done

    def _failed(self, subject: str, error: Exception) -> None:
        reason = describe(error)
        known = self.failing.get(subject)
        if known is not None and known.reason == reason:
            known.failures += 1
            return
        unexpected = not isinstance(error, FairQueueError)
        logger.warning("%s failing: %s", subject, reason, exc_info=error if unexpected else None)
        self.failing[subject] = Failure(reason, self._now, (known.failures + 1) if known else 1)

    def end(self) -> dict[str, str] | None:
        """Close a pass: forget subjects that are gone (removed schedules, deleted DAG
        files); the failures as ``fq:scheduler:errors`` should hold them, or None when
        that is what was written last."""
        for subject in set(self.failing) - self._attempted:
            del self.failing[subject]
        entries = {s: json.dumps(asdict(f)) for s, f in self.failing.items()}
        if entries == self._written:
            return None
        self._written = entries
        return entries

    def forget_written(self) -> None:
        """The last write may not have happened (the pass failed): write again."""
        self._written = None
