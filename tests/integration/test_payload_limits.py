"""The limits of what a task may carry, on the real server: ``max_payload_bytes`` counts
the UTF-8 bytes of every user-supplied field; a payload nested too deeply, or a lone
surrogate in an id or a value, is a clear TaskError naming the field (never a
RecursionError or redis-py's UnicodeEncodeError); nothing is queued by a refused push."""

from __future__ import annotations

import time
from typing import Any

import pytest

from fairque import Task
from fairque.core.errors import InvalidUserIdError, PayloadError, TaskError
from tests.timing import budget

from .conftest import QueueFactory

LIMIT = 100_000


def deep(levels: int) -> Any:
    value: Any = 0
    for _ in range(levels):
        value = [value]
    return value


def test_the_limit_counts_bytes_not_characters(make_queue: QueueFactory) -> None:
    queue = make_queue(max_payload_bytes=LIMIT)
    accented = "é" * 60_000  # 60,000 characters, 120,000 bytes of UTF-8
    for options in (
        {"payload": {"t": accented}},
        {"args": [accented]},
        {"kwargs": {"t": accented}},
    ):
        with pytest.raises(PayloadError, match=r"limit is 100000"):
            queue.push(Task.create("u", **options))
    assert queue.get_stats()["tasks_queued"] == 0
    queue.push(Task.create("u", payload={"t": "é" * 40_000}))  # 80,000 bytes: fine


@pytest.mark.parametrize(
    "options",
    [
        {"func": "tests.integration.jobs:" + "f" * 200_000},
        {"name": "n" * 200_000},
        {"xcom_pulls": ["k" * 1000] * 200},
        {"xcom_push_key": "k" * 200_000},
        {"run_id": "r" * 200_000},
    ],
    ids=["func", "name", "xcom_pulls", "xcom_push_key", "run_id"],
)
def test_every_user_field_counts(make_queue: QueueFactory, options: dict[str, Any]) -> None:
    queue = make_queue(max_payload_bytes=LIMIT)
    with pytest.raises(PayloadError, match=r"limit is 100000") as caught:
        queue.push(Task.create("u", **options))
    assert len(str(caught.value)) < 500  # the message does not quote the value
    assert queue.get_stats()["tasks_queued"] == 0


def test_a_deeply_nested_payload_is_a_payload_error(make_queue: QueueFactory) -> None:
    queue = make_queue()
    for options in ({"payload": {"d": deep(100_000)}}, {"args": [deep(100_000)]}):
        name = next(iter(options))
        with pytest.raises(PayloadError, match=rf"{name} is nested too deeply"):
            queue.push(Task.create("u", **options))
    with pytest.raises(PayloadError, match="nested too deeply"):
        queue.push(Task("u", "u", payload={"d": deep(100_000)}))  # unchecked until push
    assert queue.get_stats()["tasks_queued"] == 0
    queue.push(Task.create("u", payload={"d": deep(50)}))


@pytest.mark.parametrize("where", ["payload", "args", "kwargs", "name", "xcom_push_key"])
def test_a_lone_surrogate_in_a_value_is_a_payload_error(
    make_queue: QueueFactory, where: str
) -> None:
    queue = make_queue()
    bad = "a\ud800b"
    options: dict[str, Any] = {
        "payload": {"payload": {"t": bad}},
        "args": {"args": [bad]},
        "kwargs": {"kwargs": {bad: 1}},
        "name": {"name": bad},
        "xcom_push_key": {"xcom_push_key": bad},
    }[where]
    with pytest.raises(TaskError, match=rf"{where}.*surrogate"):
        queue.push(Task("t1", "u", **options))
    assert queue.get_stats()["tasks_queued"] == 0


@pytest.mark.parametrize("field", ["task_id", "user_id"])
def test_a_lone_surrogate_in_an_id_is_refused(make_queue: QueueFactory, field: str) -> None:
    queue = make_queue()
    ids = {"task_id": "t1", "user_id": "u"} | {field: "x\udc80"}
    error = InvalidUserIdError if field == "user_id" else TaskError
    with pytest.raises(error, match=rf"{field}.*surrogate"):
        queue.push(Task(**ids))
    with pytest.raises(TaskError, match="surrogate"):
        queue.get_task("x\udc80")
    queue.push(Task.create("u", task_id="fine"))
    assert queue.get_task("fine").task_id == "fine"  # the connection is still usable
    with pytest.raises(TaskError, match=r"depends_on entry.*surrogate"):
        Task.create("u", depends_on=["x\udc80"])


def test_a_result_with_a_lone_surrogate_fails_the_task(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.push(Task.create("u", task_id="t"))
    (claimed,) = queue.pop_many(1)
    with pytest.raises(PayloadError, match="surrogate"):
        queue.finish(claimed, "\udfff")


def test_big_bad_values_are_refused_quickly_with_short_messages(
    make_queue: QueueFactory,
) -> None:
    huge = "x" * 5_000_000
    cases: list[tuple[type[Exception], Any]] = [
        (TaskError, lambda: Task.create("u", args=huge)),  # not a list
        (TaskError, lambda: Task.create("u", kwargs=huge)),
        (TaskError, lambda: Task.create("u", timeout_seconds=huge)),
        (TaskError, lambda: Task.create("u", trigger_rule=huge)),
        (TaskError, lambda: Task.create("u", priority=huge)),
        (TaskError, lambda: Task.create(huge)),
        (TaskError, lambda: Task.create("u", depends_on=[huge])),
        (TaskError, lambda: Task.create("u", func=huge)),
    ]
    for error, make in cases:
        start = time.perf_counter()
        with pytest.raises(error) as caught:
            make()
        assert len(str(caught.value)) < 500, str(caught.value)[:300]
        assert time.perf_counter() - start < budget(1.0)
