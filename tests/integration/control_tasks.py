"""Branch and sensor task functions for the tests (importable as
tests.integration.control_tasks, so workers run them)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fairque import branch, sensor, task


@branch(task_id="choose")
def choose(which: Any = "left") -> Any:
    """Follow ``which`` (a name, a list of names, or None)."""
    return which


@task(task_id="left")
def left() -> str:
    return "left"


@task(task_id="right")
def right() -> str:
    return "right"


@task(task_id="after_left")
def after_left() -> str:
    return "after_left"


@task(task_id="join", trigger_rule="none_failed_min_one_success")
def join() -> str:
    return "joined"


@task(task_id="strict_join")
def strict_join() -> str:
    """An all_success join: skipped when a branch was skipped."""
    return "strict"


@sensor(task_id="wait_file", poke_interval_seconds=0.2, timeout_seconds=30)
def wait_file(path: str) -> bool:
    """True once ``path`` exists."""
    return Path(path).exists()


@sensor(task_id="never", poke_interval_seconds=0.1, timeout_seconds=0.6)
def never() -> bool:
    """Never satisfied: times out."""
    return False


@sensor(task_id="never_soft", poke_interval_seconds=0.1, timeout_seconds=0.6, soft_fail=True)
def never_soft() -> None:
    """Never satisfied (None means not yet too): skipped at its timeout."""
    return None


@sensor(task_id="broken_sensor", poke_interval_seconds=0.1, max_retries=1)
def broken_sensor() -> bool:
    raise RuntimeError("the sensor's check broke")


@sensor(task_id="pokes_then_value", poke_interval_seconds=0.1, timeout_seconds=30)
def pokes_then_value(after: float) -> Any:
    """Not yet until ``after`` (epoch seconds), then a value (the task's result)."""
    return {"met_at": time.time()} if time.time() >= after else False


@task(task_id="busy")
def busy(seconds: float) -> float:
    """Hold a slot for ``seconds``; returns when it started."""
    started = time.time()
    time.sleep(seconds)
    return started
