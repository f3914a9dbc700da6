"""The task model: priorities, states, Task creation, validation and serialisation.

Pure logic: no Redis server is needed.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from fairque.core.errors import InvalidPriorityError, InvalidUserIdError, PayloadError, TaskError
from fairque.core.models import (
    ACTIVE_STATES,
    MAX_ID_LENGTH,
    RECORD_DEFAULTS,
    TERMINAL_STATES,
    Priority,
    Task,
    TaskRecord,
    TaskState,
    new_task_id,
)

NEW_ID = re.compile(r"[0-9A-Za-z]{22}")


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque thing>"


# --- Priority ------------------------------------------------------------------------


@pytest.mark.parametrize("priority", list(Priority))
@pytest.mark.parametrize("spelling", [str.upper, str.lower, str.title, lambda s: f"  {s} "])
def test_every_priority_name_parses_in_any_case(priority: Priority, spelling: Any) -> None:
    assert Priority.parse(spelling(priority.name)) is priority


@pytest.mark.parametrize("number", range(1, 7))
def test_numbers_one_to_six_and_their_strings_parse(number: int) -> None:
    expected = Priority(number)
    assert Priority.parse(number) is expected
    assert Priority.parse(str(number)) is expected
    assert Priority.parse(f" {number} ") is expected
    assert Priority.parse(expected) is expected


def test_priority_values_and_critical() -> None:
    assert [int(p) for p in Priority] == [1, 2, 3, 4, 5, 6]
    assert Priority.CRITICAL == 6
    assert Priority.CRITICAL.is_critical
    assert [p for p in Priority if p.is_critical] == [Priority.CRITICAL]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "0"),
        (7, "7"),
        (-1, "-1"),
        ("7", "7"),
        ("0", "0"),
        (True, "True"),
        (False, "False"),
        (None, "None"),
        (4.5, "4.5"),
        (4.0, "4.0"),
        ("URGENT", "'URGENT'"),
        ("", "''"),
        ("very high", "'very high'"),
        (b"4", "b'4'"),
        ([4], "[4]"),
        (_Opaque(), "<opaque thing>"),
    ],
)
def test_bad_priorities_are_refused_naming_the_value(value: object, shown: str) -> None:
    with pytest.raises(InvalidPriorityError) as caught:
        Priority.parse(value)
    assert shown in str(caught.value)
    assert isinstance(caught.value, TaskError) and isinstance(caught.value, ValueError)


def test_unknown_priority_message_lists_the_choices() -> None:
    with pytest.raises(InvalidPriorityError, match=r"CRITICAL=6") as caught:
        Priority.parse("URGENT")
    assert "1..6" in str(caught.value)


def test_a_superscript_digit_is_refused_with_invalid_priority_error() -> None:
    with pytest.raises(InvalidPriorityError):
        Priority.parse("²")


# --- TaskState -----------------------------------------------------------------------


def test_task_state_has_exactly_the_seven_values() -> None:
    assert {s.value for s in TaskState} == {
        "queued",
        "started",
        "deferred",
        "finished",
        "failed",
        "canceled",
        "scheduled",
    }
    assert len(TaskState) == 7
    assert TaskState("finished") is TaskState.FINISHED
    assert str(TaskState.QUEUED) == "queued" and TaskState.QUEUED == "queued"


def test_active_and_terminal_sets_partition_the_states() -> None:
    assert {
        TaskState.QUEUED,
        TaskState.STARTED,
        TaskState.DEFERRED,
        TaskState.SCHEDULED,
    } == ACTIVE_STATES
    assert {TaskState.FINISHED, TaskState.FAILED, TaskState.CANCELED} == TERMINAL_STATES
    assert not ACTIVE_STATES & TERMINAL_STATES
    assert set(TaskState) == ACTIVE_STATES | TERMINAL_STATES
    for state in TaskState:
        assert state.is_active == (state in ACTIVE_STATES)
        assert state.is_terminal == (not state.is_active)


# --- Task.create ---------------------------------------------------------------------


def test_create_generates_unique_short_task_ids() -> None:
    ids = {Task.create("u").task_id for _ in range(500)}
    assert len(ids) == 500
    assert all(NEW_ID.fullmatch(task_id) for task_id in ids)
    assert NEW_ID.fullmatch(new_task_id())
    assert len({new_task_id()[0] for _ in range(500)}) > 40  # every digit of them varies


def test_create_defaults_and_given_values() -> None:
    task = Task.create("user:1")
    assert task.user_id == "user:1" and task.priority is Priority.NORMAL
    assert task.payload == {} and task.args == [] and task.kwargs == {}
    assert not hasattr(task, "state") and not hasattr(task, "claim_token")
    named = Task.create("u", "high", {"k": "v"}, task_id="mine")
    assert named.task_id == "mine" and named.priority is Priority.HIGH
    assert named.payload == {"k": "v"}


def test_create_copies_the_payload_mapping() -> None:
    payload = {"n": 1}
    task = Task.create("u", payload=payload)
    payload["n"] = 2
    assert task.payload == {"n": 1}


def test_unknown_create_option_lists_the_known_ones() -> None:
    with pytest.raises(TaskError, match=r"unknown Task option\(s\) \['retries'\]") as caught:
        Task.create("u", retries=3)
    message = str(caught.value)
    for known in ("func", "args", "kwargs", "depends_on", "max_retries", "timeout_seconds"):
        assert f"'{known}'" in message
    assert "'task_id'" not in message.split("known:")[1]


@pytest.mark.parametrize(
    "owned", ["state", "attempts", "result", "error", "claim_token", "worker_id"]
)
def test_fields_owned_by_the_queue_are_not_create_options(owned: str) -> None:
    with pytest.raises(TaskError, match=f"unknown Task option.*'{owned}'"):
        Task.create("u", **{owned: None})


# --- identifiers ---------------------------------------------------------------------

BAD_IDS: list[tuple[object, str]] = [
    ("", "empty"),
    (42, "must be a string, not int"),
    (" ", "whitespace"),
    ("a b", "' '"),
    ("tab\there", "'\\t'"),
    ("line\nbreak", "'\\n'"),
    ("nbsp\u00a0here", "whitespace"),
    ("nul\x00", "control characters"),
    ("del\x7f", "control characters"),
    ("{tag}", "'{'"),
    ("a}", "'}'"),
    ("x" * (MAX_ID_LENGTH + 1), "201 characters long; the limit is 200"),
]


@pytest.mark.parametrize(
    ("user_id", "problem"),
    [*BAD_IDS, (None, "must be a string, not NoneType"), ("*", "reserved")],
)
def test_bad_user_ids_are_refused(user_id: object, problem: str) -> None:
    with pytest.raises(InvalidUserIdError, match="user_id") as caught:
        Task.create(user_id)  # type: ignore[arg-type]
    assert problem in str(caught.value)


@pytest.mark.parametrize(("task_id", "problem"), BAD_IDS)  # None means "generate one"
def test_bad_task_ids_are_refused(task_id: object, problem: str) -> None:
    with pytest.raises(TaskError, match="task_id") as caught:
        Task.create("u", task_id=task_id)  # type: ignore[arg-type]
    assert problem in str(caught.value)
    assert not isinstance(caught.value, InvalidUserIdError)


@pytest.mark.parametrize("good", ["user:1", "alice@example.com", "ünïcode", "x" * MAX_ID_LENGTH])
def test_unusual_but_safe_ids_are_accepted(good: str) -> None:
    task = Task.create(good, task_id=good)
    assert task.user_id == good and task.task_id == good


def test_star_is_reserved_for_users_only() -> None:
    # '*' means "every user" in assigned_users; as a task id it has no special meaning.
    assert Task.create("u", task_id="*").task_id == "*"


@pytest.mark.parametrize(("dep", "problem"), [*BAD_IDS, (None, "must be a string")])
def test_bad_dependency_ids_are_refused(dep: object, problem: str) -> None:
    with pytest.raises(TaskError, match="depends_on entry") as caught:
        Task.create("u", depends_on=["fine", dep])
    assert problem in str(caught.value)


# --- payload, arguments and options --------------------------------------------------


@pytest.mark.parametrize("payload", [[1, 2], "text", 5, ("a", "b")])
def test_a_payload_that_is_not_a_dict_is_refused_on_construction(payload: object) -> None:
    with pytest.raises(PayloadError, match="payload must be a dict"):
        Task("t", "u", payload=payload)  # type: ignore[arg-type]


def test_a_task_is_frozen_and_normalised_on_construction() -> None:
    task = Task("t", "u", priority="high")  # type: ignore[arg-type]
    assert task.priority is Priority.HIGH
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.priority = Priority.LOW  # type: ignore[misc]
    assert dataclasses.replace(task, priority=2).priority is Priority.LOW


def test_create_refuses_a_list_payload_with_payload_error() -> None:
    with pytest.raises(PayloadError, match="payload"):
        Task.create("u", payload=[1, 2])  # type: ignore[arg-type]


def test_create_does_not_reinterpret_a_list_of_pairs_as_a_payload() -> None:
    with pytest.raises(PayloadError, match="payload"):
        Task.create("u", payload=["ab"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "payload",
    [{"when": object()}, {"nan": float("nan")}, {"inf": float("inf")}, {"set": {1, 2}}],
)
def test_a_payload_that_is_not_json_is_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(PayloadError, match="payload is not JSON-serialisable"):
        Task.create("u", payload=payload)


@pytest.mark.parametrize("field", ["args", "kwargs"])
def test_arguments_that_are_not_json_are_refused(field: str) -> None:
    value: Any = [object()] if field == "args" else {"x": object()}
    with pytest.raises(PayloadError, match=f"{field} is not JSON-serialisable"):
        Task.create("u", func="m:f", **{field: value})


def test_args_must_be_a_list() -> None:
    with pytest.raises(TaskError, match="args"):
        Task.create("u", func="m:f", args="abc")


def test_kwargs_must_be_a_dict() -> None:
    with pytest.raises(TaskError, match="kwargs"):
        Task.create("u", func="m:f", kwargs=[1])


def test_depends_on_must_be_a_list() -> None:
    with pytest.raises(TaskError, match="depends_on"):
        Task.create("u", depends_on="parent")


@pytest.mark.parametrize("func", ["no_colon", "", 5])
def test_func_must_be_an_import_path(func: object) -> None:
    with pytest.raises(TaskError, match="module:function") as caught:
        Task.create("u", func=func)
    assert repr(func) in str(caught.value)


def test_func_with_a_colon_is_accepted() -> None:
    assert Task.create("u", func="examples.tasks:add").func == "examples.tasks:add"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_retries": -1}, "max_retries must be finite and zero or more, not -1"),
        ({"max_retries": True}, "max_retries must be an integer, not True"),
        ({"max_retries": False}, "max_retries must be an integer, not False"),
        ({"max_retries": 1.5}, "max_retries must be an integer, not 1.5"),
        ({"max_retries": "3"}, "max_retries must be an integer, not '3'"),
        ({"timeout_seconds": 0}, "timeout_seconds must be finite and positive, not 0"),
        ({"timeout_seconds": -2.5}, "timeout_seconds must be finite and positive"),
        ({"timeout_seconds": float("inf")}, "timeout_seconds must be finite"),
        ({"retry_delay_seconds": -0.1}, "retry_delay_seconds must be finite and zero or more"),
        ({"retry_delay_seconds": float("nan")}, "retry_delay_seconds must be finite"),
        ({"execute_after": "soon"}, "execute_after must be a number, not 'soon'"),
        ({"execute_after": True}, "execute_after must be a number"),
    ],
)
def test_bad_numbers_are_refused_naming_the_field(options: dict[str, Any], message: str) -> None:
    with pytest.raises(TaskError) as caught:
        Task.create("u", **options)
    assert message in str(caught.value)


def test_good_numbers_are_accepted() -> None:
    task = Task.create(
        "u", max_retries=0, retry_delay_seconds=0, timeout_seconds=0.5, execute_after=0
    )
    assert (task.max_retries, task.retry_delay_seconds, task.timeout_seconds) == (0, 0, 0.5)


def test_validation_errors_share_one_root() -> None:
    assert issubclass(InvalidUserIdError, TaskError)
    assert issubclass(InvalidPriorityError, TaskError)
    assert issubclass(PayloadError, TaskError)


# --- serialisation -------------------------------------------------------------------


def _full_task() -> TaskRecord:
    """A TaskRecord with every field set to a value other than its default."""
    return TaskRecord(
        task_id="task-1",
        user_id="org:42",
        priority=Priority.CRITICAL,
        payload={"order": 7, "items": ["a", "ü"], "nested": {"ok": True, "none": None}},
        func="examples.tasks:process",
        args=[1, "two", 3.5, [4]],
        kwargs={"flag": False, "n": -3},
        depends_on=["parent-1", "parent:2"],
        max_retries=5,
        retry_delay_seconds=2.5,
        timeout_seconds=30.25,
        execute_after=1_700_000_123.456789,
        created_at=1_700_000_000.123456,
        state=TaskState.FAILED,
        attempts=3,
        recoveries=1,
        enqueued_at=1_700_000_001.5,
        started_at=1_700_000_002.25,
        finished_at=1_700_000_003.125,
        duration=0.875,
        result={"total": 99.99, "rows": [1, 2]},
        error={"type": "ValueError", "message": "boom", "traceback": "Traceback ..."},
        worker_id="worker-7",
        claim_token=4,
        cancel_requested=True,
        upstream_failed=True,
        skipped=True,
        first_poke_at=5.5,
        pokes=3,
        attempt_history=[{"attempt": 1, "outcome": "failed", "error": None}],
        run_id="run-1",
        name="step",
        trigger_rule="all_done",
        enable_xcom=True,
        xcom_push_key="out",
        xcom_pulls=["in"],
        branch=True,
        sensor={"poke_interval_seconds": 1, "timeout_seconds": 9, "soft_fail": True},
        expand={"item": {"__fairque_from__": {"task": "listing", "key": "k", "path": None}}},
        max_map_length=50,
        queue="gpu",
        pool="gpus",
        map_index=3,
        map_count=7,
    )


def test_the_full_task_differs_from_the_defaults_in_every_field() -> None:
    full, default = _full_task().to_dict(), TaskRecord("t", "u").to_dict()
    same = [name for name in full if full[name] == default[name]]
    assert same == [], f"give {same} a value other than its default in _full_task()"


def test_dict_round_trip_keeps_every_field() -> None:
    task = _full_task()
    data = task.to_dict()
    assert data["priority"] == 6 and data["state"] == "failed"
    assert json.loads(json.dumps(data)) == data  # JSON-compatible values only
    back = TaskRecord.from_dict(data)
    assert back == task
    assert back.priority is Priority.CRITICAL and back.state is TaskState.FAILED


def test_json_round_trip_keeps_every_field() -> None:
    task = _full_task()
    text = task.to_json()
    assert isinstance(text, str) and json.loads(text)["task_id"] == "task-1"
    assert TaskRecord.from_json(text) == task
    assert TaskRecord.from_json(text.encode()) == task


def test_json_round_trip_of_a_new_task() -> None:
    task = Task.create("u", payload={"x": 1})
    back = Task.from_json(task.to_json())
    assert back == task and "state" not in task.to_dict()


def test_from_dict_ignores_unknown_keys() -> None:
    data = {**_full_task().to_dict(), "added_in_a_later_version": 1}
    assert TaskRecord.from_dict(data) == _full_task()
    spec = Task.from_dict(data)  # a record read as a Task keeps the spec only
    assert type(spec) is Task and spec.to_hash() == _full_task().to_hash()


def test_to_json_refuses_a_result_that_is_not_json() -> None:
    task = TaskRecord("t", "u", result=object())
    with pytest.raises(PayloadError, match="task is not JSON-serialisable"):
        task.to_json()


PUSHED_FIELDS = {
    "task_id",
    "user_id",
    "priority",
    "payload",
    "func",
    "args",
    "kwargs",
    "depends_on",
    "max_retries",
    "retry_delay_seconds",
    "timeout_seconds",
    "execute_after",
    "created_at",
    "run_id",
    "name",
    "trigger_rule",
    "enable_xcom",
    "xcom_push_key",
    "xcom_pulls",
    "branch",
    "sensor",
    "expand",
    "max_map_length",
    "queue",
    "pool",
}


def test_to_hash_writes_only_the_fields_push_owns_as_strings() -> None:
    fields = _full_task().to_hash()
    assert set(fields) == PUSHED_FIELDS - {"task_id"}  # the record's key holds the id
    assert all(isinstance(v, str) for v in fields.values())
    assert fields["priority"] == "6"
    assert json.loads(fields["payload"]) == _full_task().payload
    assert json.loads(fields["depends_on"]) == ["parent-1", "parent:2"]


def test_to_hash_omits_unset_optional_fields() -> None:
    fields = Task.create("u", task_id="t").to_hash()
    assert set(fields) == {"user_id", "created_at"}  # the defaults (NORMAL too) and the id: out
    made = Task.create("u", task_id="t", created_at=fields_time(fields))
    assert Task.from_hash(fields, "t") == made


def test_hash_round_trip_of_the_fields_push_writes() -> None:
    full = _full_task()
    pushed = Task(**{name: getattr(full, name) for name in PUSHED_FIELDS})
    back = Task.from_hash(pushed.to_hash(), pushed.task_id)
    assert back == pushed
    assert back.priority is Priority.CRITICAL
    assert isinstance(back.max_retries, int) and isinstance(back.execute_after, float)


def test_hash_round_trip_from_bytes_as_redis_returns_it() -> None:
    full = _full_task()
    pushed = Task(**{name: getattr(full, name) for name in PUSHED_FIELDS})
    raw = {k.encode(): v.encode() for k, v in pushed.to_hash().items()}
    assert Task.from_hash(raw, pushed.task_id) == pushed


def test_from_hash_reads_the_fields_the_scripts_write() -> None:
    record = {
        **Task.create("u", task_id="t").to_hash(),
        "state": "finished",
        "attempts": "2",
        "recoveries": "1",
        "claim_token": "3",
        "enqueued_at": "10.000",
        "started_at": "11.500",
        "finished_at": "12.250",
        "duration": "0.750000",
        "result": '{"ok":true}',
        "error": '{"type":"Error","message":"m","traceback":""}',
        "worker_id": "w1",
        "cancel_requested": "1",
        "order": "123456",  # kept by the scripts, not a Task field
    }
    task = TaskRecord.from_hash(record, "t")
    assert task.task_id == "t" and task.state is TaskState.FINISHED
    assert (task.attempts, task.recoveries, task.claim_token) == (2, 1, 3)
    assert (task.enqueued_at, task.started_at, task.finished_at) == (10.0, 11.5, 12.25)
    assert task.duration == 0.75 and task.result == {"ok": True}
    assert task.error == {"type": "Error", "message": "m", "traceback": ""}
    assert task.worker_id == "w1" and task.cancel_requested is True


def test_a_claimed_record_decodes_as_from_hash_does_without_the_checks() -> None:
    full = _full_task()
    record = {
        **full.to_hash(),
        "state": "started",
        "attempts": "1",
        "claim_token": "7",
        "started_at": "11.500",
        "worker_id": "w1",
        "acked": "0",  # kept by the scripts, not a Task field
    }
    flat = ["task_id", full.task_id, *(item for pair in record.items() for item in pair)]
    claimed = TaskRecord.from_claim(flat)
    assert claimed == TaskRecord.from_hash(record, full.task_id)
    assert claimed.priority is Priority.CRITICAL and claimed.claim_token == 7
    bare = TaskRecord.from_claim(["task_id", "t", "user_id", "u"])
    made = TaskRecord(task_id="t", user_id="u", created_at=bare.created_at, **RECORD_DEFAULTS)
    assert bare == made  # what a record leaves out reads back as its default
    assert bare.args == [] and bare.args is not TaskRecord.from_claim(flat[:4]).args
    with pytest.raises(dataclasses.FrozenInstanceError):
        bare.state = TaskState.FINISHED  # type: ignore[misc]


def test_recheck_refuses_a_bad_id_added_to_depends_on_after_creation() -> None:
    task = Task.create("u", depends_on=["a"])
    task.recheck()
    task.depends_on.append("b c")
    with pytest.raises(TaskError, match="depends_on entry 'b c'"):
        task.recheck()


def test_create_still_refuses_a_payload_that_is_not_json() -> None:
    with pytest.raises(PayloadError, match="payload"):
        Task.create("u", payload={"x": object()})
    with pytest.raises(PayloadError, match="args"):
        Task.create("u", args=[{1, 2}])


def test_with_state_returns_a_copy() -> None:
    task = Task.create("u")
    started = task.with_state(TaskState.STARTED)
    assert isinstance(started, TaskRecord) and started.state is TaskState.STARTED
    assert started.task_id == task.task_id and started.to_hash() == task.to_hash()
    assert started.with_state(TaskState.FINISHED).state is TaskState.FINISHED


def fields_time(fields: dict[str, str]) -> float:
    """The created_at stored in ``fields``."""
    return float(fields["created_at"])
