"""Tasks and run callbacks for the run timeout and callback tests (importable as
tests.integration.run_ends). A callback appends the summary it got, as one JSON line,
to the file named by the run's conf ``log``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fairque import task
from tests.integration.jobs import sleep_then, until_canceled


@task
def ok() -> str:
    return "ok"


@task
def broken() -> None:
    raise ValueError("broken on purpose")


until_stopped = task(until_canceled)
"""Run until asked to stop (or ``seconds`` pass)."""

nap = task(sleep_then)
"""Sleep, then return a value."""


def record(summary: dict[str, Any]) -> None:
    """A run callback: append the summary to the run's log file."""
    with Path(summary["conf"]["log"]).open("a") as f:
        f.write(json.dumps(summary) + "\n")


def record_then_raise(summary: dict[str, Any]) -> None:
    """A run callback that records, then fails."""
    record(summary)
    raise RuntimeError("callback failed on purpose")


def calls(log: Path) -> list[dict[str, Any]]:
    """The summaries the callbacks recorded in ``log``."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]
