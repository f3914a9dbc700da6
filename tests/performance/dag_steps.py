"""The DAG scenario's chain: CHAIN_LENGTH steps, each the timed no-op as an ``@task`` with
its own name (``step00`` ... ``step19``)."""

from __future__ import annotations

from fairque import task
from tests.performance.jobs import timed

CHAIN_LENGTH = 20
chain_steps = [task(task_id=f"step{i:02d}")(timed) for i in range(CHAIN_LENGTH)]
