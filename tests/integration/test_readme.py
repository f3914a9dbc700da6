"""Every Python block of README.md runs as pasted into a file, with nothing configured.

Each block is written to a file in a fresh folder (named by its first line when that
is ``# name.py``) and run with ``python file.py`` in that folder: no FAIRQUE_*
variable but ``FAIRQUE_STATE_DIR`` (the per-test folder, whose embedded server the
block finds or starts and the autouse fixture stops), the repository on PYTHONPATH.
The seed's own quickstart, pasted the same way, shows the rule for a script's tasks.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.timing import budget

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M)

# a phrase that identifies the block -> what its run must print
EXPECTED = {
    "queue.finish(task": ["0"],
    "class MyTaskHandler": ["{'done': True}"],
    "# pipeline_demo.py": [
        "{'source': 'api', 'records': 1000}",
        "'load': <TaskState.FINISHED: 'finished'>",
        "{'processed_records': 2000}",
        "'key': 'extracted'",
    ],
    "TaskScheduler(": ["schedule_id='daily_report'", "cron_expr='0 9 * * *'"],
    "queue.set_tenant_policy(": ["5 1.6666666666666667"],
    'queue="gpu"': ["{'default': 1, 'gpu': 1}", "gpu default"],
    'queue.set_pool("gpus"': [
        "['None', 'gpus'] None",
        "[{'pool': 'gpus', 'slots': 1, 'running': 1, 'queued': 1}]",
    ],
    "# flow_control_demo.py": [
        "'work.data_ready': 'finished'",
        "'work.small': 'skipped'",
        "'work.large': 'finished'",
        "'report': 'finished'",
    ],
    'Mount("/fairque"': ["['/fairque']"],
    "# taskflow_demo.py": [
        "{'source': '?', 'count': 5, 'total': 450}",
        "{'files': 50, 'lines': 2450, 'first': 'in/file_000.csv', 'last': 'in/file_049.csv'}",
        "['process_file[0]', 'process_file[1]']",
    ],
}

pytestmark = pytest.mark.slow


def run_script(
    folder: Path, name: str, source: str, state_dir: Path
) -> subprocess.CompletedProcess[str]:
    """``python name`` in ``folder`` with nothing configured but the state folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(source)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAIRQUE_")}
    env.update(FAIRQUE_STATE_DIR=str(state_dir), PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, name],
        capture_output=True,
        text=True,
        timeout=budget(60),
        env=env,
        cwd=folder,
        check=False,
    )


def expected_for(block: str) -> list[str]:
    found = [texts for phrase, texts in EXPECTED.items() if phrase in block]
    assert len(found) == 1, f"say what this README block must print in EXPECTED:\n{block}"
    return found[0]


def test_every_block_has_an_expectation() -> None:
    assert len(BLOCKS) >= len(EXPECTED)
    for block in BLOCKS:
        expected_for(block)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index: int, tmp_path: Path, state_dir: Path) -> None:
    block = BLOCKS[index]
    first = block.splitlines()[0]
    name = first[2:].strip() if re.fullmatch(r"# \w+\.py", first) else f"readme_{index}.py"
    result = run_script(tmp_path / "work", name, block, state_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    for text in expected_for(block):
        assert text in result.stdout, result.stdout + result.stderr


# The seed README's quickstart, as a newcomer pastes it into quickstart_seed.py.
SEED_TASKS = '''\
from fairque import task, TaskQueue, FairQueueConfig, Priority


@task(task_id="process_order", priority=Priority.HIGH, max_retries=3)
def process_order(order_id: int, customer_id: str) -> dict:
    """Process customer order."""
    print(f"Processing order {order_id} for customer {customer_id}")
    result = {
        "order_id": order_id,
        "customer_id": customer_id,
        "status": "processed",
        "total": 99.99
    }
    return result


@task(task_id="send_confirmation", depends_on=["process_order"])
def send_confirmation(order_id: int):
    """Send order confirmation email."""
    print(f"Sending confirmation for order {order_id}")
'''
SEED_MAIN = """\
# Create configuration
config = FairQueueConfig.create_default(
    worker_id="worker-001",
    assigned_users=["user:1", "user:2", "user:3"],
    steal_targets=["user:4", "user:5"]
)

# Create and execute tasks
with TaskQueue(config) as queue:
    # Create tasks by calling decorated functions
    order_task = process_order(12345, "customer@example.com")
    confirmation_task = send_confirmation(12345)

    # Execute immediately
    result = order_task()
    print(f"Order result: {result}")

    # Or push to queue for worker processing
    queue.push(order_task)
    queue.push(confirmation_task)  # Will wait for process_order to complete

    # Get queue statistics
    stats = queue.get_stats()
    print(f"Active tasks: {stats.get('tasks_active', 0)}")
"""


def test_seed_quickstart_runs_locally_and_a_push_names_the_fix(
    tmp_path: Path, state_dir: Path
) -> None:
    result = run_script(tmp_path, "quickstart_seed.py", SEED_TASKS + "\n\n" + SEED_MAIN, state_dir)
    assert "Processing order 12345 for customer customer@example.com" in result.stdout
    assert "Order result: {'order_id': 12345," in result.stdout
    assert result.returncode == 1
    assert "TaskError: cannot push task 'process_order'" in result.stderr
    assert "line 24: `config = FairQueueConfig.create_default(`" in result.stderr
    assert "move the @task functions into a module" in result.stderr
    assert "fairque worker --allowed-modules quickstart_seed" in result.stderr
    assert "Active tasks" not in result.stdout  # nothing after the refused push ran


def test_seed_quickstart_with_a_guarded_top_level_is_pushed_and_run_by_a_worker(
    tmp_path: Path, state_dir: Path
) -> None:
    guarded = "\n".join(("    " + line if line else line) for line in SEED_MAIN.splitlines())
    worker = (
        "    from fairque import Worker\n"
        "    run_here = config.with_worker(\n"
        "        allowed_modules=['quickstart_seed'], assigned_users=['*']\n"
        "    )\n"
        "    with TaskQueue(run_here) as queue, Worker(run_here) as worker:\n"
        "        worker.start_background()\n"
        "        print(queue.wait_for(['process_order', 'send_confirmation'], timeout=30))\n"
        "        print('worker result:', queue.get_task('process_order').result)\n"
    )
    source = f'{SEED_TASKS}\n\nif __name__ == "__main__":\n{guarded}\n{worker}'
    result = run_script(tmp_path, "quickstart_seed.py", source, state_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Active tasks: 2" in result.stdout
    assert "'process_order': <TaskState.FINISHED" in result.stdout
    assert "'send_confirmation': <TaskState.FINISHED" in result.stdout
    assert "worker result: {'order_id': 12345," in result.stdout
