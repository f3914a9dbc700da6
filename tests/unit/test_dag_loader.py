"""Loading DAG folders: YAML and Python files, broken files next to good ones,
duplicate dag_ids, the folder setting, and how YAML tasks are built."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fairque import Priority
from fairque.core.errors import DagNotFoundError
from fairque.dag import (
    DAG,
    dags_folder,
    load_dag_file,
    load_dags,
    validate_dag_file,
    validate_paths,
)
from fairque.dag.loader import ENV_FOLDER, dag_files, import_dag_module
from fairque.tasks import FunctionTask, run_in_process
from tests.timing import budget

HERE = Path(__file__).parent / "dag_files"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_imports() -> Iterator[None]:
    """Undo what importing DAG files adds to sys.path and sys.modules."""
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if name.startswith(("_fairque_dag_", "fq_test_pkg_dags")):
            del sys.modules[name]


def test_the_repository_dags_load_without_problems() -> None:
    bag = load_dags(REPO / "dags", ["examples", "dags"])
    assert bag.problems == []
    assert sorted(bag.dags) == [
        "branching",
        "failure_cleanup",
        "fan_out_in",
        "file_sensor",
        "flow_control_py",
        "mapped_fanout",
        "mapped_fanout_py",
        "nightly_report",
        "orders_etl",
        "orders_etl_py",
        "task_groups",
        "taskflow_chain",
        "taskflow_chain_py",
    ]
    assert all(f.endswith((".yaml", ".py")) for f in bag.files)
    assert bag.get("nightly_report").schedule == "*/5 * * * *"


def test_the_python_dag_file_is_imported_as_a_module_of_the_dags_package() -> None:
    result = load_dag_file(REPO / "dags" / "orders_etl_py.py")
    assert result.ok
    (dag,) = result.dags
    assert dag.source == str(REPO / "dags" / "orders_etl_py.py")
    assert Path(sys.modules["dags.orders_etl_py"].__file__ or "").name == "orders_etl_py.py"
    assert dag.task_names == ["extract", "transform", "validate", "load"]
    assert dag.pipeline.nodes["extract"].max_retries == 2  # from default_args


def test_the_yaml_and_python_etl_are_the_same_graph() -> None:
    bag = load_dags(REPO / "dags")
    yaml_dag, py_dag = bag.get("orders_etl"), bag.get("orders_etl_py")
    assert yaml_dag.pipeline.edges == py_dag.pipeline.edges
    assert yaml_dag.planned_lineage() == py_dag.planned_lineage()
    assert yaml_dag.check_conf(None) == py_dag.check_conf(None) == {"source": "database"}


def test_a_broken_file_never_stops_the_others(clean_imports: None) -> None:
    bag = load_dags(HERE / "mixed", ["examples"])
    assert sorted(bag.dags) == ["good_py", "good_py_single", "good_yaml"]
    assert sorted(Path(f).name for f in bag.files) == [
        "broken.yaml",
        "broken_py.py",
        "good.yaml",
        "good_py.py",
    ]  # _helper.py and notes.txt are not DAG files
    by_file = {Path(p.file).name: p for p in bag.problems}
    assert sorted(by_file) == ["broken.yaml", "broken_py.py"]
    assert by_file["broken_py.py"].line == 1
    assert "RuntimeError: this DAG file is broken on purpose" in by_file["broken_py.py"].message
    assert by_file["broken.yaml"].pointer == "/tasks/extract/depends_on/0"


def test_python_dag_files_outside_a_package(clean_imports: None) -> None:
    result = load_dag_file(HERE / "mixed" / "good_py.py")
    by_id = {dag.dag_id: dag for dag in result.dags}
    failure = by_id["good_py"]
    assert failure.task_names == ["extract", "flaky_step", "cleanup"]
    assert failure.source == str(HERE / "mixed" / "good_py.py")
    extract, flaky = failure.pipeline.nodes["extract"], failure.pipeline.nodes["flaky_step"]
    assert (extract.priority, extract.max_retries) == (Priority.HIGH, 1)
    assert flaky.max_retries == 0  # the decorator set it: default_args do not override
    run = run_in_process(failure.pipeline)
    assert {k: v.value for k, v in run.states.items()} == {
        "extract": "finished",
        "flaky_step": "failed",
        "cleanup": "finished",
    }


def test_a_python_dag_file_in_another_package_folder(tmp_path: Path, clean_imports: None) -> None:
    package = tmp_path / "fq_test_pkg_dags"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tasks_here.py").write_text(
        "from fairque import task\n\n@task(task_id='hello')\ndef hello() -> str:\n    return 'hi'\n"
    )
    (package / "one.py").write_text(
        "from fq_test_pkg_dags.tasks_here import hello\nfrom fairque.dag import DAG\n\n"
        "dag = DAG(dag_id='one', pipeline=hello())\n"
    )
    path_before = list(sys.path)
    result = load_dag_file(package / "one.py")
    assert result.ok, result.problems
    # its package is importable only through the DAG folder's parent: nothing stays behind
    assert "fq_test_pkg_dags.one" not in sys.modules
    assert sys.path == path_before
    assert result.dags[0].pipeline.nodes["hello"].func == "fq_test_pkg_dags.tasks_here:hello"
    # loading again re-reads the file
    (package / "one.py").write_text(
        "from fq_test_pkg_dags.tasks_here import hello\nfrom fairque.dag import DAG\n\n"
        "dag = DAG(dag_id='one', pipeline=hello(), description='edited')\n"
    )
    assert load_dag_file(package / "one.py").dags[0].description == "edited"
    assert import_dag_module(package / "one.py") is sys.modules["fq_test_pkg_dags.one"]


def test_duplicate_dag_ids_are_both_refused() -> None:
    bag = load_dags(HERE / "dup")
    assert bag.dags == {}
    assert len(bag.problems) == 2
    first, second = bag.problems
    assert "second.yaml" in first.message and "first.yaml" in second.message
    assert (first.line, second.line) == (1, 2)


def test_duplicates_inside_one_python_file_are_refused(tmp_path: Path, clean_imports: None) -> None:
    file = tmp_path / "twice.py"
    file.write_text(
        "from examples.etl import cleanup\nfrom fairque.dag import DAG\n\n"
        "a = DAG(dag_id='same', pipeline=cleanup())\nb = DAG(dag_id='same', pipeline=cleanup())\n"
    )
    bag = load_dags(tmp_path)
    assert bag.dags == {}
    assert all("also defined in this file" in p.message for p in bag.problems)


def test_dags_folder_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert dags_folder(None) == Path("dags")
    monkeypatch.setenv(ENV_FOLDER, str(tmp_path))
    assert dags_folder(None) == tmp_path
    assert dags_folder("elsewhere") == Path("elsewhere")
    (tmp_path / "x.yaml").write_text("dag_id: x\ntasks:\n  t: {callable: 'examples.etl:cleanup'}\n")
    assert sorted(load_dags().dags) == ["x"]


def test_a_missing_folder_is_one_problem(tmp_path: Path) -> None:
    bag = load_dags(tmp_path / "nowhere")
    (problem,) = bag.problems
    assert "DAG folder not found" in problem.message
    assert bag.dags == {}


def test_get_names_the_known_dags() -> None:
    bag = load_dags(REPO / "dags")
    with pytest.raises(DagNotFoundError, match=r"did you mean 'orders_etl'\?"):
        bag.get("order_etl")


def test_dag_files_are_sorted_and_filtered() -> None:
    assert [p.name for p in dag_files(HERE / "mixed")] == [
        "broken.yaml",
        "broken_py.py",
        "good.yaml",
        "good_py.py",
    ]


# --- how a YAML task is built ---------------------------------------------------------------


def test_yaml_tasks_take_decorator_options_then_default_args_then_their_keys(
    tmp_path: Path,
) -> None:
    file = tmp_path / "layers.yaml"
    file.write_text(
        "dag_id: layers\n"
        "tenant: 'user:7'\n"
        "default_args: {max_retries: 3, priority: LOW}\n"
        "tasks:\n"
        "  flaky: {callable: 'examples.etl:failing_step'}\n"
        "  mine: {callable: 'examples.etl:failing_step', max_retries: 1, priority: 6}\n"
        "  clean: {callable: 'examples.etl:cleanup', depends_on: [flaky, mine]}\n"
        "  plain: {callable: 'examples.dag_tasks:make_batch', args: [3], xcom_push: batch}\n"
    )
    (dag,) = load_dag_file(file).dags
    nodes = dag.pipeline.nodes
    assert (nodes["flaky"].max_retries, nodes["flaky"].priority) == (3, Priority.LOW)
    assert (nodes["mine"].max_retries, nodes["mine"].priority) == (1, Priority.CRITICAL)
    assert nodes["clean"].trigger_rule == "all_done"  # from @task(trigger_rule="all_done")
    assert nodes["plain"].func == "examples.dag_tasks:make_batch"
    assert (nodes["plain"].xcom_push_key, nodes["plain"].enable_xcom) == ("batch", True)
    assert all(t.user_id == "user:7" for t in nodes.values())
    assert dag.pipeline.heads == ("flaky", "mine", "plain")
    assert dag.pipeline.tails == ("clean", "plain")
    records = dag.compile("r1")
    assert all(r.user_id == "user:7" for r in records)
    assert sorted(next(r for r in records if r.name == "clean").depends_on) == [
        "r1:flaky",
        "r1:mine",
    ]


def test_merge_keys_and_anchors() -> None:
    (dag,) = load_dag_file(HERE / "valid" / "anchors_and_merge.yaml").dags
    backup = dag.pipeline.nodes["backup"]
    assert (backup.func, backup.max_retries, backup.priority) == (
        "examples.etl:backup_data",
        1,
        Priority.VERY_HIGH,
    )


def test_flow_and_depends_on_add_up() -> None:
    (dag,) = load_dag_file(HERE / "valid" / "six_field_cron.yaml").dags
    assert dag.pipeline.edges == frozenset({("a", "b"), ("a", "c")})
    assert dag.timezone == "Europe/Paris"


def test_the_example_dags_run_in_process_with_their_conf() -> None:
    bag = load_dags(REPO / "dags")
    etl: DAG = bag.get("orders_etl")
    run = run_in_process(etl.pipeline_for({"source": "api"}))
    assert run.succeeded
    assert run.results["extract"] == {"source": "api", "records": 1000}
    fan = run_in_process(bag.get("fan_out_in").pipeline_for({"size": 8}))
    assert fan.results["combine"] == {"parts": 4, "total": 36}
    failing = run_in_process(bag.get("failure_cleanup").pipeline_for(None))
    assert failing.states["cleanup"].value == "finished"
    assert failing.states["flaky"].value == "failed"


def test_a_python_dag_keeps_function_tasks_callable() -> None:
    dag = load_dags(REPO / "dags").get("orders_etl_py")
    assert isinstance(dag.pipeline.nodes["extract"], FunctionTask)


@pytest.mark.slow
def test_callables_import_from_the_current_folder_as_on_a_worker(tmp_path: Path) -> None:
    """A console script does not put the current folder on sys.path; the loader does,
    as ``fairque worker`` does, so ``examples.etl:*`` callables resolve."""
    import subprocess

    script = tmp_path / "check.py"
    script.write_text(
        "from fairque.dag import validate_paths\n"
        "report = validate_paths(['dags/orders_etl.yaml'], ['examples'])\n"
        "print(sum(len(found) for found in report.values()))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], cwd=REPO, capture_output=True, text=True, timeout=budget(60)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"


def _python_dag_with_a_neighbour(folder: Path) -> Path:
    """A Python DAG file outside any package whose task comes from a module next to it."""
    folder.mkdir()
    (folder / "fq_neighbour_tasks.py").write_text(
        "from fairque import task\n\n@task\ndef near() -> int:\n    return 1\n"
    )
    dag = folder / "with_neighbour.py"
    dag.write_text(
        "from fq_neighbour_tasks import near\nfrom fairque.dag import DAG\n\n"
        "dag = DAG(dag_id='with_neighbour', pipeline=near())\n"
    )
    return dag


def test_a_yaml_dag_validates_the_same_after_a_python_dag(tmp_path: Path) -> None:
    """Loading a Python DAG file leaves sys.path and the modules found through its folder
    as they were, so it cannot make a later YAML file's callable importable."""
    python_dag = _python_dag_with_a_neighbour(tmp_path / "py")
    (tmp_path / "yaml").mkdir()
    yaml_dag = tmp_path / "yaml" / "uses_neighbour.yaml"
    yaml_dag.write_text(
        "dag_id: uses_neighbour\ntasks:\n  t: {callable: 'fq_neighbour_tasks:near'}\n"
    )
    path_before, modules_before = list(sys.path), set(sys.modules)

    alone = validate_paths([yaml_dag])[str(yaml_dag)]
    after = validate_paths([python_dag, yaml_dag])

    assert [p.message for p in after[str(yaml_dag)]] == [p.message for p in alone]
    assert "cannot import 'fq_neighbour_tasks'" in alone[0].message
    assert sys.path == path_before
    assert not {
        m for m in set(sys.modules) - modules_before if "neighbour" in m or "_fairque_dag_" in m
    }


def test_a_task_function_a_worker_cannot_import_is_refused(tmp_path: Path) -> None:
    python_dag = _python_dag_with_a_neighbour(tmp_path / "py")
    (problem,) = validate_dag_file(python_dag)
    assert "module 'fq_neighbour_tasks', found only through the DAG file's folder" in (
        problem.message
    )
    assert "move it to an importable module" in problem.message
    inside = tmp_path / "inside.py"
    inside.write_text(
        "from fairque import task\nfrom fairque.dag import DAG\n\n"
        "@task\ndef here() -> int:\n    return 1\n\n"
        "dag = DAG(dag_id='inside', pipeline=here())\n"
    )
    (problem,) = validate_dag_file(inside)
    assert "function 'here' is defined in the DAG file itself" in problem.message
    assert "move it to an importable module" in problem.message
