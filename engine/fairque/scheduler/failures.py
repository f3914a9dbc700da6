"""Each schedule and DAG fires on its own: one that fails is logged, recorded and retried.

A pass of the scheduler handles every schedule (``schedule:{id}``, as lock holder) and
every scheduled DAG due now (``dag:{id}``) through :class:`Failures`. Whatever one raises (a stored
schedule that does not parse, a cron that never fires, task ids too long, a conf the DAG
refuses, a Redis command error on its keys) stays with it: the others fire on time, the
failing one is tried again on the next pass (a DAG: a second later; its cursor did not
move). A lost connection
(RedisUnavailableError) is not the schedule's fault and ends the pass as before.

The log says when a subject starts failing, when its reason changes and when it recovers,
not on every pass. At the end of a pass the failures that changed are written to
``fq:scheduler:errors`` (``reason``, ``since``, ``failures``) and the entries of the
subjects that fired are removed, which ``queue stats`` shows
and ``fairque health`` turns into alerts ("schedule X failing: reason").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
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
    """The schedules and DAGs failing, pass after pass (see the module docstring).

    Several schedulers share ``fq:scheduler:errors``, each writing only the subjects it
    handled: a failing one's entry (when it changed) and the removal of the entries of
    those that fired.
    """

    def __init__(self) -> None:
        self.failing: dict[str, Failure] = {}
        self._now = 0.0
        self._written: dict[str, str] = {}
        self._fired: set[str] = set()

    def begin(self, now: float) -> None:
        """Start a pass at ``now`` (server time, epoch seconds)."""
        self._now = now
        self._fired = set()

    def attempt(self, subject: str, action: Callable[[], list[T]]) -> list[T]:
        """``action()``, or ``[]`` when it fails (recorded, logged on a change)."""
        try:
            done = action()
        except RedisUnavailableError:
            raise
        except Exception as e:
            self.record(subject, e)
            return []
        self.succeeded(subject)
        return done

    def succeeded(self, subject: str) -> None:
        """``subject`` fired (or had nothing to fire) this pass."""
        self._fired.add(subject)
        if self.failing.pop(subject, None) is not None:
            logger.info("%s fires again", subject)

    def record(self, subject: str, error: Exception) -> None:
        """``subject`` failed with ``error`` this pass."""
        self._fired.discard(subject)
        reason = describe(error)
        known = self.failing.get(subject)
        if known is not None and known.reason == reason:
            known.failures += 1
            return
        unexpected = not isinstance(error, FairQueueError)
        logger.warning("%s failing: %s", subject, reason, exc_info=error if unexpected else None)
        self.failing[subject] = Failure(reason, self._now, (known.failures + 1) if known else 1)

    def forget(self, subjects: Iterable[str]) -> None:
        """Subjects that are gone (removed schedules, deleted DAG files)."""
        for subject in subjects:
            self.failing.pop(subject, None)
            self._fired.add(subject)

    def end(self) -> tuple[dict[str, str], list[str]]:
        """Close a pass: the entries of ``fq:scheduler:errors`` to write (the failing
        subjects whose entry changed) and to remove (the subjects that fired or are
        gone)."""
        entries = {s: json.dumps(asdict(f)) for s, f in self.failing.items()}
        put = {s: e for s, e in entries.items() if self._written.get(s) != e}
        drop = sorted(self._fired - entries.keys())
        for subject in drop:
            self._written.pop(subject, None)
        self._written.update(put)
        self._fired = set()
        return put, drop

    def forget_written(self) -> None:
        """The last write may not have happened (the pass failed): write again."""
        self._written = {}
