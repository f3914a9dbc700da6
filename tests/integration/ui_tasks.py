"""@task functions of the dashboard tests' DAGs (tests/integration/ui_dags), importable as
``tests.integration.ui_tasks``."""

from __future__ import annotations

import time
from pathlib import Path

from fairque import xcom_pull, xcom_push

HOSTILE = '<script>alert("x")</script>"><img src=x onerror=alert(1)>'
"""Text that would run a script if a page printed it unescaped."""


def hello(name: str, times: int = 1, loud: bool = False) -> str:
    """Print a greeting per ``times`` and push it as "greeting"."""
    text = f"hello {name}" + ("!" if loud else "")
    for _ in range(times):
        print(text, flush=True)
    xcom_push("greeting", text)
    return text


def shout() -> str:
    """Pull "greeting" and return it upper-cased."""
    return str(xcom_pull("greeting")).upper()


def flaky(directory: str) -> str:
    """Fail until ``{directory}/flag`` exists."""
    print(f"looking for {directory}/flag", flush=True)
    if not (Path(directory) / "flag").exists():
        raise RuntimeError("the flag file is not there yet")
    return "ok"


def slow(seconds: float = 0.5) -> float:
    time.sleep(seconds)
    return seconds


def hostile() -> None:
    """Print and raise text that a page must escape."""
    print(HOSTILE, flush=True)
    raise RuntimeError(HOSTILE)
