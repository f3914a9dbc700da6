"""Starting fairque is cheap: ``import fairque`` and the fast commands load no heavy
library they do not use, and their start-up cost stays within a budget.

The modules loaded are checked in fresh interpreters (``sys.modules``), which holds on
any machine. The cost is the CPU time (user + system) of a fresh process, best of a few
runs, as a multiple of ``python -c pass``, so a slow or busy machine does not fail it;
``FAIRQUE_TEST_TIME_SCALE`` (default 1.0) widens the budgets further.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.timing import TIME_SCALE, budget

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("redis", "redis.asyncio", "networkx", "jsonschema", "graphviz")
LAZY_PACKAGES = (
    "fairque",
    "fairque.dag",
    "fairque.monitoring",
    "fairque.queue",
    "fairque.server",
    "fairque.tasks",
    "fairque.worker",
)

# The CLI as the console script runs it, with sys.argv set to the given arguments.
CLI = (
    "import sys; sys.argv = ['fairque', *{args!r}]\n"
    "from fairque.cli.app import main\n"
    "try:\n"
    "    main()\n"
    "except SystemExit:\n"
    "    pass\n"
)
REPORT = "\nimport json, sys; print(json.dumps(sorted(sys.modules)), file=sys.__stderr__)"


def loaded_by(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    done = subprocess.run(
        [sys.executable, "-c", code + REPORT],
        capture_output=True,
        text=True,
        timeout=budget(60),
        check=False,
        cwd=REPO,
    )
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def cpu_seconds(code: str) -> float:
    """The CPU time (user + system) of a fresh interpreter running ``code``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    assert proc.returncode == 0, code
    return usage.ru_utime + usage.ru_stime


def cost_ratio(code: str, runs: int = 4) -> float:
    """Best CPU time of ``code`` over best CPU time of ``python -c pass``, the two run
    in turn so that both see the same load."""
    costs = [(cpu_seconds(code), cpu_seconds("pass")) for _ in range(runs)]
    return min(c for c, _ in costs) / min(p for _, p in costs)


def test_import_fairque_loads_no_heavy_library() -> None:
    loaded = loaded_by("import fairque")
    assert loaded & {*HEAVY, "yaml", "croniter", "rich", "typer"} == set()
    assert not any(m.startswith(("fairque.queue.", "fairque.worker.")) for m in loaded)


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["dag", "--help"]])
def test_fast_commands_load_neither_redis_nor_the_queue(args: list[str]) -> None:
    loaded = loaded_by(CLI.format(args=args))
    assert loaded & {*HEAVY, "yaml", "croniter"} == set()
    assert "fairque.cli.app" in loaded
    unwanted = ("fairque.queue.", "fairque.worker.", "fairque.dag.", "fairque.scheduler.")
    assert sorted(m for m in loaded if m.startswith(unwanted)) == []


def test_dag_validate_loads_neither_redis_nor_networkx_nor_graphviz_nor_the_worker() -> None:
    loaded = loaded_by(CLI.format(args=["dag", "validate", "dags/"]))
    assert {"fairque.dag.validate", "jsonschema"} <= loaded
    assert loaded & {"redis", "redis.asyncio", "networkx", "graphviz"} == set()
    assert sorted(m for m in loaded if m.startswith("fairque.worker.")) == []


def test_a_sync_queue_does_not_need_the_async_queue_module() -> None:
    loaded = loaded_by("from fairque import TaskQueue")
    assert "fairque.queue.sync_queue" in loaded
    assert "fairque.queue.async_queue" not in loaded
    assert "networkx" not in loaded


BUDGETS = {
    # What each may cost, in runs of `python -c pass` (10-12 ms of CPU on the 2-core VM
    # of the issue, where 45x is the 0.5 s it asks for). Measured there: `import fairque`
    # 2.5x, `--version` and `--help` 27-30x (typer and rich's console are most of it).
    # The margin absorbs a busy machine.
    "import fairque": ("import fairque", 6.0),
    "fairque --version": (CLI.format(args=["--version"]), 60.0),
    "fairque --help": (CLI.format(args=["--help"]), 60.0),
}


@pytest.mark.parametrize("name", sorted(BUDGETS))
def test_start_up_cost_is_within_budget(name: str) -> None:
    code, limit = BUDGETS[name]
    ratio = cost_ratio(code)
    assert ratio <= limit * TIME_SCALE, f"{name}: {ratio:.1f}x python -c pass (budget {limit}x)"


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_lazy_packages_export_exactly_their_names(package: str) -> None:
    module = importlib.import_module(package)
    exports: dict[str, str] = module._EXPORTS
    assert sorted(module.__all__) == sorted(exports)
    assert set(module.__all__) <= set(dir(module))
    for name, home in exports.items():
        assert getattr(module, name) is getattr(importlib.import_module(home), name)
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = module.no_such_name


def test_the_documented_imports_work() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from fairque import task, xcom_task, Task, TaskQueue, AsyncTaskQueue, Worker, "
            "AsyncWorker, TaskHandler, FairQueueConfig, Priority, TaskState\n"
            "from fairque import *\n"
            "print(Worker.__module__, task.__module__, 'run_in_process' in dir())",
        ],
        capture_output=True,
        text=True,
        timeout=budget(60),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["fairque.worker.sync_worker", "fairque.tasks.decorators", "True"]
