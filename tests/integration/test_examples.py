"""Every script in examples/ runs against the test server, so the README never lies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.timing import budget

pytestmark = pytest.mark.slow  # a Python process per example

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(
    p.stem
    for p in (ROOT / "examples").glob("*.py")
    if p.stem not in ("__init__", "common", "etl", "dag_tasks", "dynamic", "flow_tasks")  # tasks
)

EXPECTED = {
    "manual_task_management": ["Task pushed: True", "Active tasks: 0"],
    "custom_task_handler": ["finished result={'processed': 7}", "finished result=42"],
    "quickstart": [
        "Confirmation is deferred",
        "Confirmation result: confirmation sent for 12345",
        "Active tasks: 0",
    ],
    "pipelines": [
        "linear: extract=finished, transform=finished, load=finished",
        "complex: extract=finished, transform=finished, validate=finished, backup=finished, "
        "load=finished, notify=finished",
        "complex load result: {'status': 'loaded', 'records': 2000}",
    ],
    "xcom": [
        "states: extract=finished, transform=finished",
        "pull: extracted (36 bytes) by extract -> transform",
        "in-process transform: {'processed_records': 2000, 'source': 'file'}",
    ],
}


def run_example(name: str, redis_url: str, state_dir: Path) -> str:
    """Run ``examples/<name>.py`` against ``redis_url``; its output, checked against
    :data:`EXPECTED` (the other tests run the examples through this, on other servers)."""
    env = {**os.environ, "FAIRQUE_REDIS_URL": redis_url, "FAIRQUE_STATE_DIR": str(state_dir)}
    result = subprocess.run(
        [sys.executable, "-m", f"examples.{name}"],
        capture_output=True,
        text=True,
        timeout=budget(60),
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert name in EXPECTED, f"say what examples/{name}.py must print in EXPECTED"
    for text in EXPECTED[name]:
        assert text in result.stdout, result.stdout
    return result.stdout


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs(name: str, redis_url: str, redis_client: object, tmp_path: Path) -> None:
    run_example(name, redis_url, tmp_path)
