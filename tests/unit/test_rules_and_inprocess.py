"""Trigger rules, the task context and XCom, and whole pipelines run in-process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from fairque import Task, TaskState
from fairque.core.errors import DagCycleError, TaskError, XComError, XComNotFoundError
from fairque.core.models import TRIGGER_RULES
from fairque.tasks import (
    MemoryXCom,
    Pipeline,
    axcom_pull,
    axcom_push,
    current_task,
    decide,
    run_in_process,
    xcom_pull,
    xcom_push,
)
from fairque.tasks.context import running
from fairque.tasks.rules import UPSTREAM_FAILED, UpstreamCounts, decide_counts
from tests.unit import sample_tasks as st

F, X, C = TaskState.FINISHED, TaskState.FAILED, TaskState.CANCELED
Q, S, D = TaskState.QUEUED, TaskState.STARTED, TaskState.DEFERRED
U = UPSTREAM_FAILED  # canceled because its own upstreams failed: counts as failed

# rule -> [(upstream states, decision)]
RULE_TABLE: dict[str, list[tuple[list[TaskState | str], str]]] = {
    "all_success": [
        ([F, F], "run"),
        ([F, Q], "wait"),
        ([F, X], "cancel"),
        ([S, C], "cancel"),
        ([D, Q], "wait"),
    ],
    "all_done": [
        ([F, X, C], "run"),
        ([X, X], "run"),
        ([F, S], "wait"),
        ([X, Q], "wait"),
    ],
    "all_failed": [
        ([X, X], "run"),
        ([X, U], "run"),
        ([X, C], "cancel"),
        ([X, Q], "wait"),
        ([X, F], "cancel"),
        ([F, Q], "cancel"),
    ],
    "one_success": [
        ([F, Q], "run"),
        ([X, F], "run"),
        ([X, Q], "wait"),
        ([X, C], "cancel"),
    ],
    "one_failed": [
        ([X, Q], "run"),
        ([F, X], "run"),
        ([F, Q], "wait"),
        ([F, C], "cancel"),
    ],
    "none_failed": [
        ([F, C], "run"),
        ([C, C], "run"),
        ([F, Q], "wait"),
        ([U, F], "cancel"),
        ([X, Q], "cancel"),
        ([F, X], "cancel"),
    ],
    "none_failed_min_one_success": [
        ([F, C], "run"),
        ([C, C], "cancel"),
        ([C, Q], "wait"),
        ([F, Q], "wait"),
        ([U, F], "cancel"),
        ([X, Q], "cancel"),
    ],
    "always": [
        ([Q, D], "run"),
        ([X, U], "run"),
        ([C, C], "run"),
    ],
    "all_skipped": [
        ([C, C], "run"),
        ([C, Q], "wait"),
        ([C, F], "cancel"),
        ([U, Q], "cancel"),
    ],
    "none_skipped": [
        ([F, X], "run"),
        ([F, U], "run"),
        ([F, Q], "wait"),
        ([C, Q], "cancel"),
    ],
}


@pytest.fixture(autouse=True)
def _reset_calls() -> Iterator[None]:
    st.CALLS.clear()
    st.FLAKY_ATTEMPTS.clear()
    yield
    st.CALLS.clear()


# --- rules --------------------------------------------------------------------------------


def test_the_table_covers_every_rule() -> None:
    assert set(RULE_TABLE) == set(TRIGGER_RULES)


@pytest.mark.parametrize(
    ("rule", "states", "expected"),
    [(rule, states, expected) for rule, rows in RULE_TABLE.items() for states, expected in rows],
)
def test_decide(rule: str, states: list[TaskState | str], expected: str) -> None:
    assert decide(rule, states) == expected
    assert decide(rule, [str(s) for s in states]) == expected


@pytest.mark.parametrize("rule", TRIGGER_RULES)
def test_no_upstream_always_runs(rule: str) -> None:
    assert decide(rule, []) == "run"


@pytest.mark.parametrize("rule", TRIGGER_RULES)
def test_run_and_cancel_never_hold_together(rule: str) -> None:
    for finished in range(3):
        for failed in range(3):
            for canceled in range(3):
                for active in range(2):
                    total = finished + failed + canceled + active
                    counts = UpstreamCounts(total, finished, failed, canceled)
                    decision = decide_counts(rule, counts)
                    if active == 0 and total > 0:
                        assert decision != "wait", (rule, counts)


def test_unknown_rule() -> None:
    with pytest.raises(TaskError, match="unknown trigger_rule"):
        decide("sometimes", [F])


# --- context and XCom ---------------------------------------------------------------------


def test_xcom_outside_a_task_raises() -> None:
    with pytest.raises(XComError, match="only be used while a task runs"):
        xcom_pull("anything")
    with pytest.raises(XComError, match="only be used while a task runs"):
        xcom_push("anything", 1)
    with pytest.raises(XComError):
        current_task()


def test_in_process_xcom_round_trip_between_standalone_tasks() -> None:
    backend = MemoryXCom()
    extract = st.xcom_extract("database")
    transform = st.xcom_transform()
    extract(xcom=backend)
    assert transform(xcom=backend) == {"processed_records": 2000, "source": "database"}
    assert backend.keys("user:default") == ["extracted_data", "transformed_data"]


def test_the_default_in_process_xcom_is_shared_by_task_calls() -> None:
    st.xcom_extract("database").with_options(user_id="user:shared")()
    out = st.xcom_transform().with_options(user_id="user:shared")()
    assert out["processed_records"] == 2000


def test_scopes_separate_users_and_runs() -> None:
    backend = MemoryXCom()
    st.xcom_extract("db").with_options(user_id="user:a")(xcom=backend)
    with pytest.raises(XComNotFoundError, match="'user:user:b'"):
        st.xcom_transform().with_options(user_id="user:b")(xcom=backend)


def test_pull_with_default_and_missing_key() -> None:
    backend = MemoryXCom()
    assert st.pull_with_default()(xcom=backend) == "fallback"
    with pytest.raises(XComNotFoundError, match="extracted_data"):
        st.xcom_transform()(xcom=backend)


def test_auto_xcom_off_pushes_only_what_the_function_pushes() -> None:
    backend = MemoryXCom()
    assert st.manual_push()(xcom=backend) == "returned"
    assert backend.pull("user:default", "manual", "t") == "by hand"


def test_xcom_size_limit_names_key_size_and_limit() -> None:
    backend = MemoryXCom(max_bytes=20)
    task = Task.create("u", task_id="t")
    with running(task, backend) as ctx:
        ctx.xcom_push("small", "ok")
        with pytest.raises(XComError, match=r"'big' is 32 bytes.*limit is 20 bytes"):
            ctx.xcom_push("big", "x" * 30)
    assert backend.keys("user:u") == ["small"]


def test_non_json_xcom_value_is_refused() -> None:
    backend = MemoryXCom()
    with pytest.raises(XComError, match=r"'bad'.*not JSON-serialisable"):
        st.returns_set()(xcom=backend)
    assert backend.keys("user:default") == []


def test_bad_xcom_key_is_refused() -> None:
    with running(Task.create("u", task_id="t"), MemoryXCom()), pytest.raises(XComError):
        xcom_push("two words", 1)


def test_values_are_copies() -> None:
    backend = MemoryXCom()
    value = {"items": [1]}
    backend.push("s", "k", value, "p")
    value["items"].append(2)
    first = backend.pull("s", "k", "c")
    first["items"].append(3)
    assert backend.pull("s", "k", "c") == {"items": [1]}


def test_lineage_is_recorded() -> None:
    backend = MemoryXCom()
    st.xcom_extract("db")(xcom=backend)
    st.xcom_transform()(xcom=backend)
    events = [(e.kind, e.key, e.producer, e.consumer) for e in backend.lineage]
    assert events == [
        ("push", "extracted_data", "xcom_extract", None),
        ("pull", "extracted_data", "xcom_extract", "transform_x"),
        ("push", "transformed_data", "transform_x", None),
    ]
    push = backend.lineage[0]
    assert push.bytes == len('{"source":"db","records":1000}')
    assert push.scope == "user:default"
    assert push.time > 0


def test_context_is_per_thread_and_per_asyncio_task() -> None:
    backend = MemoryXCom()
    seen: list[str] = []

    def other_thread() -> None:
        try:
            current_task()
        except XComError:
            seen.append("no task in thread")

    with running(Task.create("u", task_id="outer"), backend):
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        assert current_task().name == "outer"

    async def named(task_id: str) -> str:
        with running(Task.create("u", task_id=task_id), backend):
            await asyncio.sleep(0)
            return current_task().name

    async def both() -> list[str]:
        return list(await asyncio.gather(named("a"), named("b")))

    assert asyncio.run(both()) == ["a", "b"]
    assert seen == ["no task in thread"]
    with pytest.raises(XComError):
        current_task()


class BlockingOnlyXCom:
    """A backend with only the blocking methods; records the thread of each call."""

    def __init__(self) -> None:
        self.memory = MemoryXCom()
        self.threads: list[threading.Thread] = []

    def pull(self, scope: str, key: str, consumer: str) -> object:
        self.threads.append(threading.current_thread())
        return self.memory.pull(scope, key, consumer)

    def push(self, scope: str, key: str, value: object, producer: str) -> None:
        self.threads.append(threading.current_thread())
        self.memory.push(scope, key, value, producer)


def test_async_xcom_awaits_an_async_backend_and_runs_a_blocking_one_in_a_thread() -> None:
    async def round_trip(backend: MemoryXCom | BlockingOnlyXCom) -> tuple[object, object]:
        with running(Task.create("u", task_id="t"), backend):
            await axcom_push("k", {"n": 1})
            return await axcom_pull("k"), await axcom_pull("missing", "fallback")

    memory = MemoryXCom()
    assert asyncio.run(round_trip(memory)) == ({"n": 1}, "fallback")
    assert [(e.kind, e.key) for e in memory.lineage] == [("push", "k"), ("pull", "k")]
    blocking = BlockingOnlyXCom()
    assert asyncio.run(round_trip(blocking)) == ({"n": 1}, "fallback")
    assert len(blocking.threads) == 3
    assert threading.main_thread() not in blocking.threads
    with pytest.raises(XComError, match="only be used while a task runs"):
        asyncio.run(axcom_pull("anything"))


# --- in-process runs ----------------------------------------------------------------------


def test_diamond_with_xcom() -> None:
    p = st.xcom_root(10) >> (st.xcom_left() | st.xcom_right()) >> st.xcom_join()
    run = run_in_process(p, run_id="diamond")
    assert run.succeeded
    assert list(run.states) == ["root", "left", "right", "join"]
    assert run.results == {"root": 10, "left": 11, "right": 12, "join": 23}
    pulls = {(e.key, e.producer, e.consumer) for e in run.lineage if e.kind == "pull"}
    assert pulls == {
        ("seed", "root", "left"),
        ("seed", "root", "right"),
        ("left", "left", "join"),
        ("right", "right", "join"),
    }
    assert {e.scope for e in run.lineage} == {"diamond"}
    assert run.tasks["join"].task_id == "diamond:join"
    assert run.tasks["join"].state is TaskState.FINISHED


def test_runs_do_not_share_xcom_scopes() -> None:
    backend = MemoryXCom()
    p = st.xcom_root(1) >> st.xcom_left()
    run_in_process(p, xcom=backend, run_id="r1")
    run_in_process(st.xcom_root(5) >> st.xcom_left(), xcom=backend, run_id="r2")
    assert backend.pull("r1", "left", "t") == 2
    assert backend.pull("r2", "left", "t") == 6


def test_failure_cascade_all_success_vs_all_done() -> None:
    p = st.extract_data() >> st.boom() >> (st.after_boom() | st.cleanup())
    run = run_in_process(p)
    assert not run.succeeded
    assert run.states == {
        "extract": TaskState.FINISHED,
        "boom": TaskState.FAILED,
        "after_boom": TaskState.CANCELED,
        "cleanup": TaskState.FINISHED,
    }
    assert run.errors["boom"] == "RuntimeError: boom failed"
    assert "boom failed" in run.errors["boom"]
    assert run.errors["after_boom"] == "canceled by all_success: boom failed (upstream_failed)"
    assert st.CALLS == ["extract", "boom", "cleanup"]
    assert run.results["cleanup"] == "cleaned"


def test_cancellation_propagates_downstream() -> None:
    p = st.boom() >> st.after_boom() >> st.load_data() >> st.cleanup()
    run = run_in_process(p)
    assert run.states["load"] is TaskState.CANCELED
    assert run.states["cleanup"] is TaskState.FINISHED


def test_retries_without_sleeping() -> None:
    once = st.flaky("a", 1).with_options(task_id="once", max_retries=2)
    never = st.flaky("b", 5).with_options(task_id="never", max_retries=2)
    run = run_in_process(Pipeline.of(once, never))
    assert run.states == {"never": TaskState.FAILED, "once": TaskState.FINISHED}
    assert run.attempts == {"never": 3, "once": 2}
    assert run.results["once"] == 2
    assert run.errors["never"] == "ValueError: attempt 3 failed"


def test_default_max_retries_applies_when_the_task_sets_none() -> None:
    run = run_in_process(st.flaky("c", 1), default_max_retries=1)
    assert run.succeeded
    assert run.attempts == {"flaky": 2}


def test_non_json_result_fails_without_retry() -> None:
    run = run_in_process(st.not_json_result().with_options(max_retries=3))
    assert run.states == {"not_json_result": TaskState.FAILED}
    assert run.attempts == {"not_json_result": 1}
    assert "not JSON-serialisable" in run.errors["not_json_result"]


def test_plain_tasks_are_imported_under_allowed_modules() -> None:
    plain = Task.create("u", task_id="plain", func="tests.unit.sample_tasks:add", args=[2, 3])
    assert run_in_process(plain).results == {"plain": 5}
    refused = run_in_process(plain, allowed_modules=["myapp"])
    assert refused.states == {"plain": TaskState.FAILED}
    assert "allowed_modules" in refused.errors["plain"]
    payload_only = Task.create("u", task_id="payload", payload={"a": 1})
    assert "no function" in run_in_process(payload_only).errors["payload"]


def test_async_tasks_and_conf() -> None:
    p = st.async_double(4) >> st.context_info()
    run = run_in_process(p, conf={"day": "monday"}, run_id="conf-run")
    assert run.results["async_double"] == 8
    assert run.results["context_info"] == {
        "name": "context_info",
        "scope": "conf-run",
        "conf": {"day": "monday"},
    }


def test_invalid_graphs_are_refused_before_anything_runs() -> None:
    a = st.extract_data()
    with pytest.raises(DagCycleError):
        run_in_process(a >> st.load_data() >> a)
    assert st.CALLS == []
