"""WorkerCore's claiming ahead (prefetch): on only while tasks are short, a task's
timeout counted from when it runs, and a task that waited too long goes back."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from fairque import FairQueueConfig
from fairque.core.errors import ConfigValueError
from fairque.core.models import TaskRecord
from fairque.worker import runtime
from fairque.worker.runtime import Outcome, WorkerCore


def _core(**settings: Any) -> WorkerCore:
    settings = {"max_concurrent_tasks": 4, "prefetch_tasks": 3, **settings}
    return WorkerCore(FairQueueConfig.create_default(redis="redis://localhost:6379/0", **settings))


def _end(core: WorkerCore, name: str, duration: float) -> None:
    entry = core.claimed(TaskRecord(name, "u"))
    entry.begin()
    assert core.finished(Outcome(entry.task, True, duration))


def test_no_claim_ahead_before_the_worker_knows_its_tasks_are_short() -> None:
    core = _core()
    assert core.free_slots() == 4
    _end(core, "a", 0.001)
    assert core.prefetching() and core.free_slots() == 4 + 3


def test_long_tasks_turn_claiming_ahead_off() -> None:
    core = _core(prefetch_below_seconds=0.05)
    _end(core, "a", 0.001)
    for n in range(20):
        _end(core, f"long{n}", 1.0)
    assert not core.prefetching() and core.free_slots() == 4


def test_a_task_running_longer_than_the_limit_turns_it_off_at_once() -> None:
    core = _core(prefetch_below_seconds=0.05)
    _end(core, "a", 0.001)
    entry = core.claimed(TaskRecord("slow", "u"))
    entry.begin()
    assert core.prefetching()
    entry.started -= 1.0  # it has run for a second
    assert not core.prefetching()


def test_prefetch_zero_claims_only_for_free_slots() -> None:
    core = _core(prefetch_tasks=0)
    _end(core, "a", 0.001)
    assert not core.prefetching() and core.free_slots() == 4


def test_the_timeout_counts_from_the_start_not_the_claim() -> None:
    core = _core()
    task = dataclasses.replace(TaskRecord("t", "u"), timeout_seconds=1.0)
    entry = core.claimed(task)
    entry.started -= 10.0  # claimed ahead long ago, never started
    assert entry.deadline is None and core.timed_out() == []
    entry.begin()
    assert entry.deadline is not None and core.timed_out() == []
    entry.deadline -= 2.0
    assert core.timed_out() == [entry] and "t" not in core.running


def test_tasks_claimed_ahead_are_let_go_after_waiting_too_long_or_at_a_stop() -> None:
    core = _core(max_concurrent_tasks=1)
    (running,) = core.place([TaskRecord(n, "u") for n in "rayl"])
    old, young, last = (core.running[n] for n in "ayl")
    assert running.begun and not any(e.begun for e in (old, young, last))
    old.started -= runtime.AHEAD_WAIT_SECONDS + 0.1  # claimed long ago, still waiting
    assert core.let_go_waiting() == [old] and "a" not in core.running
    core.begin_stop()
    assert core.let_go_waiting() == [young, last] and set(core.running) == {"r"}
    assert core.next_after(running) is None  # nothing waits any more


def test_a_slot_given_up_passes_to_a_waiting_task_which_begins() -> None:
    core = _core(max_concurrent_tasks=1)
    (first,) = core.place([TaskRecord("first", "u"), TaskRecord("second", "u")])
    second = core.running["second"]
    assert core.abandon([first]) == [second] and second.begun
    assert core.next_after(first) is None  # the late thread of ``first`` takes nothing


@pytest.mark.parametrize(
    ("setting", "value"), [("prefetch_tasks", -1), ("prefetch_below_seconds", -0.5)]
)
def test_bad_prefetch_settings_are_refused(setting: str, value: float) -> None:
    with pytest.raises(ConfigValueError, match=setting):
        _core(**{setting: value})


def test_the_worker_command_sets_the_depth_and_a_config_file_keeps_its_own(
    tmp_path: Path,
) -> None:
    from fairque.cli.worker import build_config

    url = "redis://localhost:6379/0"
    assert build_config(None, "w", url, None, prefetch_tasks=None).worker.claim_ahead == 5
    assert build_config(None, "w", url, None, prefetch_tasks=0).worker.claim_ahead == 0
    slots = build_config(None, "w", url, None, max_concurrent_tasks=1, prefetch_tasks=None)
    assert slots.worker.claim_ahead == 1  # default: half the slots, at least one
    file = tmp_path / "fairque_config.yaml"
    file.write_text(
        "redis: {url: 'redis://localhost:6379/0'}\n"
        "workers: [{id: w, prefetch_tasks: 2, prefetch_below_seconds: 0.5}]\n"
    )
    worker = build_config(file, "w", None, None).worker
    assert (worker.claim_ahead, worker.prefetch_below_seconds) == (2, 0.5)


def test_a_config_file_or_the_command_line_with_a_bad_depth_is_refused(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fairque.cli.app import app
    from fairque.core.errors import ConfigError

    file = tmp_path / "fairque_config.yaml"
    file.write_text("workers: [{id: w, prefetch_tasks: -1}]\n")
    with pytest.raises(ConfigError, match="prefetch_tasks"):
        FairQueueConfig.from_yaml(file)
    result = CliRunner().invoke(app, ["worker", "--prefetch", "-1"])
    assert result.exit_code == 2 and "--prefetch" in result.output
