"""Validation of DAG files: a catalogue of broken files, each refused for the right
reason at the right place, and every problem of a file reported at once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fairque.core.schemas import parse_yaml
from fairque.dag import Problem, validate_dag_file, validate_paths
from fairque.dag.validate import MAX_NODES, expansion_problem, problems_of
from tests.timing import budget

HERE = Path(__file__).parent / "dag_files"
BROKEN = HERE / "broken"
REPO = Path(__file__).resolve().parents[2]
ALLOWED = ("examples", "dags")

# file -> (line, column, pointer, words in the message); exactly one problem expected
CATALOGUE: dict[str, tuple[int | None, int | None, str, str]] = {
    "missing_dag_id.yaml": (1, 1, "", "missing required key 'dag_id'"),
    "task_without_callable.yaml": (4, 3, "/tasks/load", "missing required key 'callable'"),
    "unknown_key.yaml": (
        7,
        5,
        "/tasks/load/depend_on",
        "depend_on is not a known key (did you mean 'depends_on'?)",
    ),
    "cycle.yaml": (3, 3, "/tasks/a", "dependency cycle: a -> b -> c -> a"),
    "self_dependency.yaml": (
        6,
        27,
        "/tasks/load/depends_on/1",
        "task 'load' depends on itself",
    ),
    "unknown_dependency.yaml": (
        6,
        27,
        "/tasks/load/depends_on/1",
        "task 'load' depends on 'transfrom', which is not a task of this DAG",
    ),
    "bad_flow.yaml": (
        2,
        32,
        "/flow",
        "flow: unexpected ')' at column 25 (expected a task name or '(')",
    ),
    "flow_unknown_task.yaml": (
        2,
        1,
        "/flow",
        "flow names 'transfrom', which is not a task of this DAG (did you mean 'transform'?)",
    ),
    "bad_cron.yaml": (2, 1, "/schedule", "cron '61 * * * *' is invalid"),
    "cron_fields.yaml": (2, 1, "/schedule", "cron '* * *' has 3 fields; use 5"),
    "bad_timezone.yaml": (2, 1, "/timezone", "unknown timezone 'Mars/Olympus_Mons'"),
    "not_yaml.yaml": (3, 10, "", "invalid YAML"),
    "yaml_bomb.yaml": (None, None, "", f"expands to more than {MAX_NODES} nodes"),
    "callable_not_allowed.yaml": (
        3,
        10,
        "/tasks/dump/callable",
        "module 'json' is not in allowed_modules ['examples', 'dags']",
    ),
    "duplicate_task.yaml": (
        5,
        3,
        "/tasks/extract",
        "duplicate task name 'extract' (first at line 3)",
    ),
    "empty.yaml": (None, None, "", "the file is empty"),
    "no_dag.py": (None, None, "", "defines no DAG at module level"),
    "raises.py": (7, None, "", "importing the file failed: DagError: DAG 'raises': cron"),
}


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_each_broken_file_is_refused_for_its_reason(name: str) -> None:
    line, column, pointer, words = CATALOGUE[name]
    problems = validate_dag_file(BROKEN / name, ALLOWED)
    assert len(problems) == 1, [str(p) for p in problems]
    (problem,) = problems
    assert words in problem.message
    assert (problem.line, problem.column, problem.pointer) == (line, column, pointer)
    assert problem.file == str(BROKEN / name)


def test_the_catalogue_covers_every_broken_file() -> None:
    multi = {"bad_param.yaml", "callable_not_importable.yaml", "many_problems.yaml"}
    assert {p.name for p in BROKEN.iterdir() if p.is_file()} == set(CATALOGUE) | multi


def test_every_problem_of_a_file_is_reported_in_file_order() -> None:
    problems = validate_dag_file(BROKEN / "many_problems.yaml", ALLOWED)
    found = [(p.line, p.pointer) for p in problems]
    assert found == [
        (1, "/dag_id"),
        (2, "/schedule"),
        (3, "/max_active_runs"),
        (7, "/tasks/extract/priority"),
        (10, "/tasks/load/depends_on/0"),
        (11, "/tasks/load/retries"),
    ]
    messages = [p.message for p in problems]
    assert "max_active_runs must be >= 1, not 0" in messages
    assert any("(did you mean 'extract'?)" in m for m in messages)
    assert any("retries is not a known key (did you mean 'max_retries'?)" in m for m in messages)


def test_callables_that_cannot_be_imported() -> None:
    problems = validate_dag_file(BROKEN / "callable_not_importable.yaml", ALLOWED)
    assert [p.pointer for p in problems] == ["/tasks/extract/callable", "/tasks/load/callable"]
    assert "cannot import 'examples.no_such_module'" in problems[0].message
    assert "examples.etl has no 'load_dat' (did you mean 'load_data'?)" in problems[1].message


def test_callables_are_checked_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    module = tmp_path / "side_effect_tasks.py"
    module.write_text(
        "from pathlib import Path\n"
        f"def touch() -> None:\n    Path({str(marker)!r}).write_text('ran')\n"
    )
    dag = tmp_path / "d.yaml"
    dag.write_text("dag_id: d\ntasks:\n  t: {callable: 'side_effect_tasks:touch'}\n")
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        assert validate_dag_file(dag) == []
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("side_effect_tasks", None)
    assert not marker.exists()


def test_a_disallowed_module_is_not_even_imported(tmp_path: Path) -> None:
    dag = tmp_path / "d.yaml"
    dag.write_text("dag_id: d\ntasks:\n  t: {callable: 'never_imported_module:f'}\n")
    (problem,) = validate_dag_file(dag, ["examples"])
    assert "not in allowed_modules" in problem.message


def test_params_problems() -> None:
    problems = validate_dag_file(BROKEN / "bad_param.yaml", ALLOWED)
    assert [(p.line, p.pointer) for p in problems] == [
        (3, "/params/size"),
        (4, "/params/mode/type"),
        (8, "/tasks/extract/kwargs/source"),
    ]
    assert 'default must be an integer, not "forty"' in problems[0].message
    assert "'strng' is not one of" in problems[1].message
    assert "{{ params.sorce }} names no param" in problems[2].message


def test_a_yaml_bomb_is_refused_fast() -> None:
    started = time.perf_counter()
    problems = validate_dag_file(BROKEN / "yaml_bomb.yaml")
    assert time.perf_counter() - started < budget(1.0)
    assert "YAML bomb" in problems[0].message


def test_a_recursive_alias_is_refused() -> None:
    _, root = parse_yaml("a: &a [*a, 1]\n")
    assert expansion_problem(root) is not None
    assert expansion_problem(parse_yaml("a: [1, 2]")[1]) is None


def test_a_large_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("dag_id: big\n# " + "x" * (1 << 20) + "\n")
    (problem,) = validate_dag_file(big)
    assert "larger than the limit" in problem.message


def test_a_binary_file_is_refused(tmp_path: Path) -> None:
    binary = tmp_path / "image.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    (problem,) = validate_dag_file(binary)
    assert "not UTF-8" in problem.message


def test_a_scalar_document_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "text.yaml"
    text.write_text("just some words\n")
    (problem,) = validate_dag_file(text)
    assert problem.message == "the document must be a mapping, not 'just some words'"


def test_a_python_syntax_error_has_its_line(tmp_path: Path) -> None:
    broken = tmp_path / "syntax_error.py"
    broken.write_text("from fairque.dag import DAG\n\ndag = DAG(dag_id='x', pipeline=\n")
    (problem,) = validate_dag_file(broken)
    assert problem.message.startswith("invalid Python")
    assert problem.line == 3


def test_a_python_dag_with_a_disallowed_callable() -> None:
    """Four tasks use examples.etl: the module is reported once, with how to allow it."""
    (problem,) = validate_dag_file(HERE / "mixed" / "good_py.py", ["dags"])
    assert problem.message.startswith(
        "DAG 'good_py': task 'extract': callable 'examples.etl:extract_data'"
    )
    assert "module 'examples.etl' is not in allowed_modules ['dags']" in problem.message
    assert "--allowed-modules examples.etl or FAIRQUE_ALLOWED_MODULES=examples.etl" in (
        problem.message
    )
    assert "(3 more use(s) of 'examples.etl')" in problem.message


def test_validate_paths_reports_every_file_and_duplicates() -> None:
    report = validate_paths([HERE / "dup", HERE / "valid"], ALLOWED)
    assert sorted(Path(f).name for f in report) == [
        "anchors_and_merge.yaml",
        "first.yaml",
        "second.yaml",
        "six_field_cron.yaml",
    ]
    first = report[str(HERE / "dup" / "first.yaml")]
    second = report[str(HERE / "dup" / "second.yaml")]
    assert [p.line for p in first + second] == [1, 2]
    assert str(HERE / "dup" / "second.yaml") in first[0].message
    assert str(HERE / "dup" / "first.yaml") in second[0].message
    assert "both are refused" in first[0].message
    assert report[str(HERE / "valid" / "six_field_cron.yaml")] == []
    assert len(problems_of(report)) == 2


def test_validate_paths_with_a_missing_path(tmp_path: Path) -> None:
    report = validate_paths([tmp_path / "nope.yaml"])
    (problem,) = report[str(tmp_path / "nope.yaml")]
    assert problem.message == "no such file or folder"


def test_the_example_dags_are_valid() -> None:
    report = validate_paths([REPO / "dags"], ALLOWED)
    assert {Path(f).name for f in report} == {
        "branching.yaml",
        "task_groups.yaml",
        "file_sensor.yaml",
        "flow_control_py.py",
        "orders_etl.yaml",
        "fan_out_in.yaml",
        "failure_cleanup.yaml",
        "nightly_report.yaml",
        "orders_etl_py.py",
        "taskflow_chain.yaml",
        "taskflow_chain_py.py",
        "mapped_fanout.yaml",
        "mapped_fanout_py.py",
    }
    assert problems_of(report) == []


def test_problem_strings_point_at_the_place() -> None:
    (problem,) = validate_dag_file(BROKEN / "unknown_key.yaml")
    assert isinstance(problem, Problem)
    assert str(problem) == (
        f"{BROKEN / 'unknown_key.yaml'}:7:5: {problem.message} [at /tasks/load/depend_on]"
    )


def test_flow_problems_in_a_list_and_cycles_through_flow(tmp_path: Path) -> None:
    file = tmp_path / "flows.yaml"
    file.write_text(
        "dag_id: t\n"
        'flow: ["a >> b >> a", "x >> ("]\n'
        "tasks:\n"
        '  a: {callable: "examples.etl:extract_data"}\n'
        '  b: {callable: "examples.etl:extract_data"}\n'
        '  on: {callable: "examples.etl:extract_data"}\n'
    )
    problems = validate_dag_file(file)
    assert [(p.line, p.column, p.pointer) for p in problems] == [
        (2, 30, "/flow/1"),
        (3, 1, "/tasks"),
        (4, 3, "/tasks/a"),
    ]
    assert "unexpected end of the expression at column 7" in problems[0].message
    assert "task name true is not a string" in problems[1].message
    assert problems[2].message == "dependency cycle: a -> b -> a"


LONG_IDS = """\
dag_id: {dag_id}
tasks:
  short:
    callable: "examples.etl:backup_data"
  {name}:
    callable: "examples.etl:backup_data"
"""


def test_task_ids_too_long_for_the_runs_are_refused(tmp_path: Path) -> None:
    from fairque.core.models import MAX_ID_LENGTH
    from fairque.dag.runs import manual_run_id

    dag_id, name = "d" * 150, "n" * 20
    longest = len(manual_run_id(dag_id)) + 1 + len(name)
    assert longest > MAX_ID_LENGTH >= len(manual_run_id(dag_id)) + 1 + len("short")
    path = tmp_path / "long.yaml"
    path.write_text(LONG_IDS.format(dag_id=dag_id, name=name))
    (problem,) = validate_dag_file(path)
    assert (problem.line, problem.pointer) == (5, f"/tasks/{name}")
    assert f"ids of {longest} characters" in problem.message
    assert f"the limit is {MAX_ID_LENGTH}" in problem.message
    path.write_text(LONG_IDS.format(dag_id="d" * 100, name=name))
    assert validate_dag_file(path) == []
