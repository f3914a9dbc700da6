"""The dashboard's answer times at scale: 10,000 tenants holding 100,000 queued tasks and
1,000 DAG runs (full sizes), every page and API call timed through the ASGI app
(``fairque.ui.create_app`` in Starlette's TestClient: the app and its Redis reads, no
network), one figure per call, in ms (median of the calls of each repetition).
Every 10th tenant has a policy and 1,000 tasks are started, so the overview shows caps,
rates and served figures; the read of the share totals (every tenant) is timed too.
Target (issue 14): each under 200 ms."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from fairque import FairQueueConfig, Task
from fairque.dag.loader import load_dags
from fairque.dag.runs import trigger
from tests.performance.context import Bench
from tests.performance.systems import NOOP, FairqueSystem

SCENARIO = "dashboard"
TARGET_MS = 200.0
CALLS = 5  # timed calls of each endpoint per repetition (after one warm-up call)
CHUNK = 1_000
STARTED = 1_000  # tasks popped (and left running): served figures for the overview
DAG_ID = "bench_dashboard"
DAG_FILE = f"""
dag_id: {DAG_ID}
schedule: "0 * * * *"
tenant: bench-dag
tasks:
  extract: {{callable: "{NOOP}"}}
  transform: {{callable: "{NOOP}", depends_on: [extract]}}
  load: {{callable: "{NOOP}", depends_on: [transform]}}
"""


def fill(bench: Bench, fairque: FairqueSystem, folder: Path) -> tuple[str, str]:
    """Queue the tasks over the tenants, give every 10th tenant a policy, start
    :data:`STARTED` tasks (served in the last minute) and create the runs; (a run id, a
    task id)."""
    sizes = bench.sizes
    per_tenant = max(1, sizes.ui_tasks // sizes.ui_tenants)
    tasks = [
        Task.create(f"tenant-{i:05d}", func=NOOP, priority=1 + (j % 5))
        for i in range(sizes.ui_tenants)
        for j in range(per_tenant)
    ]
    for start in range(0, len(tasks), CHUNK):
        fairque.queue.push_batch(tasks[start : start + CHUNK])
    for i in range(0, sizes.ui_tenants, 10):
        fairque.queue.set_tenant_policy(f"tenant-{i:05d}", weight=2, max_running=5, rate="100/s")
    for _ in range(min(STARTED, len(tasks))):
        fairque.queue.pop()
    (folder / f"{DAG_ID}.yaml").write_text(DAG_FILE, encoding="utf-8")
    dag = load_dags(folder).get(DAG_ID)
    run_id = ""
    for _ in range(sizes.ui_runs):
        run_id = trigger(fairque.queue, dag).run_id
    task_id = fairque.queue.get_run(run_id).task_ids["extract"]
    return run_id, task_id


def endpoints(run_id: str, task_id: str, pages: int) -> list[tuple[str, str]]:
    """(figure name, path) of every call timed; names show ``{run}``/``{task}`` for ids."""
    run, task = quote(run_id, safe=""), quote(task_id, safe="")
    paths = [
        "/",
        "/?sort=user&order=asc&page=100",
        "/?search=tenant-0999",
        "/api/v1/overview",
        f"/api/v1/tenants?sort=running&page={pages}",
        "/workers",
        "/api/v1/workers",
        "/dags",
        "/api/v1/dags",
        f"/dags/{DAG_ID}",
        f"/api/v1/dags/{DAG_ID}",
        "/runs",
        "/runs?page=10",
        "/api/v1/runs?page=10",
        f"/runs/{run}",
        f"/runs/{run}/live?task=extract",
        f"/api/v1/runs/{run}",
        f"/tasks/{task}",
        f"/api/v1/tasks/{task}",
        f"/api/v1/tasks/{task}/attempts",
        f"/api/v1/tasks/{task}/logs",
    ]
    return [
        ("GET " + p.replace(task, "{task}").replace(run, "{run}").replace(str(pages), "{last}"), p)
        for p in paths
    ]


def totals_read(bench: Bench, fairque: FairqueSystem, note: str) -> None:
    """The overview's share totals (every tenant, summed on the server by
    ``tenant_totals.lua``; an overview reads them when they are older than 5 s)."""
    for _ in range(bench.reps):
        fairque.queue.tenant_share_totals()  # warm-up
        times = []
        for _ in range(CALLS):
            begin = time.perf_counter()
            fairque.queue.tenant_share_totals()
            times.append((time.perf_counter() - begin) * 1000)
        bench.figures.add(
            "fairque",
            SCENARIO,
            "overview's share totals (every tenant; read at most every 5 s)",
            statistics.median(times),
            "ms",
            higher_is_better=False,
            note=note,
        )


def run(bench: Bench, fairque: FairqueSystem) -> None:
    from starlette.testclient import TestClient

    from fairque.ui import create_app

    bench.flush()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        run_id, task_id = fill(bench, fairque, folder)
        bench.say(
            f"{bench.sizes.ui_tenants:,} tenants, {bench.sizes.ui_tasks:,} queued tasks, "
            f"{bench.sizes.ui_runs:,} runs written in {time.perf_counter() - started:.1f} s"
        )
        app = create_app(FairQueueConfig.create_default(redis=bench.redis_url), dags_folder=folder)
        pages = max(1, bench.sizes.ui_tenants // 50)
        note = f"{bench.sizes.ui_tenants:,} tenants, {bench.sizes.ui_tasks:,} tasks, runs"
        with TestClient(app, base_url="http://127.0.0.1:8844") as client:
            totals_read(bench, fairque, note)
            for name, path in endpoints(run_id, task_id, pages):
                for _ in range(bench.reps):
                    assert client.get(path).status_code == 200, path  # warm-up
                    times = []
                    for _ in range(CALLS):
                        begin = time.perf_counter()
                        response = client.get(path)
                        times.append((time.perf_counter() - begin) * 1000)
                        assert response.status_code == 200, (path, response.text[:200])
                    bench.figures.add(
                        "fairque",
                        SCENARIO,
                        name,
                        statistics.median(times),
                        "ms",
                        higher_is_better=False,
                        note=note,
                    )
    bench.flush()
