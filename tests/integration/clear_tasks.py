"""@task functions for the clear tests (importable as tests.integration.clear_tasks).

Each call appends its name to ``{directory}/calls``, so a test counts executions across
worker threads; ``flaky`` fails until ``{directory}/flag`` exists."""

from __future__ import annotations

from pathlib import Path

from fairque import task, xcom_pull, xcom_push


def _record(directory: str, name: str) -> None:
    with open(Path(directory) / "calls", "a", encoding="utf-8") as out:
        out.write(name + "\n")


@task(task_id="extract", enable_xcom=True)
def extract(directory: str) -> int:
    """Push 10 as "rows"."""
    _record(directory, "extract")
    xcom_push("rows", 10)
    return 10


@task(task_id="flaky", enable_xcom=True, xcom_pulls=["rows"], max_retries=0)
def flaky(directory: str) -> int:
    """Double "rows" once the flag file exists; fail before."""
    _record(directory, "flaky")
    if not (Path(directory) / "flag").exists():
        raise RuntimeError("the flag file is not there yet")
    return int(xcom_pull("rows")) * 2


@task(task_id="load")
def load(directory: str) -> str:
    _record(directory, "load")
    return "loaded"


def calls(directory: Path) -> list[str]:
    """The names of the executed tasks, in order."""
    path = directory / "calls"
    return path.read_text(encoding="utf-8").split() if path.exists() else []


@task(task_id="gate")
def gate(directory: str, limit: float = 20.0) -> str:
    """Wait (at most ``limit`` seconds) until ``{directory}/open`` exists."""
    import time

    _record(directory, "gate")
    deadline = time.monotonic() + limit
    while not (Path(directory) / "open").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the gate never opened")
        time.sleep(0.05)
    return "passed"
