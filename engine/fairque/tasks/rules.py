"""Trigger rules: when a task with upstreams may run, as pure functions (Airflow semantics).

Only four counts over the task's upstreams matter: ``total``, ``finished``, ``failed``
and ``canceled`` (``done = finished + failed + canceled``; other states are still
active). A task with no upstream always runs. Otherwise, for each rule:

================  ==================================  ==================================
rule              run when                            cancel when
================  ==================================  ==================================
all_success       finished == total                   failed + canceled > 0
all_done          done == total                       never
all_failed        done == total and finished == 0     finished > 0
one_success       finished > 0                        done == total and finished == 0
one_failed        failed > 0                          done == total and failed == 0
none_failed       done == total and failed == 0       failed > 0
================  ==================================  ==================================

and ``wait`` otherwise. The two conditions of a row never hold together, so the order
in which they are tested does not matter. CANCELED upstreams count as "skipped": they
are allowed by ``none_failed`` and ``all_done`` and count as not succeeded for
``all_success`` and ``one_success``. The Lua scripts implement this same table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from fairque.core.errors import TaskError, shorten
from fairque.core.models import TRIGGER_RULES, TaskState

Decision = Literal["wait", "run", "cancel"]


@dataclass(frozen=True)
class UpstreamCounts:
    """How many upstreams there are and how many ended in each terminal state."""

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
        """Count ``states`` (TaskState members or their string values)."""
        return cls(
            total=len(states),
            finished=sum(1 for s in states if s == TaskState.FINISHED),
            failed=sum(1 for s in states if s == TaskState.FAILED),
            canceled=sum(1 for s in states if s == TaskState.CANCELED),
        )


_Row = Callable[[UpstreamCounts], tuple[bool, bool]]
"""A rule: counts -> (run condition, cancel condition)."""

_RULES: dict[str, _Row] = {
    "all_success": lambda c: (c.finished == c.total, c.failed + c.canceled > 0),
    "all_done": lambda c: (c.done == c.total, False),
    "all_failed": lambda c: (c.done == c.total and c.finished == 0, c.finished > 0),
    "one_success": lambda c: (c.finished > 0, c.done == c.total and c.finished == 0),
    "one_failed": lambda c: (c.failed > 0, c.done == c.total and c.failed == 0),
    "none_failed": lambda c: (c.done == c.total and c.failed == 0, c.failed > 0),
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
