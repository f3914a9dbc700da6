"""Branch functions for the validation tests (read by dag validate, never run)."""

from __future__ import annotations

from fairque import branch


def picks_a_or_ghost(flag: bool = True) -> str:
    if flag:
        return "a"
    return "ghost"


def picks_computed(names: list[str]) -> list[str]:
    return [n for n in names if n]


@branch(task_id="route")
def route() -> list[str]:
    return ["a", "b"]


def picks_ingest_or_small() -> str:
    """Literal names a branch inside group ``work`` may mean: a task group, a sibling."""
    if len("x") == 1:
        return "ingest"
    return "small"
