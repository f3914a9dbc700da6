"""What the Sentinel and Cluster tests run through their URL: a worker process, a
scheduler process firing a schedule, and a DAG run triggered from the CLI."""

from __future__ import annotations

from pathlib import Path

from fairque import FairQueueConfig, Task, TaskQueue, TaskState
from fairque.scheduler.scheduler import TaskScheduler
from tests.integration.procs import CLI, Procs, run_cli
from tests.timing import wait_until

JOBS = "tests.integration.jobs"


def worker_scheduler_and_a_dag(url: str, tmp_path: Path, worker_name: str) -> None:
    """Six tasks of three tenants finish with their results, the scheduler fires twice,
    and ``dag trigger fan_out_in --wait`` succeeds, all through ``url``."""
    config = FairQueueConfig.create_default(redis=url)
    procs = Procs(tmp_path, url)
    try:
        with TaskQueue(config) as queue:
            scheduler = TaskScheduler(config)
            try:
                tick = Task.create("system", task_id="tick", func=f"{JOBS}:noop")
                scheduler.add_schedule("* * * * * *", tick, schedule_id="every-second")
            finally:
                scheduler.close()
            procs.worker(worker_name, "--async", "--allowed-modules", "tests,examples")
            procs.start("scheduler", [*CLI, "scheduler", "--no-dags", "--redis-url", url])
            ids = [
                queue.push(Task.create(f"u{n % 3}", func=f"{JOBS}:add", args=[n, 1]))["task_id"]
                for n in range(6)
            ]

            def finished() -> bool:
                return all(queue.get_task(t).state == TaskState.FINISHED for t in ids)

            wait_until(finished, 90, procs.tails)
            assert [queue.get_task(t).result for t in ids] == [n + 1 for n in range(6)]
            wait_until(lambda: len(queue.list_runs()) >= 2, 90, procs.tails)
            dag = run_cli("dag", "trigger", "fan_out_in", "--wait", "--redis-url", url)
            assert dag.returncode == 0, dag.stdout + dag.stderr + procs.tails()
    finally:
        procs.kill_all()
