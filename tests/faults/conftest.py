"""The fault suite: real process kills, outages and a stateful model of the scripts.

Run it with ``uv run pytest -m faults`` (CI's ``test_faults`` phase does). A plain
``uv run pytest`` leaves it out: its tests carry ``faults`` and ``slow``, and the hook
below deselects them unless the ``-m`` expression names ``faults`` or a path given on
the command line lies inside ``tests/faults``.

Each test reports its figures (tasks, kills, executions, reclaims, seconds) through the
``figures`` fixture: they are printed (seen with ``-s``) and repeated in a "fault
figures" section at the end of the run, and written to ``$FAIRQUE_FAULTS_REPORT`` when
that variable names a file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import make_config, make_queue, queue_kind
from tests.integration.test_worker_processes import queue

# Shared fixtures: the queue factories and `queue` (a connection to the clean test
# database); `procs` (processes killed at teardown) and `proxy` (a CuttableProxy to the
# server) come from tests/conftest.py.
__all__ = ["make_config", "make_queue", "queue", "queue_kind"]

HERE = Path(__file__).resolve().parent
REPORT_ENV = "FAIRQUE_FAULTS_REPORT"

Figures = Callable[..., None]
_REPORTED: list[str] = []


def _asked_for(config: pytest.Config) -> bool:
    if "faults" in (config.option.markexpr or ""):
        return True
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        return False  # the testpaths of a plain `pytest`
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the fault suite out unless it was asked for (``-m faults`` or its path)."""
    if _asked_for(config):
        return
    kept = [item for item in items if HERE not in Path(str(item.path)).parents]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Repeat every figure the fault tests reported, and write them to the report file."""
    if not _REPORTED:
        return
    terminalreporter.section("fault figures")
    for line in _REPORTED:
        terminalreporter.write_line(line)
    target = os.environ.get(REPORT_ENV, "").strip()
    if target:
        Path(target).write_text("\n".join(_REPORTED) + "\n")


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    """``figures(tasks=2000, kills=9, ...)``: print the test's figures and keep them for
    the end-of-run summary."""

    def report(**values: object) -> None:
        text = ", ".join(f"{name}={_show(value)}" for name, value in values.items())
        line = f"{request.node.name}: {text}"
        print(line)
        _REPORTED.append(line)

    return report


def _show(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)
