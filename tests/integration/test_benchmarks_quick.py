"""The benchmark suite's smoke test: ``run_benchmarks.py --quick --fairque-only`` runs every
fairque scenario against the test server and each produces finite numbers.

It checks that the suite works, never that a figure reaches a target. Peers are not
installed in the default environment (they come with ``uv sync --group bench``), so
``--fairque-only`` keeps the test independent of them.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.timing import budget

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "tests" / "performance" / "run_benchmarks.py"
SCENARIOS = {
    "ceiling",
    "enqueue",
    "throughput",
    "latency",
    "noisy",
    "jain",
    "dag",
    "memory",
    "stalls",
    "tenants",
    "dashboard",
    "durability",
    "cluster",
    "dag_files",
    "dagfire",
}


@pytest.mark.slow
@pytest.mark.timeout(360)
def test_quick_benchmarks_produce_every_fairque_figure(redis_url: str, tmp_path: Path) -> None:
    if not redis_url.startswith(("redis://", "unix://")):
        pytest.skip("the benchmark suite measures one plain server (redis://), as its peers need")
    output = tmp_path / "results.json"
    env = {**os.environ, "FAIRQUE_BENCH_REDIS_URL": redis_url}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--fairque-only", "--output", str(output)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=budget(350),
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    results = json.loads(output.read_text())

    assert results["mode"] == "quick"
    assert results["errors"] == []
    assert results["versions"]["fairque"]
    assert results["versions"]["redis_server"]
    assert results["machine"]["cpu_count"] >= 1
    figures = [f for f in results["figures"] if f["system"] == "fairque"]
    assert {f["scenario"] for f in figures} == SCENARIOS
    names = {(f["scenario"], f["name"]) for f in figures}
    assert ("throughput", "1 worker, 10,000 users") in names
    assert any(s == "throughput" and n.endswith("worker processes") for s, n in names)
    assert any(s == "tenants" and "10,000 active tenants, with policies" in n for s, n in names)
    assert any(s == "tenants" and n.startswith("pool of 2 slots") for s, n in names)
    assert any(s == "tenants" and n.startswith("queues a,b") for s, n in names)
    for figure in figures:
        assert figure["reps"], figure
        assert all(isinstance(v, float) and math.isfinite(v) for v in figure["reps"]), figure
        assert figure["median"] is not None, figure
    assert {t["result"] for t in results["targets"]} <= {"met", "missed", "n/a"}
    assert "fairque benchmarks" in done.stdout
