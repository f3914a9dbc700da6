"""Trigger rules: when a task with upstreams may run, as pure functions (Airflow semantics).

An upstream ends in one of four outcomes, named as in Airflow: ``success`` (FINISHED),
``failed`` (FAILED), ``upstream_failed`` (CANCELED because its own upstreams failed: the
record's ``upstream_failed`` flag) and ``skipped`` (any other CANCELED: by a rule that
skips, a branch that did not choose it or a sensor's ``soft_fail``, all three with the
record's ``skipped`` flag; or by hand, or by a run timeout). ``upstream_failed`` counts
as ``failed`` for every rule, as in Airflow, so :class:`UpstreamCounts` keeps ``total``,
``finished``, ``failed`` (failed + upstream_failed) and ``canceled`` (skipped); ``done``
is their sum. A task with no upstream always runs. Otherwise, for each rule:

================  ==================================  ========================================
rule              run when                            cancel when (as what)
================  ==================================  ========================================
all_success       finished == total                   failed > 0 (upstream_failed), else
                                                      canceled > 0 (skipped)
all_done          done == total                       never
all_failed        failed == total                     finished + canceled > 0 (skipped)
one_success       finished > 0                        done == total and finished == 0
                                                      (skipped if all skipped, else
                                                      upstream_failed)
one_failed        failed > 0                          done == total and failed == 0 (skipped)
none_failed       done == total and failed == 0       failed > 0 (upstream_failed)
none_failed_min_  done == total and failed == 0       failed > 0 (upstream_failed), else
one_success       and finished > 0                    done == total and finished == 0
                                                      (skipped)
always            at once (does not wait)             never
all_skipped       canceled == total                   finished + failed > 0 (skipped)
none_skipped      done == total and canceled == 0     canceled > 0 (skipped)
================  ==================================  ========================================

and ``wait`` otherwise (``always`` runs as soon as it is pushed, without waiting for its
upstreams, as in Airflow; use ``all_done`` for "after every upstream, however it ended").
The two conditions of a row never hold together, so the order
in which they are tested does not matter. On the queue a rule is decided each time an
upstream ends, on the upstreams ended so far, so the first condition met wins (an
``all_success`` task whose first ended upstream was skipped is skipped even if another
fails later, as in Airflow). The Lua scripts implement this same table
(``decide`` in lua/_common.lua).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from fairque.core.errors import TaskError, shorten
from fairque.core.models import TRIGGER_RULES, TaskState

Decision = Literal["wait", "run", "cancel"]
CancelCause = Literal["upstream_failed", "skipped"]

UPSTREAM_FAILED = "upstream_failed"
"""The pseudo-state :meth:`UpstreamCounts.of` counts as failed: a CANCELED upstream
whose record has ``upstream_failed`` set."""


@dataclass(frozen=True)
class UpstreamCounts:
    """How many upstreams there are and how many ended each way (``failed`` includes
    upstream_failed, ``canceled`` is the skipped ones)."""

    total: int
    finished: int
    failed: int
    canceled: int

    @property
    def done(self) -> int:
        """Upstreams that ended (finished, failed or canceled)."""
        return self.finished + self.failed + self.canceled

    @classmethod
    def of(cls, states: Sequence[TaskState | str]) -> UpstreamCounts:
        """Count ``states`` (TaskState members, their string values, or
        :data:`UPSTREAM_FAILED` for an upstream canceled because its upstreams failed)."""
        return cls(
            total=len(states),
            finished=sum(1 for s in states if s == TaskState.FINISHED),
            failed=sum(1 for s in states if s in (TaskState.FAILED, UPSTREAM_FAILED)),
            canceled=sum(1 for s in states if s == TaskState.CANCELED),
        )


_Row = Callable[[UpstreamCounts], tuple[bool, bool]]
"""A rule: counts -> (run condition, cancel condition)."""

_RULES: dict[str, _Row] = {
    "all_success": lambda c: (c.finished == c.total, c.failed + c.canceled > 0),
    "all_done": lambda c: (c.done == c.total, False),
    "all_failed": lambda c: (c.failed == c.total, c.finished + c.canceled > 0),
    "one_success": lambda c: (c.finished > 0, c.done == c.total and c.finished == 0),
    "one_failed": lambda c: (c.failed > 0, c.done == c.total and c.failed == 0),
    "none_failed": lambda c: (c.done == c.total and c.failed == 0, c.failed > 0),
    "none_failed_min_one_success": lambda c: (
        c.done == c.total and c.failed == 0 and c.finished > 0,
        c.failed > 0 or (c.done == c.total and c.finished == 0),
    ),
    "always": lambda c: (True, False),
    "all_skipped": lambda c: (c.canceled == c.total, c.finished + c.failed > 0),
    "none_skipped": lambda c: (c.done == c.total and c.canceled == 0, c.canceled > 0),
}
assert set(_RULES) == set(TRIGGER_RULES), "every trigger rule needs a row"


def decide_counts(rule: str, counts: UpstreamCounts) -> Decision:
    """``run``, ``cancel`` or ``wait`` for a task with trigger ``rule`` (see the table)."""
    row = _RULES.get(rule)
    if row is None:
        raise TaskError(
            f"unknown trigger_rule {shorten(rule)}; use one of {', '.join(TRIGGER_RULES)}"
        )
    if counts.total == 0:
        return "run"
    run, cancel = row(counts)
    if run:
        return "run"
    return "cancel" if cancel else "wait"


def decide(rule: str, upstream_states: Sequence[TaskState | str]) -> Decision:
    """``run``, ``cancel`` or ``wait`` given the current states of the task's upstreams."""
    return decide_counts(rule, UpstreamCounts.of(upstream_states))


def cancel_cause(rule: str, counts: UpstreamCounts) -> CancelCause:
    """Why a task that :func:`decide_counts` cancels is canceled: ``upstream_failed``
    (its dependents then count it as failed) or ``skipped`` (see the table)."""
    if rule in ("all_success", "none_failed", "none_failed_min_one_success") and counts.failed:
        return "upstream_failed"
    if rule == "one_success" and counts.canceled < counts.total:
        return "upstream_failed"
    return "skipped"


def outcome(state: TaskState, upstream_failed: bool = False) -> TaskState | str:
    """How an ended task counts for its dependents: its state, or :data:`UPSTREAM_FAILED`
    for a task canceled because its upstreams failed."""
    return UPSTREAM_FAILED if state is TaskState.CANCELED and upstream_failed else state
