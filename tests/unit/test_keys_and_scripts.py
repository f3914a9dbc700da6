"""Key names come from keys.py alone, and the Lua scripts load, expand and document themselves.

Pure logic: no Redis server is needed.
"""

from __future__ import annotations

import inspect
import re
from importlib import resources
from pathlib import Path

import pytest
from redis.crc import key_slot

from fairque.core.keys import CLUSTER_SLOT_KEY, CLUSTER_TAG, Keys
from fairque.core.models import TaskState
from fairque.queue.scripts import (
    SCRIPT_NAMES,
    function_name,
    library_source,
    locate_lua_error,
    script_source,
)


def test_on_a_cluster_every_key_and_key_head_is_in_one_hash_slot() -> None:
    """Every key a script is given, and every head it builds a key from (head + id), is
    in the slot of the cluster tag, so no call of any script crosses slots."""
    every = [k for keys in _every_key(Keys("fq", CLUSTER_TAG)).values() for k in keys]
    assert len(every) > 50 and all("{s00}" in k for k in every)
    slots = {key_slot(k.encode()) for k in every}
    assert slots == {key_slot(CLUSTER_SLOT_KEY.encode())}


LUA_DIR = Path(__file__).resolve().parents[2] / "engine" / "fairque" / "lua"
SAMPLE_ID = "org:42:critical"


def _every_key(keys: Keys) -> dict[str, list[str]]:
    """Every key and channel name a Keys object gives, by the attribute that gave it.

    Found by introspection, so a key added to keys.py later is checked too.
    """
    found: dict[str, list[str]] = {}
    for name, member in inspect.getmembers(type(keys)):
        if name.startswith("_") or name == "head":  # head: what keys start with, not a key
            continue
        if isinstance(member, property):
            value = getattr(keys, name)
        elif inspect.isfunction(member):
            params = list(inspect.signature(member).parameters)[1:]
            if name == "state":
                value = [keys.state(s) for s in TaskState]
            elif name == "task_log":
                value = keys.task_log(SAMPLE_ID, 1)
            elif params == ["user_id", "queue"]:  # the default queue's keys and another's
                both = [member(keys, SAMPLE_ID), member(keys, SAMPLE_ID, "gpu")]
                value = [k for v in both for k in ([v] if isinstance(v, str) else v)]
            else:
                assert len(params) <= 1, f"Keys.{name} takes {params}: teach this test about it"
                value = member(keys, SAMPLE_ID) if params else member(keys)
        else:
            continue
        if name == "templates":  # the tails go after a user id; the rest are key heads
            head, tail_critical, tail_normal = value[1], value[2], value[3]
            value = [v for v in value if v not in (tail_critical, tail_normal)]
            assert head.endswith(":") and tail_critical.startswith(":") and tail_normal[0] == ":"
        if name == "queue_templates":  # names, an infix, a tail, a separator; then keys
            default, head, infix, tail, tenant_queues, separator, *gate_keys = value
            assert (default, infix, tail, separator) == ("default", ":user:", ":active", "~")
            assert head.endswith(":") and tenant_queues.endswith(":")
            value = [head, tenant_queues, *gate_keys]
        found[name] = [value] if isinstance(value, str) else list(value)
    return found


def test_the_introspection_sees_every_kind_of_key() -> None:
    names = set(_every_key(Keys()))
    assert {"critical", "normal", "task", "state", "stats", "active_users", "clock"} <= names
    assert {"ready_channel", "workers", "worker", "deps_waiting", "templates"} <= names


@pytest.mark.parametrize("prefix", ["fq", "tenant-a", "app:fq"])
def test_every_key_starts_with_the_prefix(prefix: str) -> None:
    for name, values in _every_key(Keys(prefix)).items():
        assert values, name
        for value in values:
            assert value.startswith(prefix + ":"), (name, value)


def test_a_custom_prefix_replaces_the_default_everywhere() -> None:
    custom = _every_key(Keys("myapp"))
    default = _every_key(Keys())
    assert custom.keys() == default.keys()
    for name, values in custom.items():
        assert not any(v.startswith("fq:") for v in values), name
        assert values == [v.replace("fq:", "myapp:", 1) for v in default[name]], name


def test_default_key_layout() -> None:
    keys = Keys()
    assert keys.critical("u") == "fq:queue:user:u:critical"
    assert keys.normal("u") == "fq:queue:user:u:normal"
    assert keys.user_queues("u") == (keys.critical("u"), keys.normal("u"))
    assert keys.task("t") == "fq:task:t"
    assert keys.state(TaskState.STARTED) == keys.state("started") == "fq:state:started"
    assert keys.all_states() == [f"fq:state:{s.value}" for s in TaskState]


def test_an_unknown_state_has_no_key() -> None:
    with pytest.raises(ValueError, match="running"):
        Keys().state("running")


@pytest.mark.parametrize("prefix", ["fq", "app:fq"])
@pytest.mark.parametrize("user_id", [SAMPLE_ID, "a:b:c", "u", "alice@example.com"])
def test_templates_rebuild_the_keys_the_methods_give(prefix: str, user_id: str) -> None:
    keys = Keys(prefix)
    templates = keys.templates()
    assert len(templates) == 6
    task_prefix, head, critical_tail, normal_tail, waiting_prefix, blocked_prefix = templates
    assert head + user_id + critical_tail == keys.critical(user_id)
    assert head + user_id + normal_tail == keys.normal(user_id)
    task_id = "task:" + user_id
    assert task_prefix + task_id == keys.task(task_id)
    assert waiting_prefix + task_id == keys.deps_waiting(task_id)
    assert blocked_prefix + task_id == keys.deps_blocked(task_id)


@pytest.mark.parametrize("prefix", ["fq", "app:fq"])
@pytest.mark.parametrize("user_id", [SAMPLE_ID, "a:user:b", "alice@example.com"])
def test_queue_templates_rebuild_the_keys_of_another_queue(prefix: str, user_id: str) -> None:
    keys = Keys(prefix)
    _, head, critical_tail, normal_tail, *_ = keys.templates()
    default, queues_head, infix, active_tail, tenant_queues, *_ = keys.queue_templates()
    assert keys.critical(user_id, default) == head + user_id + critical_tail
    assert keys.active(default) == keys.active_users
    for queue in ("gpu", "a.b-c_1"):
        lane = queues_head + queue + infix + user_id
        assert keys.critical(user_id, queue) == lane + critical_tail
        assert keys.normal(user_id, queue) == lane + normal_tail
        assert keys.active(queue) == queues_head + queue + active_tail
    assert keys.tenant_queues(user_id) == tenant_queues + user_id


def test_keys_of_different_kinds_never_collide() -> None:
    keys = Keys()
    ids = ["a", "a:critical", "a:normal", "critical", "normal", "queue:user:a", "state:queued"]
    made = [f(i) for i in ids for f in (keys.critical, keys.normal, keys.task, keys.worker)]
    made += [keys.deps_waiting(i) for i in ids] + [keys.deps_blocked(i) for i in ids]
    made += [keys.xcom(i) for i in ids] + keys.all_states()
    made += [keys.stats, keys.schedules, keys.scheduler_lock, keys.active_users]
    made += [keys.all_users, keys.clock, keys.ready_channel, keys.workers]
    for queue in ("gpu", "user", "critical", "active"):  # queue names have no ':'
        made += [f(i, queue) for i in ids for f in (keys.critical, keys.normal)]
        made += [keys.active(queue)]
    made += [keys.tenant_queues(i) for i in ids] + [keys.queue_counts]
    made += [keys.pools, keys.pools_running]
    made += [keys.open_lanes(q) for q in ("default", "gpu", "running")]
    made += [keys.gate_lanes(g) for g in ("gpu", "dag=etl", "running")]
    made += [keys.batch(i) for i in ids] + [keys.batches, keys.pending_steps]
    assert len(made) == len(set(made))


# --- Lua scripts ---------------------------------------------------------------------


def _lua_files() -> list[str]:
    return sorted(
        entry.name
        for entry in resources.files("fairque.lua").iterdir()
        if entry.name.endswith(".lua")
    )


def test_the_lua_files_ship_as_package_data() -> None:
    files = _lua_files()
    assert "_common.lua" in files and "push.lua" in files
    assert files == sorted(p.name for p in LUA_DIR.glob("*.lua"))


def test_every_operation_file_is_a_registered_script() -> None:
    operations = {name.removesuffix(".lua") for name in _lua_files() if not name.startswith("_")}
    assert operations == set(SCRIPT_NAMES)
    assert len(SCRIPT_NAMES) == len(set(SCRIPT_NAMES))


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_each_script_loads_with_its_includes_expanded(name: str) -> None:
    raw = (LUA_DIR / f"{name}.lua").read_text(encoding="utf-8")
    source = script_source(name)
    include = re.compile(r"^--!include", re.MULTILINE)
    standalone = ("lock", "unlock", "advance", "tenants", "tenant_totals", "claim_due")
    if name in standalone:  # no task operation: no helpers
        assert source == raw and not include.search(raw)
        return
    assert include.search(raw)  # every task operation shares the helpers
    assert not include.search(source)
    assert source.count("local function set_state(") == 1  # _common.lua inlined once
    assert len(source) > len(raw)
    assert script_source(name) is source  # loaded once, then cached


def test_the_library_holds_the_helpers_once_and_every_script_as_a_function() -> None:
    library = library_source()
    assert library.startswith(f"#!lua name=fairque_{function_name('push').rsplit('_', 1)[1]}\n")
    assert library.count("local function set_state(") == 1  # defined once for all
    assert not re.search(r"^--!(include|per-call|end-per-call)", library, re.MULTILINE)
    for name in SCRIPT_NAMES:
        assert library.count(f"redis.register_function('{function_name(name)}',") == 1
    # what a helper reads from KEYS and ARGV is set by its init, at every call
    assert "local function init_common()\nSTATES = {" in library
    assert "\nQUEUE_COUNTS = table.remove(KEYS)\n" in library
    assert "\nlocal QUEUE_COUNTS" not in library


def test_a_lua_error_is_located_in_its_lua_file() -> None:
    library = library_source().splitlines()
    common = (LUA_DIR / "_common.lua").read_text(encoding="utf-8").splitlines()
    at = library.index("local function set_state(tkey, id, user, from, to, score, ...)")
    in_file = common.index(library[at]) + 1
    message = f"user_function:{at + 1}: attempt to index a nil value"
    assert locate_lua_error(message) == (
        f"user_function:{at + 1} (_common.lua:{in_file}): attempt to index a nil value"
    )
    assert locate_lua_error("user_function:999999: x") == "user_function:999999: x"
    assert locate_lua_error("WRONGTYPE Operation") == "WRONGTYPE Operation"


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_no_script_spells_a_key(name: str) -> None:
    source = script_source(name)
    assert "fq:" not in source
    for literal in re.findall(r"'([^']*)'|\"([^\"]*)\"", source):
        text = "".join(literal)
        assert not re.match(r"(queue|task|state|deps|users):", text), (name, text)


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_no_script_scans_the_keyspace(name: str) -> None:
    calls = re.findall(r"redis\.call\('([A-Z]+)'", script_source(name))
    assert calls, name
    assert not {"KEYS", "SCAN", "WATCH", "FLUSHDB", "FLUSHALL"} & set(calls)


@pytest.mark.parametrize("filename", sorted(p.name for p in LUA_DIR.glob("*.lua")))
def test_every_lua_file_opens_with_a_header_comment(filename: str) -> None:
    lines = (LUA_DIR / filename).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith(f"-- {filename}: "), lines[0]
    header = [line for line in _header(lines) if line.startswith("--")]
    assert len(header) >= 2
    if not filename.startswith("_"):
        assert any("Returns" in line for line in header), filename


def _header(lines: list[str]) -> list[str]:
    """The leading comment block (and the include line inside it)."""
    out = []
    for line in lines:
        if line.strip() and not line.startswith("--"):
            break
        out.append(line)
    return out


def _documented(header: list[str], table: str) -> set[int]:
    """Indexes of ``table`` (KEYS or ARGV) named in a header: ``[3]``, ``[1..6]``, ``[11..]``."""
    found: set[int] = set()
    for first, last, open_end in re.findall(
        rf"{table}\[(\d+)(?:\.\.(\d+)|(\.\.))?\]", "\n".join(header)
    ):
        end = int(last) if last else (int(first) + 100 if open_end else int(first))
        found.update(range(int(first), end + 1))
    return found


@pytest.mark.parametrize("name", SCRIPT_NAMES)
@pytest.mark.parametrize("table", ["KEYS", "ARGV"])
def test_every_literal_key_and_argument_a_script_reads_is_documented(name: str, table: str) -> None:
    documented: set[int] = set()
    used: set[int] = set()
    for filename in ("_common.lua", f"{name}.lua"):
        lines = (LUA_DIR / filename).read_text(encoding="utf-8").splitlines()
        documented |= _documented(_header(lines), table)
        code = "\n".join(line.split("--")[0] for line in lines)
        used |= {int(n) for n in re.findall(rf"{table}\[(\d+)\]", code)}
    assert used - documented == set(), f"{name}.lua reads undocumented {table}"
