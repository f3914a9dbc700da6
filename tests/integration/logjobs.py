"""@task functions that write output, for the attempt-log tests
(importable as tests.integration.logjobs)."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path

from fairque import task

logger = logging.getLogger("tests.logjobs")


@task(task_id="chatty")
def chatty(tag: str, lines: int = 3, pause: float = 0.0) -> str:
    """Print ``lines`` lines tagged ``tag`` to stdout, one to stderr and one log record."""
    for n in range(lines):
        print(f"{tag} line {n}")
        time.sleep(pause)
    print(f"{tag} to stderr", file=sys.stderr)
    logger.warning("%s via logging", tag)
    return tag


@task(task_id="achatty")
async def achatty(tag: str, lines: int = 3, pause: float = 0.0) -> str:
    """The ``async def`` form of :func:`chatty` (awaits between lines)."""
    for n in range(lines):
        print(f"{tag} line {n}")
        await asyncio.sleep(pause)
    logger.warning("%s via logging", tag)
    return tag


@task(task_id="flaky", max_retries=2, retry_delay_seconds=0.1)
def flaky(flag: str) -> str:
    """Print which attempt this is, fail until the file ``flag`` exists, then succeed."""
    count = Path(flag + ".count")
    seen = int(count.read_text()) + 1 if count.exists() else 1
    count.write_text(str(seen))
    print(f"attempt {seen} starts")
    if not Path(flag).exists():
        Path(flag).touch()
        raise RuntimeError(f"attempt {seen} fails")
    print(f"attempt {seen} succeeds")
    return "ok"


@task(task_id="flood")
def flood(kib: int) -> int:
    """Print about ``kib`` KiB of text."""
    line = "x" * 1023
    for _ in range(kib):
        print(line)
    return kib


@task(task_id="slow_talker")
def slow_talker(seconds: float) -> str:
    """Print one line at once, then sleep (a worker can be killed meanwhile)."""
    print("before the kill", flush=True)
    time.sleep(seconds)
    print("never stored")
    return "done"


@task(task_id="until_flag", max_retries=0)
def until_flag(flag: str) -> str:
    """Print a line, then fail until the file ``flag`` exists (a fix made by hand)."""
    print(f"flag present: {Path(flag).exists()}")
    if not Path(flag).exists():
        raise RuntimeError("no flag yet")
    return "ok"
