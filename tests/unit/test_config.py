"""Configuration: the seed's YAML, create_default, validation messages, FAIRQUE_REDIS_URL.

Pure logic: no Redis server is needed.
"""

from __future__ import annotations

import dataclasses
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from jsonschema import Draft202012Validator

from fairque.core.config import (
    MAX_CONFIG_BYTES,
    REDIS_URL_ENV,
    FairQueueConfig,
    QueueConfig,
    RedisConfig,
    WorkerConfig,
    redis_location,
)
from fairque.core.errors import ConfigError, ConfigFileError, ConfigValueError
from fairque.core.schemas import load_schema, schema_path
from tests.timing import budget

REPO = Path(__file__).resolve().parents[2]

SEED_YAML = """\
# fairque_config.yaml
redis:
  host: "localhost"
  port: 6379
  db: 0
workers:
  - id: "worker-001"
    assigned_users: ["user:1", "user:3", "user:5"]
    steal_targets: ["user:2", "user:4", "user:6"]
    poll_interval_seconds: 1.0
    max_concurrent_tasks: 10
  - id: "worker-002"
    assigned_users: ["user:2", "user:4", "user:6"]
    steal_targets: ["user:1", "user:3", "user:5"]
    poll_interval_seconds: 1.0
    max_concurrent_tasks: 10
queue:
  stats_prefix: "fq"
  default_max_retries: 3
  enable_pipeline_optimization: true
  xcom_ttl_seconds: 3600
"""


def write(tmp_path: Path, text: str, name: str = "fairque_config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def file_error(tmp_path: Path, text: str) -> ConfigFileError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigFileError) as info:
        FairQueueConfig.from_yaml(path)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    return info.value


# --- the seed's YAML and worker selection ---------------------------------------------


def test_seed_yaml_loads(tmp_path: Path) -> None:
    config = FairQueueConfig.from_yaml(write(tmp_path, SEED_YAML))
    assert [w.id for w in config.workers] == ["worker-001", "worker-002"]
    assert config.worker.id == "worker-001"
    assert config.workers[1].assigned_users == ["user:2", "user:4", "user:6"]
    assert config.workers[1].steal_targets == ["user:1", "user:3", "user:5"]
    assert config.workers[0].max_concurrent_tasks == 10
    assert config.queue.prefix == "fq"
    assert config.queue.xcom_ttl_seconds == 3600
    assert config.queue.enable_pipeline_optimization is True
    assert config.redis.resolved_url() == "redis://localhost:6379/0"
    # keys the seed leaves out keep their defaults
    assert config.workers[0].lease_seconds == 30.0
    assert config.queue.result_ttl_seconds == 86_400


def test_from_yaml_selects_worker(tmp_path: Path) -> None:
    config = FairQueueConfig.from_yaml(write(tmp_path, SEED_YAML), worker_id="worker-002")
    assert config.worker_id == "worker-002"
    assert config.worker.assigned_users == ["user:2", "user:4", "user:6"]


def test_for_worker_returns_a_copy(tmp_path: Path) -> None:
    config = FairQueueConfig.from_yaml(write(tmp_path, SEED_YAML))
    second = config.for_worker("worker-002")
    assert second.worker.id == "worker-002"
    assert config.worker.id == "worker-001"
    second.worker.assigned_users.append("user:9")
    assert "user:9" not in config.workers[1].assigned_users


def test_unknown_worker_names_known_ids(tmp_path: Path) -> None:
    config = FairQueueConfig.from_yaml(write(tmp_path, SEED_YAML))
    with pytest.raises(ConfigError, match=r"'worker-009'.*worker-001, worker-002"):
        config.for_worker("worker-009")
    with pytest.raises(ConfigError, match=r"worker_id 'nope'.*worker-001, worker-002"):
        FairQueueConfig.from_yaml(write(tmp_path, SEED_YAML), worker_id="nope")
    config.worker_id = "gone"  # mutated after construction: the property still checks
    with pytest.raises(ConfigError, match="known worker ids: worker-001, worker-002"):
        _ = config.worker


# --- create_default, from_url ------------------------------------------------------------


def test_create_default_seed_call() -> None:
    config = FairQueueConfig.create_default(
        worker_id="worker-001", assigned_users=["user:1", "user:2"], steal_targets=["user:3"]
    )
    assert config.worker.id == "worker-001"
    assert config.worker.assigned_users == ["user:1", "user:2"]
    assert config.worker.steal_targets == ["user:3"]
    assert len(config.workers) == 1


def test_create_default_serves_every_user_by_default() -> None:
    worker = FairQueueConfig.create_default().worker
    assert worker.assigned_users == ["*"]
    assert worker.steal_targets == []


def test_create_default_accepts_worker_and_queue_settings() -> None:
    config = FairQueueConfig.create_default(
        "w",
        lease_seconds=12.5,
        heartbeat_seconds=2,
        max_concurrent_tasks=3,
        allowed_modules=["myapp.tasks"],
        max_recoveries=0,
        stats_prefix="tenantq",
        xcom_ttl_seconds=60,
        priority_aging_seconds=10.0,
        queue=QueueConfig(default_max_retries=7),
        redis="redis://cache.internal:6380/4",
    )
    assert (config.worker.lease_seconds, config.worker.heartbeat_seconds) == (12.5, 2)
    assert config.worker.max_concurrent_tasks == 3
    assert config.worker.allowed_modules == ["myapp.tasks"]
    assert config.worker.max_recoveries == 0
    assert config.queue.prefix == "tenantq"
    assert config.queue.xcom_ttl_seconds == 60
    assert config.queue.priority_aging_seconds == 10.0
    assert config.queue.default_max_retries == 7  # the given queue, with settings on top
    assert (config.redis.host, config.redis.port, config.redis.db) == ("cache.internal", 6380, 4)


def test_create_default_refuses_unknown_setting_and_lists_known() -> None:
    with pytest.raises(ConfigError) as info:
        FairQueueConfig.create_default(lease_second=3)
    message = str(info.value)
    assert "unknown setting 'lease_second' (did you mean 'lease_seconds'?)" in message
    listed = message.split("known settings: ")[1].split(", ")
    assert listed == sorted(listed)
    expected = {f.name for f in dataclasses.fields(WorkerConfig)} - {"id"}
    expected |= {f.name for f in dataclasses.fields(QueueConfig)}
    expected |= {"worker_id", "redis", "queue"}
    assert set(listed) == expected


def test_create_default_names_every_unknown_setting() -> None:
    with pytest.raises(ConfigError, match=r"unknown settings 'bogus', 'prefix' \(did you mean"):
        FairQueueConfig.create_default(prefix="x", bogus=1)


def test_from_url() -> None:
    config = FairQueueConfig.from_url("rediss://alice:p%40ss@db.example:6390/2", lease_seconds=9)
    r = config.redis
    assert (r.host, r.port, r.db, r.username, r.password, r.ssl) == (
        "db.example",
        6390,
        2,
        "alice",
        "p@ss",
        True,
    )
    assert r.resolved_url() == "rediss://alice:p%40ss@db.example:6390/2"
    assert config.worker.lease_seconds == 9
    assert RedisConfig.from_url("unix:///tmp/redis.sock").resolved_url() == (
        "unix:///tmp/redis.sock"
    )


def test_to_dict_round_trip(tmp_path: Path) -> None:
    config = FairQueueConfig.from_yaml(write(tmp_path, SEED_YAML), worker_id="worker-002")
    data = config.to_dict()
    assert data["workers"][1]["id"] == "worker-002"
    assert data["queue"]["stats_prefix"] == "fq"
    assert FairQueueConfig.from_dict(data) == config


# --- validation: every error names its field ------------------------------------------


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: WorkerConfig(lease_seconds=-3), "lease_seconds must be > 0, not -3"),
        (lambda: WorkerConfig(lease_seconds=float("nan")), "lease_seconds must be > 0"),
        (lambda: WorkerConfig(poll_interval_seconds=0), "poll_interval_seconds must be > 0"),
        (lambda: WorkerConfig(poll_interval_seconds=True), "poll_interval_seconds must be a num"),
        (lambda: WorkerConfig(max_concurrent_tasks=0), "max_concurrent_tasks must be >= 1, not 0"),
        (lambda: WorkerConfig(max_concurrent_tasks=True), "max_concurrent_tasks must be an int"),
        (lambda: WorkerConfig(max_concurrent_tasks=2.0), "max_concurrent_tasks must be an int"),
        (lambda: WorkerConfig(shutdown_grace_seconds=-1), "shutdown_grace_seconds must be >= 0"),
        (lambda: WorkerConfig(max_recoveries=-1), "max_recoveries must be >= 0"),
        (lambda: WorkerConfig(heartbeat_seconds=0), "heartbeat_seconds must be > 0"),
        (lambda: WorkerConfig(id="worker 1"), "id is invalid: worker id 'worker 1' contains"),
        (lambda: WorkerConfig(assigned_users=["u:1", "a b"]), "assigned_users[1] is invalid"),
        (lambda: WorkerConfig(assigned_users="user:1"), "assigned_users must be a list of str"),
        (lambda: WorkerConfig(steal_targets=["x{y}"]), "steal_targets[0] is invalid"),
        (lambda: WorkerConfig(assigned_users=[]), "assigned_users and steal_targets are both"),
        (lambda: WorkerConfig(allowed_modules=["a..b"]), "allowed_modules[0] must be a dotted"),
        (lambda: QueueConfig(stats_prefix=""), "stats_prefix is invalid"),
        (lambda: QueueConfig(stats_prefix="f q"), "stats_prefix is invalid"),
        (lambda: QueueConfig(stats_prefix="{fq}"), "stats_prefix is invalid"),
        (lambda: QueueConfig(default_max_retries=-1), "default_max_retries must be >= 0"),
        (lambda: QueueConfig(default_retry_delay_seconds=-1), "default_retry_delay_seconds must"),
        (lambda: QueueConfig(retry_backoff_max_seconds=0), "retry_backoff_max_seconds must be >"),
        (lambda: QueueConfig(enable_pipeline_optimization=1), "enable_pipeline_optimization must"),
        (lambda: QueueConfig(xcom_ttl_seconds=0), "xcom_ttl_seconds must be >= 1"),
        (lambda: QueueConfig(max_xcom_bytes=False), "max_xcom_bytes must be an integer"),
        (lambda: QueueConfig(max_payload_bytes=1.5), "max_payload_bytes must be an integer"),
        (lambda: QueueConfig(priority_aging_seconds=0), "priority_aging_seconds must be > 0"),
        (lambda: QueueConfig(result_ttl_seconds=0), "result_ttl_seconds must be >= 1"),
        (lambda: RedisConfig(port=0), "port must be >= 1, not 0"),
        (lambda: RedisConfig(port=70000), "port must be <= 65535, not 70000"),
        (lambda: RedisConfig(port="6379"), "port must be an integer, not '6379'"),
        (lambda: RedisConfig(db=-1), "db must be >= 0"),
        (lambda: RedisConfig(host=""), "host must be a host name"),
        (lambda: RedisConfig(socket_timeout=0), "socket_timeout must be > 0"),
        (lambda: RedisConfig(ssl="yes"), "ssl must be true or false"),
        (lambda: RedisConfig(url="http://x"), "url must be a redis://, rediss://, unix://"),
        (lambda: RedisConfig(url="redis://h:99999/0"), "url has an invalid port"),
        (lambda: FairQueueConfig(workers=[]), "workers must be a non-empty list"),
        (lambda: FairQueueConfig(redis={"host": "x"}), "redis must be a RedisConfig, not dict"),
        (
            lambda: FairQueueConfig(workers=[WorkerConfig(id="a"), WorkerConfig(id="a")]),
            "workers[1].id 'a' is already used by workers[0]",
        ),
        (lambda: FairQueueConfig.create_default(lease_seconds=-3), "lease_seconds must be > 0"),
    ],
)
def test_validation_error_names_field(build: Any, expected: str) -> None:
    with pytest.raises(ConfigValueError) as info:
        build()
    assert str(info.value).startswith(expected)
    assert str(info.value).startswith(info.value.field)


def test_password_is_never_echoed() -> None:
    with pytest.raises(ConfigValueError) as info:
        RedisConfig(password=123456)  # type: ignore[arg-type]
    assert "123456" not in str(info.value)
    assert "password" in str(info.value)
    assert "s3cret" not in repr(RedisConfig(password="s3cret", url="redis://:s3cret@h/0"))


def test_nested_errors_carry_their_position() -> None:
    data = {"workers": [{"id": "w1"}, {"id": "w2", "assigned_users": ["ok", "not ok"]}]}
    with pytest.raises(ConfigFileError) as info:
        FairQueueConfig.from_dict(data, source="settings")
    assert info.value.path == "settings"
    assert info.value.problems[0].startswith("workers[1].assigned_users[1] is invalid")


def test_from_dict_refuses_unknown_worker_id() -> None:
    with pytest.raises(ConfigFileError, match="worker_id 'w9' is not a configured worker"):
        FairQueueConfig.from_dict({"workers": [{"id": "w1"}], "worker_id": "w9"})


# --- YAML files: field, line, did-you-mean ------------------------------------------------


def test_schema_errors_name_file_field_and_line(tmp_path: Path) -> None:
    error = file_error(
        tmp_path,
        """\
        redis:
          port: "6379"
        workers:
          - id: w1
            poll_interval_seconds: -1
            max_concurrent_tasks: true
        queue:
          xcom_ttl_seconds: 0
        """,
    )
    assert error.problems == [
        "line 2: redis.port must be an integer or null, not '6379'",
        "line 5: workers[0].poll_interval_seconds must be > 0, not -1",
        "line 6: workers[0].max_concurrent_tasks must be an integer, not True",
        "line 8: queue.xcom_ttl_seconds must be >= 1, not 0",
    ]


def test_value_errors_from_the_file_get_a_line(tmp_path: Path) -> None:
    error = file_error(
        tmp_path,
        """\
        workers:
          - id: w1
          - id: w2
            assigned_users: ["bad user"]
        """,
    )
    assert len(error.problems) == 1
    assert error.problems[0].startswith(
        "line 4: workers[1].assigned_users[0] is invalid: user_id 'bad user' contains"
    )


def test_duplicate_worker_ids_in_file(tmp_path: Path) -> None:
    error = file_error(tmp_path, "workers:\n  - id: w1\n  - id: w1\n")
    assert error.problems == [
        "line 3: workers[1].id 'w1' is already used by workers[0]; worker ids must be unique"
    ]


def test_unknown_keys_suggest_the_near_miss(tmp_path: Path) -> None:
    error = file_error(
        tmp_path,
        """\
        workers:
          - id: w1
            poll_interval: 2
        redis:
          hots: example
        zzz_unrelated: 1
        """,
    )
    assert len(error.problems) == 3
    by_line = {p.split(":")[0]: p for p in error.problems}
    assert (
        "workers[0].poll_interval is not a known key (did you mean 'poll_interval_seconds'?)"
        in (by_line["line 3"])
    )
    assert "redis.hots is not a known key (did you mean 'host'?)" in by_line["line 5"]
    assert (
        "zzz_unrelated is not a known key; known keys: queue, redis, worker_id, workers"
        in (by_line["line 6"])
    )
    assert "did you mean" not in by_line["line 6"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n- b\n", "must be a mapping of redis, workers and queue (found list)"),
        ("just text\n", "found str"),
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
    ],
)
def test_document_must_be_a_mapping(tmp_path: Path, text: str, expected: str) -> None:
    error = file_error(tmp_path, text)
    assert expected in error.problems[0]


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    error = file_error(tmp_path, "redis:\n  host: localhost\n  port: 6379\n    db: 0\n")
    assert error.problems == ["line 4, column 7: invalid YAML: mapping values are not allowed here"]


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(SEED_YAML + "#" * MAX_CONFIG_BYTES, encoding="utf-8")
    with pytest.raises(ConfigFileError, match="larger than the limit of 1048576 bytes") as info:
        FairQueueConfig.from_yaml(path)
    assert info.value.path == str(path)


def test_file_just_under_the_limit_loads(tmp_path: Path) -> None:
    padding = MAX_CONFIG_BYTES - len(SEED_YAML.encode()) - 1
    path = tmp_path / "padded.yaml"
    path.write_text(SEED_YAML + "#" * padding + "\n", encoding="utf-8")
    assert path.stat().st_size == MAX_CONFIG_BYTES
    assert FairQueueConfig.from_yaml(path).worker.id == "worker-001"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigFileError) as info:
        FairQueueConfig.from_yaml(path)
    assert info.value.path == str(path)
    assert info.value.problems == ["file not found"]
    assert str(path) in str(info.value)


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="cannot read the file"):
        FairQueueConfig.from_yaml(tmp_path)


# --- Redis location: FAIRQUE_REDIS_URL, url, host/port -----------------------------------


def test_a_named_server_wins_over_the_env_url(monkeypatch: pytest.MonkeyPatch) -> None:
    config = RedisConfig(host="h", port=1, url="redis://from-config:6379/3")
    monkeypatch.setenv(REDIS_URL_ENV, "redis://127.0.0.1:6399/0")  # read at call time
    assert config.resolved_url() == "redis://from-config:6379/3"
    explicit = FairQueueConfig.create_default(redis="redis://localhost:6379/0")
    assert explicit.redis.resolved_url() == "redis://localhost:6379/0"
    assert FairQueueConfig.from_url("redis://a:1/2").redis.resolved_url() == "redis://a:1/2"
    assert RedisConfig(port=7000).resolved_url() == "redis://localhost:7000/0"


def test_the_env_url_wins_over_no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REDIS_URL_ENV, "redis://127.0.0.1:6399/0")
    assert FairQueueConfig.create_default().redis.resolved_url() == "redis://127.0.0.1:6399/0"
    assert RedisConfig(socket_timeout=1.0).resolved_url() == "redis://127.0.0.1:6399/0"


def test_no_server_and_no_env_url_means_the_embedded_server() -> None:
    assert FairQueueConfig.create_default().redis.resolved_url() is None
    assert FairQueueConfig().redis.explicit_url() is None
    assert FairQueueConfig.from_dict({"workers": [{"id": "w"}]}).redis.resolved_url() is None
    assert RedisConfig().redacted_url() == "embedded"


@pytest.mark.parametrize(
    ("explicit", "env", "expected"),
    [
        ("redis://a:1/0", "redis://b:2/0", "redis://a:1/0"),
        (None, "redis://b:2/0", "redis://b:2/0"),
        ("  ", " redis://b:2/0 ", "redis://b:2/0"),
        (None, "", None),
        ("embedded", "redis://b:2/0", None),
        ("redis://a:1/0", "EMBEDDED", "redis://a:1/0"),
        (None, "embedded", None),
    ],
)
def test_redis_location_precedence(explicit: str | None, env: str, expected: str | None) -> None:
    assert redis_location(explicit, {REDIS_URL_ENV: env}) == expected


def test_empty_env_url_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REDIS_URL_ENV, "  ")
    assert RedisConfig(port=7000).resolved_url() == "redis://localhost:7000/0"


def test_bad_env_url_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REDIS_URL_ENV, "localhost:6379")
    with pytest.raises(ConfigValueError, match=f"^{REDIS_URL_ENV} must be a redis://"):
        RedisConfig().resolved_url()


def test_url_takes_precedence_over_host_port() -> None:
    config = RedisConfig(host="ignored", port=1, db=9, url="redis://real:6380/2")
    assert config.resolved_url() == "redis://real:6380/2"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (RedisConfig(host="localhost"), "redis://localhost:6379/0"),
        (RedisConfig(db=3), "redis://localhost:6379/3"),
        (RedisConfig(host="r", port=7000, db=5, ssl=True), "rediss://r:7000/5"),
        (RedisConfig(password="p@ss:/"), "redis://:p%40ss%3A%2F@localhost:6379/0"),
        (RedisConfig(username="bob", password="pw"), "redis://bob:pw@localhost:6379/0"),
        (RedisConfig(username="bob"), "redis://bob@localhost:6379/0"),
        (RedisConfig(host="::1"), "redis://[::1]:6379/0"),
    ],
)
def test_built_url(config: RedisConfig, expected: str) -> None:
    assert config.resolved_url() == expected


def test_redacted_url_hides_the_password() -> None:
    assert RedisConfig(username="bob", password="pw").redacted_url() == (
        "redis://bob:***@localhost:6379/0"
    )
    assert RedisConfig(port=6379).redacted_url() == "redis://localhost:6379/0"


def test_client_kwargs_fit_redis_from_url() -> None:
    config = RedisConfig(host="localhost", socket_timeout=2.5, socket_connect_timeout=1.5)
    kwargs = config.client_kwargs()
    assert kwargs == {
        "socket_timeout": 2.5,
        "socket_connect_timeout": 1.5,
        "health_check_interval": 30,
        "retry_on_timeout": False,
    }
    client = redis.Redis.from_url(config.resolved_url(), **kwargs)  # no connection is made
    try:
        assert client.connection_pool.connection_kwargs["socket_timeout"] == 2.5
    finally:
        client.close()


# --- module allow-list -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "module", "expected"),
    [
        (["a.b"], "a.b", True),
        (["a.b"], "a.b.c", True),
        (["a.b"], "a.bc", False),
        (["a.b"], "a", False),
        (["a.b"], "x.a.b", False),
        (["examples", "dags"], "dags.etl", True),
        (["examples", "dags"], "examples_extra", False),
        (["*"], "anything.at.all", True),
        ([], "examples", False),
    ],
)
def test_allows_module(allowed: list[str], module: str, expected: bool) -> None:
    assert WorkerConfig(allowed_modules=allowed).allows_module(module) is expected


# --- the schema file ---------------------------------------------------------------------


def test_schema_is_valid_and_found_in_the_repository() -> None:
    schema = load_schema("config.schema.json")
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"]
    assert (
        schema_path("config.schema.json").read_bytes()
        == (REPO / "schemas" / "config.schema.json").read_bytes()
    )


def test_missing_schema_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"'nope\.schema\.json' not found"):
        load_schema("nope.schema.json")


@pytest.mark.parametrize(
    ("section", "kind"), [("redis", RedisConfig), ("worker", WorkerConfig), ("queue", QueueConfig)]
)
def test_schema_matches_the_dataclasses(section: str, kind: type[Any]) -> None:
    properties = load_schema("config.schema.json")["$defs"][section]["properties"]
    names = [f.name for f in dataclasses.fields(kind)]
    assert sorted(properties) == sorted(names)
    default = kind()
    for name in names:
        prop = properties[name]
        assert prop["title"] and prop["description"], name
        assert prop["default"] == getattr(default, name), name


def test_schema_top_level_properties_are_documented() -> None:
    schema = load_schema("config.schema.json")
    assert sorted(schema["properties"]) == sorted(
        f.name for f in dataclasses.fields(FairQueueConfig)
    )
    for name, prop in schema["properties"].items():
        assert prop["title"] and prop["description"], name


def test_allowed_modules_default_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FAIRQUE_ALLOWED_MODULES", raising=False)
    assert WorkerConfig().allowed_modules == ["examples", "dags"]
    monkeypatch.setenv("FAIRQUE_ALLOWED_MODULES", "myapp.tasks, billing")
    assert WorkerConfig().allowed_modules == ["myapp.tasks", "billing"]
    assert WorkerConfig(allowed_modules=["x"]).allowed_modules == ["x"]


def billion_laughs(levels: int = 9) -> str:
    """A tiny YAML document whose aliases expand to 10**levels strings."""
    lines = ["laughs:", '  - &a0 ["lol"]']
    for i in range(1, levels + 1):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"  - &a{i} [{refs}]")
    return "\n".join(lines) + f"\nworkers:\n  - id: w\n    assigned_users: *a{levels}\n"


def test_a_yaml_alias_bomb_in_a_config_file_is_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs(), encoding="utf-8")
    assert path.stat().st_size < 1000
    start = time.perf_counter()
    with pytest.raises(ConfigFileError, match="expands to more than") as info:
        FairQueueConfig.from_yaml(path)
    assert time.perf_counter() - start < budget(2.0)
    assert len(str(info.value)) < 500


def test_a_self_referencing_yaml_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("workers: &w [*w]\n", encoding="utf-8")
    with pytest.raises(ConfigFileError, match="expands to more than"):
        FairQueueConfig.from_yaml(path)


def test_a_config_error_quotes_a_long_value_short(tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    path.write_text(f"workers:\n  - id: w\n    lease_seconds: '{'9' * 500_000}'\n")
    with pytest.raises(ConfigFileError) as info:
        FairQueueConfig.from_yaml(path)
    assert "lease_seconds" in str(info.value)
    assert len(str(info.value)) < 1000, str(info.value)[:2000]
