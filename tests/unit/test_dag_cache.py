"""The DAG cache: unchanged YAML files are neither parsed nor checked again, every
change is noticed (the file, fairque's rules, the code the callables come from), and
a broken or unwritable cache never breaks a load."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fairque.dag import load_dags, validate_paths
from fairque.dag.cache import CACHE_ENV, DagCache
from fairque.dag.entries import DagRef, DagTable
from fairque.dag.loader import DagBag
from fairque.dag.validate import Problem
from tests.timing import budget

REPO = Path(__file__).resolve().parents[2]
ALLOWED = ["examples"]


def dag_yaml(dag_id: str, tasks: int = 3, description: str = "") -> str:
    lines = [f"dag_id: {dag_id}", f"description: '{description}'", 'schedule: "0 * * * *"']
    lines.append("tasks:")
    for i in range(tasks):
        lines += [f"  t{i}:", '    callable: "examples.etl:backup_data"']
        if i:
            lines.append(f"    depends_on: [t{i - 1}]")
    return "\n".join(lines) + "\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    dags = tmp_path / "dags"
    dags.mkdir()
    for name in ("a", "b", "c"):
        (dags / f"{name}.yaml").write_text(dag_yaml(name))
    return dags


def load(
    folder: Path, cache_dir: Path, allowed: list[str] = ALLOWED, lazy: bool = False
) -> tuple[DagBag, list[str]]:
    """Load as a new process would (a fresh DagCache reading the cache file); returns
    the bag and the names of the files that were parsed."""
    cache = DagCache(cache_dir)
    bag = load_dags(folder, allowed, cache=cache, lazy=lazy)
    return bag, sorted(cache.for_folder(folder, allowed).parsed)


def age(path: Path, seconds: float = 10.0) -> None:
    """Move the file's mtime into the past, as for a file not edited just now."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - int(seconds * 1e9)))


def project(tmp_path: Path, module_name: str, source: str) -> tuple[Path, Path]:
    """A project folder holding ``dags/`` and the task module ``module_name`` (importable
    by a worker started there: the DAG folder's parent); returns both paths."""
    dags = tmp_path / "project" / "dags"
    dags.mkdir(parents=True)
    module = tmp_path / "project" / f"{module_name}.py"
    module.write_text(source)
    return dags, module


def cache_file(cache_dir: Path) -> Path:
    (found,) = cache_dir.glob("*.json")
    return found


def test_an_unchanged_folder_is_not_parsed_again(folder: Path, tmp_path: Path) -> None:
    for file in folder.iterdir():
        age(file)
    cold, parsed = load(folder, tmp_path / "cache")
    assert parsed == ["a.yaml", "b.yaml", "c.yaml"]
    warm, parsed = load(folder, tmp_path / "cache")
    assert parsed == []
    assert warm.problems == [] and sorted(warm.dags) == ["a", "b", "c"]
    assert warm.dags["b"].to_dict() == cold.dags["b"].to_dict()


def test_a_changed_file_is_parsed_again_and_only_it(folder: Path, tmp_path: Path) -> None:
    for file in folder.iterdir():
        age(file)
    load(folder, tmp_path / "cache")
    (folder / "b.yaml").write_text(dag_yaml("b", description="edited"))
    bag, parsed = load(folder, tmp_path / "cache")
    assert parsed == ["b.yaml"]
    assert bag.dags["b"].description == "edited"
    # the same size, written twice within the clock's resolution: the hash decides
    (folder / "b.yaml").write_text(dag_yaml("b", description="EDITED"))
    bag, parsed = load(folder, tmp_path / "cache")
    assert parsed == ["b.yaml"] and bag.dags["b"].description == "EDITED"


def test_a_touched_file_is_read_but_not_parsed(folder: Path, tmp_path: Path) -> None:
    load(folder, tmp_path / "cache")
    (folder / "a.yaml").touch()
    _, parsed = load(folder, tmp_path / "cache")
    assert parsed == []


def test_renamed_removed_and_added_files(folder: Path, tmp_path: Path) -> None:
    load(folder, tmp_path / "cache")
    (folder / "a.yaml").rename(folder / "renamed.yaml")
    (folder / "c.yaml").unlink()
    (folder / "d.yaml").write_text(dag_yaml("d"))
    bag, parsed = load(folder, tmp_path / "cache")
    assert parsed == ["d.yaml", "renamed.yaml"]
    assert sorted(bag.dags) == ["a", "b", "d"]
    assert sorted(bag.files) == sorted(
        str(folder / n) for n in ("b.yaml", "d.yaml", "renamed.yaml")
    )
    entries = json.loads(cache_file(tmp_path / "cache").read_text())["entries"]
    assert sorted(entries) == ["b.yaml", "d.yaml", "renamed.yaml"]  # gone files pruned


def test_validating_one_file_keeps_the_entries_of_the_others(folder: Path, tmp_path: Path) -> None:
    load(folder, tmp_path / "cache")
    cache = DagCache(tmp_path / "cache")
    assert validate_paths([folder / "a.yaml"], ALLOWED, cache=cache) == {str(folder / "a.yaml"): []}
    entries = json.loads(cache_file(tmp_path / "cache").read_text())["entries"]
    assert sorted(entries) == ["a.yaml", "b.yaml", "c.yaml"]


def test_a_broken_file_keeps_its_problem_until_fixed(folder: Path, tmp_path: Path) -> None:
    broken = folder / "b.yaml"
    broken.write_text("dag_id: b\ntasks:\n  t0:\n    callable: [oops\n")
    for file in folder.iterdir():
        age(file)
    cold, parsed = load(folder, tmp_path / "cache")
    assert "b.yaml" in parsed
    (problem,) = cold.files[str(broken)]
    assert (problem.line, problem.column) == (5, 1) and "invalid YAML" in problem.message
    warm, parsed = load(folder, tmp_path / "cache")
    assert parsed == [] and warm.files[str(broken)] == [problem]
    assert sorted(warm.dags) == ["a", "c"]
    broken.write_text(dag_yaml("b", tasks=2))
    fixed, parsed = load(folder, tmp_path / "cache")
    assert parsed == ["b.yaml"] and fixed.problems == [] and len(fixed.dags["b"].task_names) == 2


def test_a_schema_problem_is_reported_from_the_cache_with_its_place(
    folder: Path, tmp_path: Path
) -> None:
    (folder / "a.yaml").write_text(dag_yaml("a").replace("schedule:", "schedul:"))
    cold = validate_paths([folder], ALLOWED, cache=DagCache(tmp_path / "cache"))
    warm = validate_paths([folder], ALLOWED, cache=DagCache(tmp_path / "cache"))
    assert warm == cold
    (problem,) = warm[str(folder / "a.yaml")]
    assert (problem.line, problem.column, problem.pointer) == (3, 1, "/schedul")


def problem_after_code_change(
    tmp_path: Path, module_name: str, before: str, after: str, dag_text: str
) -> tuple[Problem, Path]:
    """Load a DAG file naming functions of ``module_name`` (valid with ``before``),
    change the module to ``after`` and load again: the file is not parsed again, yet
    its one problem (returned, with the DAG folder) is found."""
    dags, module = project(tmp_path, module_name, before)
    (dags / "x.yaml").write_text(dag_text)
    good, _ = load(dags, tmp_path / "cache", [module_name])
    assert good.problems == []
    module.write_text(after)
    bad, parsed = load(dags, tmp_path / "cache", [module_name])
    assert parsed == []
    (problem,) = bad.problems
    return problem, dags


def test_callables_are_checked_on_every_load(tmp_path: Path) -> None:
    # the module a callable names changes, the DAG file does not: the change is seen
    text = dag_yaml("x", tasks=1).replace("examples.etl:backup_data", "fq_cache_tasks:work")
    before, after = "def work():\n    return 1\n", "def other():\n    return 1\n"
    problem, _ = problem_after_code_change(tmp_path, "fq_cache_tasks", before, after, text)
    assert "has no 'work'" in problem.message and (problem.line, problem.column) == (6, 5)
    assert "fq_cache_tasks" not in sys.modules


def test_a_python_dag_file_is_imported_every_time(tmp_path: Path) -> None:
    # its structure depends on what it imports, which a file identity cannot follow
    dags = tmp_path / "pydags"
    dags.mkdir()
    helper = dags / "fq_cache_helper.py"
    helper.write_text("DESCRIPTION = 'one'\n")
    (dags / "flow.py").write_text(
        textwrap.dedent(
            """
            from fq_cache_helper import DESCRIPTION
            from fairque import Task
            from fairque.dag import DAG

            dag = DAG(dag_id="py", description=DESCRIPTION, pipeline=Task.create("u"))
            """
        )
    )
    first, _ = load(dags, tmp_path / "cache", ["*"])
    helper.write_text("DESCRIPTION = 'three'\n")  # another size: a .pyc is not reused
    second, _ = load(dags, tmp_path / "cache", ["*"])
    assert (first.dags["py"].description, second.dags["py"].description) == ("one", "three")


def test_a_corrupt_cache_file_is_ignored_with_one_warning(
    folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    load(folder, tmp_path / "cache")
    cache_file(tmp_path / "cache").write_text('{"format": 1, "entries": [tru')
    with caplog.at_level(logging.WARNING, logger="fairque.dag.cache"):
        bag, parsed = load(folder, tmp_path / "cache")
        load_dags(folder, ALLOWED, cache=DagCache(tmp_path / "cache"))
    assert bag.problems == [] and parsed == ["a.yaml", "b.yaml", "c.yaml"]
    assert [r.message for r in caplog.records if "corrupt" in r.message] != []
    assert len([r for r in caplog.records if "corrupt" in r.message]) == 1
    _, parsed = load(folder, tmp_path / "cache")  # rewritten whole
    assert parsed == []


@pytest.mark.parametrize(
    "entry,reparsed",
    [
        ({"problems": "not a list"}, ["a.yaml"]),
        ({"identity": None}, []),  # the content hash still vouches for the entry
        ({"recorded_ns": "x"}, []),
        ("not an entry", ["a.yaml"]),
    ],
    ids=["bad-problems", "bad-identity", "bad-time", "not-a-mapping"],
)
def test_a_malformed_entry_is_parsed_again(
    folder: Path, tmp_path: Path, entry: object, reparsed: list[str]
) -> None:
    for file in folder.iterdir():
        age(file)
    load(folder, tmp_path / "cache")
    path = cache_file(tmp_path / "cache")
    document = json.loads(path.read_text())
    entries = document["entries"]
    entries["a.yaml"] = {**entries["a.yaml"], **entry} if isinstance(entry, dict) else entry
    path.write_text(json.dumps(document))
    bag, parsed = load(folder, tmp_path / "cache")
    assert bag.problems == [] and parsed == reparsed and sorted(bag.dags) == ["a", "b", "c"]


def test_an_unwritable_state_folder_never_breaks_a_load(
    folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    with caplog.at_level(logging.WARNING, logger="fairque.dag.cache"):
        first, _ = load(folder, blocked / "dag-cache")
        second, parsed = load(folder, blocked / "dag-cache")
    assert first.problems == second.problems == [] and sorted(second.dags) == ["a", "b", "c"]
    assert parsed == ["a.yaml", "b.yaml", "c.yaml"]
    writes = [r for r in caplog.records if "cannot write the DAG cache" in r.message]
    assert len(writes) == 1


def test_a_cache_of_other_rules_is_not_used(folder: Path, tmp_path: Path) -> None:
    # another fairque version, DAG schema or loader code recorded it
    load(folder, tmp_path / "cache")
    path = cache_file(tmp_path / "cache")
    document = json.loads(path.read_text())
    document["code"][0] = "0.0.1"
    path.write_text(json.dumps(document))
    _, parsed = load(folder, tmp_path / "cache")
    assert parsed == ["a.yaml", "b.yaml", "c.yaml"]
    document = json.loads(path.read_text())
    document["format"] = 0
    path.write_text(json.dumps(document))
    _, parsed = load(folder, tmp_path / "cache")
    assert parsed == ["a.yaml", "b.yaml", "c.yaml"]


def test_the_allowed_modules_have_their_own_cache(folder: Path, tmp_path: Path) -> None:
    load(folder, tmp_path / "cache", ["examples"])
    refused, parsed = load(folder, tmp_path / "cache", ["dags"])
    assert parsed == ["a.yaml", "b.yaml", "c.yaml"]
    assert len(refused.problems) == 3 and "not in allowed_modules" in refused.problems[0].message


def test_lazy_loading_builds_a_dag_on_first_use(folder: Path, tmp_path: Path) -> None:
    for file in folder.iterdir():
        age(file)
    load(folder, tmp_path / "cache")
    bag, _ = load(folder, tmp_path / "cache", lazy=True)
    assert isinstance(bag.dags, DagTable)
    assert all(isinstance(bag.dags._items[i], DagRef) for i in "abc")
    assert "a" in bag.dags and "z" not in bag.dags
    assert isinstance(bag.dags._items["a"], DagRef)  # asking does not build
    info = bag.info("a")
    assert (info.dag_id, info.tasks, info.schedule) == ("a", 3, "0 * * * *")
    assert bag.dags["a"].task_names == ["t0", "t1", "t2"]
    assert not isinstance(bag.dags._items["a"], DagRef)


def test_dates_in_a_document_come_back_as_dates(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "d.yaml").write_text(dag_yaml("d") + "start_date: 2024-01-01\n")
    age(dags / "d.yaml")
    cold, _ = load(dags, tmp_path / "cache")
    warm, parsed = load(dags, tmp_path / "cache")
    assert parsed == [] and warm.dags["d"].start_date == cold.dags["d"].start_date
    assert warm.dags["d"].start_date is not None and warm.dags["d"].start_date.year == 2024


def test_the_environment_switch_turns_the_cache_off(
    folder: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, "off")
    assert load_dags(folder, ALLOWED, cache=True).problems == []
    assert not (state_dir / "dag-cache").exists()
    monkeypatch.delenv(CACHE_ENV)
    assert load_dags(folder, ALLOWED, cache=True).problems == []
    assert list((state_dir / "dag-cache").glob("*.json")) != []


WRITER = """
import sys
from pathlib import Path
from fairque.dag import load_dags
from fairque.dag.cache import DagCache

folder, cache_dir = Path(sys.argv[1]), Path(sys.argv[2])
mine, rounds = sys.argv[3], int(sys.argv[4])
text = sys.stdin.read()
for i in range(rounds):
    temporary = folder / f".{mine}.tmp"  # written whole: the other process reads it
    temporary.write_text(text.replace("'0'", f"'{i}'"))
    temporary.replace(folder / f"{mine}.yaml")
    bag = load_dags(folder, ["examples"], cache=DagCache(cache_dir))
    assert bag.problems == [], bag.problems
"""


def test_two_processes_writing_at_once_never_tear_the_cache(folder: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(folder), str(cache_dir), mine, "10"],
            stdin=subprocess.PIPE,
            cwd=REPO,
        )
        for mine in ("p", "q")
    ]
    for writer, mine in zip(writers, ("p", "q"), strict=True):
        assert writer.stdin is not None
        writer.stdin.write(dag_yaml(mine, description="0").encode())
        writer.stdin.close()
    for writer in writers:
        assert writer.wait(timeout=budget(60)) == 0
    json.loads(cache_file(cache_dir).read_text())  # whole, whoever wrote last
    for file in folder.iterdir():
        age(file)
    bag, _ = load(folder, cache_dir)
    assert bag.problems == [] and sorted(bag.dags) == ["a", "b", "c", "p", "q"]
    assert bag.dags["p"].description == bag.dags["q"].description == "9"
    _, parsed = load(folder, cache_dir)
    assert parsed == []


def test_the_scheduler_reload_parses_only_the_changed_file(folder: Path, state_dir: Path) -> None:
    from fairque.scheduler.dags import DagSource

    source = DagSource(folder)
    cache = DagCache.shared()
    assert cache is not None
    parsed = cache.for_folder(folder, ["*"]).parsed
    assert sorted(parsed) == ["a.yaml", "b.yaml", "c.yaml"] and sorted(source.dags) == [
        "a",
        "b",
        "c",
    ]
    before = {i: id(d) for i, d in source.dags.items()}
    (folder / "b.yaml").write_text(dag_yaml("b").replace("0 * * * *", "30 * * * *"))
    source.reload()
    assert parsed[3:] == ["b.yaml"]
    assert source.dags["b"].schedule == "30 * * * *"
    assert id(source.dags["a"]) == before["a"]  # unchanged files: the same DAG objects
    assert sorted(key[0] for key in cache.built) == sorted(str(folder / f"{n}.yaml") for n in "abc")


def test_a_dag_id_in_two_files_is_refused_from_the_cache_too(folder: Path, tmp_path: Path) -> None:
    (folder / "twin.yaml").write_text(dag_yaml("a"))
    for file in folder.iterdir():
        age(file)
    cold, _ = load(folder, tmp_path / "cache", lazy=True)
    warm, parsed = load(folder, tmp_path / "cache", lazy=True)
    assert parsed == [] and warm.problems == cold.problems
    assert sorted(warm.dags) == ["b", "c"]
    assert [(p.file, p.line) for p in warm.problems] == [
        (str(folder / "a.yaml"), 1),
        (str(folder / "twin.yaml"), 1),
    ]
    assert "also defined in" in warm.problems[0].message


def test_the_return_type_an_expand_maps_over_is_checked_on_every_load(tmp_path: Path) -> None:
    # it is declared by the code, not the file: a cached file still sees it change
    text = (
        "dag_id: m\ntasks:\n  items: {callable: 'fq_cache_mapped:items'}\n"
        "  each:\n    callable: 'fq_cache_mapped:one'\n    expand: {x: {from: items}}\n"
    )
    before = "def items() -> list[int]:\n    return [1]\n\ndef one(x):\n    return x\n"
    after = before.replace("list[int]", "int")
    problem, dags = problem_after_code_change(tmp_path, "fq_cache_mapped", before, after, text)
    assert "not a list" in problem.message and (problem.line, problem.column) == (6, 14)
    uncached = validate_paths([dags], ["fq_cache_mapped"])[str(dags / "x.yaml")]
    assert [problem] == uncached


def test_a_cached_summary_counts_the_tasks_of_task_groups(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    grouped = dags / "g.yaml"
    text = (
        "dag_id: g\ngroups:\n  outer:\n    tasks: {a: STEP, b: STEP}\n"
        "    groups:\n      inner:\n        tasks: {c: STEP}\ntasks:\n  top: STEP\n"
    )
    step = '{callable: "examples.etl:backup_data"}'
    grouped.write_text(text.replace("STEP", step))
    age(grouped)
    load(dags, tmp_path / "cache")
    bag, parsed = load(dags, tmp_path / "cache", lazy=True)
    assert parsed == [] and isinstance(bag.dags._items["g"], DagRef)
    assert bag.info("g").tasks == 4  # as many as the DAG built from the file has
    assert len(bag.dags["g"].pipeline.nodes) == 4
    grouped.write_text(text.replace("{c: STEP}", "{c: STEP, d: STEP}").replace("STEP", step))
    bag, parsed = load(dags, tmp_path / "cache", lazy=True)
    assert parsed == ["g.yaml"] and bag.info("g").tasks == 5  # dag list sees the edit


def test_every_module_whose_rules_shape_an_entry_invalidates_the_cache() -> None:
    # a change to how groups are flattened, references or shorthands read, params or
    # the shared rules checked changes what an entry says: such a cache is not used
    from fairque.dag import cache

    shaping = {
        "fairque.core.refs",
        "fairque.dag.codechecks",
        "fairque.dag.document",
        "fairque.dag.entries",
        "fairque.dag.groups",
        "fairque.dag.params",
        "fairque.dag.references",
        "fairque.dag.rules",
        "fairque.dag.shorthands",
    }
    assert shaping <= set(cache._RULE_MODULES)
