"""@task / @xcom_task contracts: tasks are records, calling them runs the function."""

from __future__ import annotations

import asyncio
import inspect
import sys
import types
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any

import pytest

from fairque import Priority, Task
from fairque.core.errors import (
    InvalidPriorityError,
    InvalidUserIdError,
    PayloadError,
    TaskError,
    XComError,
)
from fairque.tasks import FunctionTask, MemoryXCom, TaskFunction, task, xcom_task
from fairque.tasks.decorators import import_path
from fairque.worker.handler import resolve_function
from tests.unit import sample_tasks as st

MODULE = "tests.unit.sample_tasks"


def test_calling_a_task_function_returns_a_task_and_does_not_run_it() -> None:
    made = st.add(2, y=3)
    assert isinstance(made, FunctionTask)
    assert isinstance(made, Task)
    assert made.func == f"{MODULE}:add"
    assert made.args == [2]
    assert made.kwargs == {"y": 3}
    assert made.name == "add"
    assert len(made.task_id) == 22
    assert st.add(1).task_id != made.task_id


def test_calling_the_task_runs_the_function_in_process() -> None:
    assert st.add(2, y=3)() == 5
    assert st.gather(1, "a", k=[1])() == {"items": [1, "a"], "named": {"k": [1]}}


def test_arguments_are_stored_as_the_worker_will_see_them() -> None:
    made = st.gather((1, 2), {"a": (3,)})
    assert made.args == [[1, 2], {"a": [3]}]
    assert made() == {"items": [[1, 2], {"a": [3]}], "named": {}}


def test_task_function_keeps_name_doc_signature_and_unwraps_for_workers() -> None:
    assert isinstance(st.add, TaskFunction)
    assert st.add.__name__ == "add"
    assert st.add.__doc__ == "Add two numbers."
    assert str(inspect.signature(st.add)) == "(x: 'int', y: 'int' = 0) -> 'int'"
    assert st.add.func_path == f"{MODULE}:add"
    function = resolve_function(f"{MODULE}:add", ["tests.unit"])
    assert function is st.add.__fairque_function__
    assert function(1, 2) == 3


def test_serialisation_is_that_of_a_plain_task() -> None:
    made = st.add(1)
    data = made.to_dict()
    assert "_function" not in data
    assert set(data) == set(Task(task_id="x", user_id="u").to_dict())
    assert Task.from_dict(data).func == made.func
    assert Task.from_hash(made.to_hash(), made.task_id).args == [1]
    restored = Task.from_json(made.to_json())
    assert restored.to_dict() == data


def test_options_are_copied_to_the_task() -> None:
    made = st.process_order(12345, "customer@example.com")
    assert made.task_id == "process_order"
    assert made.name == "process_order"
    assert made.user_id == "user:1"
    assert made.priority is Priority.HIGH
    assert made.max_retries == 3
    assert made.retry_delay_seconds == 2.5
    assert made.timeout_seconds == 30
    assert made.depends_on == ["fetch"]
    assert made.trigger_rule == "all_done"
    assert made.enable_xcom is False
    assert made() == {
        "order_id": 12345,
        "customer_id": "customer@example.com",
        "status": "processed",
    }


def test_each_call_gets_its_own_lists() -> None:
    one, two = st.process_order(1, "a"), st.process_order(2, "b")
    one.depends_on.append("other")
    assert two.depends_on == ["fetch"]
    assert st.process_order(3, "c").depends_on == ["fetch"]


def test_xcom_task_options() -> None:
    made = st.xcom_extract("db")
    assert made.enable_xcom is True
    assert made.xcom_push_key == "extracted_data"
    manual = st.manual_push()
    assert manual.enable_xcom is True
    assert manual.xcom_push_key is None
    assert st.manual_push.push_key == "manual"
    pulls = st.xcom_join()
    assert pulls.xcom_pulls == ["left", "right"]
    assert pulls.enable_xcom is True


def test_non_json_arguments_are_refused_naming_function_and_argument() -> None:
    with pytest.raises(PayloadError, match=r"argument 'x' of task tests\.unit\.sample_tasks:add"):
        st.add({1, 2})  # type: ignore[arg-type]
    with pytest.raises(PayloadError, match=r"argument 'when'"):
        st.gather(when=object())
    with pytest.raises(PayloadError, match=r"\*items\[1\]"):
        st.gather(1, object())


def test_wrong_arity_is_a_type_error_naming_the_function() -> None:
    with pytest.raises(TypeError, match="sample_tasks:add"):
        st.add()  # type: ignore[call-arg]


def test_async_functions() -> None:
    made = st.async_double(21)
    assert made.priority is Priority.CRITICAL
    assert st.async_double.is_async
    assert made() == 42
    assert asyncio.run(made.run_async()) == 42


def _nested_factory() -> Any:
    def inner() -> None:
        return None

    return inner


class _Holder:
    def method(self) -> None:
        return None


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (lambda: None, "lambda"),
        (_nested_factory(), "inside another function"),
        (_Holder.method, "defined in a class"),
        (len, "a function defined with def"),
        (_Holder, "a function defined with def"),
    ],
)
def test_functions_a_worker_cannot_import_are_refused(target: Any, expected: str) -> None:
    with pytest.raises(TaskError, match=expected):
        task(target)


def _main_function() -> Any:
    def f() -> int:
        return 1

    f.__module__ = "__main__"
    f.__qualname__ = "f"
    return f


def test_interactive_functions_run_here_but_are_not_pushed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    made = task(_main_function())
    assert made.func_path == "__main__:f"
    assert made()() == 1
    with pytest.raises(TaskError, match=r"interactive session.*move the @task functions"):
        made().__fairque_task__()


def _script_main(monkeypatch: pytest.MonkeyPatch, file: Path, source: str) -> None:
    file.write_text(source)
    main = types.ModuleType("__main__")
    main.__file__ = str(file)
    monkeypatch.setitem(sys.modules, "__main__", main)


def test_a_guarded_script_is_imported_by_its_file_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = (
        '"""Doc."""\nimport os\nX: int = 1\n@task\ndef f() -> int:\n    return 1\n'
        'if __name__ == "__main__":\n    print(f()())\n'
    )
    _script_main(monkeypatch, tmp_path / "guarded_job.py", source)
    made = task(_main_function())
    assert made.func_path == "guarded_job:f"
    assert made().__fairque_task__().func == "guarded_job:f"


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("import os\nprint('hi')\n", "line 2: `print('hi')`"),
        ("config = make()\n", "line 1: `config = make()`"),
        ("with open('x') as f:\n    pass\n", "line 1: `with open('x') as f:`"),
    ],
)
def test_an_unguarded_script_is_not_pushed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, source: str, line: str
) -> None:
    _script_main(monkeypatch, tmp_path / f"job_{len(source)}.py", source)
    made = task(_main_function())
    assert made()() == 1  # a local call still works
    with pytest.raises(TaskError) as error:
        made().__fairque_task__()
    message = str(error.value)
    assert line in message
    assert "move the @task functions into a module" in message
    assert f"--allowed-modules job_{len(source)}" in message


def test_a_script_named_like_no_module_is_not_pushed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _script_main(monkeypatch, tmp_path / "my-job.py", "")
    made = task(_main_function())
    assert made.func_path == "__main__:f"
    with pytest.raises(TaskError, match="not a module name"):
        made().__fairque_task__()


def test_an_uncalled_task_function_becomes_its_task_when_it_needs_no_arguments() -> None:
    made = task(_no_arguments).__fairque_task__()
    assert made.func == f"{__name__}:_no_arguments"
    with pytest.raises(TaskError, match=r"needs arguments \(x\): call it first"):
        task(_one_argument).__fairque_task__()


def _no_arguments(y: int = 2, *rest: int) -> int:
    return y


def _one_argument(x: int) -> int:
    return x


def test_functions_of_python_dash_m_use_the_real_module(monkeypatch: pytest.MonkeyPatch) -> None:
    main = types.ModuleType("__main__")
    main.__spec__ = ModuleSpec("mypkg.tool", None)
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert import_path(_main_function()) == "mypkg.tool:f"


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"priority": 9}, InvalidPriorityError, "unknown priority"),
        ({"priority": "urgent"}, InvalidPriorityError, "unknown priority"),
        ({"trigger_rule": "sometimes"}, TaskError, "unknown trigger_rule"),
        ({"user_id": "bad user"}, InvalidUserIdError, "user_id"),
        ({"max_retries": -1}, TaskError, "max_retries"),
        ({"timeout_seconds": 0}, TaskError, "timeout_seconds"),
        ({"task_id": "a{b}"}, TaskError, "task_id"),
        ({"depends_on": ["ok", ""]}, TaskError, "depends_on"),
        ({"xcom_push": "bad key"}, XComError, "XCom key"),
        ({"enable_xcom": "yes"}, TaskError, "enable_xcom"),
    ],
)
def test_bad_options_are_refused_when_decorating(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        task(**options)


def test_xcom_task_refuses_a_bad_push_key() -> None:
    with pytest.raises(XComError, match="XCom key"):
        xcom_task(push_key="")


def test_depends_on_accepts_one_name() -> None:
    decorator = task(depends_on="extract")
    assert decorator.options.values["depends_on"] == ["extract"]


def test_with_options_returns_a_modified_copy() -> None:
    original = st.add(1)
    copy = original.with_options(user_id="user:9", priority="HIGH", task_id="add-9")
    assert (copy.user_id, copy.priority, copy.task_id, copy.name) == (
        "user:9",
        Priority.HIGH,
        "add-9",
        "add-9",
    )
    assert (original.user_id, original.priority, original.name) == ("default", 3, "add")
    assert copy() == 1
    with pytest.raises(TaskError, match="unknown option"):
        original.with_options(colour="red")
    with pytest.raises(InvalidUserIdError):
        original.with_options(user_id="")


def test_with_state_makes_a_record_and_leaves_the_task_callable() -> None:
    from fairque import TaskState

    made = st.add(4)
    done = made.with_state(TaskState.FINISHED)
    assert not isinstance(done, FunctionTask)
    assert done.state is TaskState.FINISHED and done.args == [4]
    assert made() == 4


def test_a_copy_that_lost_its_function_reimports_it() -> None:
    from dataclasses import replace

    copy = replace(st.add(5, 6))
    assert copy() == 11


def test_operators_on_an_uncalled_task_function_explain() -> None:
    with pytest.raises(TypeError, match=r"call it first"):
        st.extract_data >> st.load_data  # type: ignore[operator]


def test_task_call_uses_the_given_xcom_backend() -> None:
    backend = MemoryXCom()
    assert st.xcom_extract("db")(xcom=backend) == {"source": "db", "records": 1000}
    assert backend.pull("user:default", "extracted_data", "test") == {
        "source": "db",
        "records": 1000,
    }


def test_set_result_is_only_for_a_task_a_worker_runs() -> None:
    from fairque import TaskHandler
    from fairque.core.errors import WorkerError

    with pytest.raises(WorkerError, match="set_result"):
        TaskHandler().set_result(1)
