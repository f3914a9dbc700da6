"""Connection URLs (core/urls.py), the client plans built from them (queue/connection.py),
the durability setting, and which Redis errors count as transient during a failover."""

from __future__ import annotations

from typing import Any

import pytest
import redis
import redis.exceptions
import redis.sentinel
from redis.sentinel import MasterNotFoundError, SlaveNotFoundError

from fairque import FairQueueConfig
from fairque.core.config import DURABILITY_ENV, QueueConfig, RedisConfig, durability_mode
from fairque.core.errors import ConfigError, ConfigValueError, RedisUnavailableError
from fairque.core.keys import CLUSTER_TAG, Keys, key_tag
from fairque.core.urls import parse_redis_url, redact
from fairque.queue.connection import close_sync_client, plan_client, sync_client
from fairque.queue.errors import is_transient, map_redis_error

# --- what a URL names ------------------------------------------------------------------


def test_sentinel_url_names_sentinels_service_db_and_credentials() -> None:
    where = parse_redis_url(
        "redis+sentinel://bob:p%40ss@s1:26380,s2,[::1]:26381/my%20master/3"
        "?sentinel_password=sp&sentinel_username=sam"
    )
    assert where.kind == "sentinel"
    assert where.nodes == (("s1", 26380), ("s2", 26379), ("::1", 26381))
    assert (where.service, where.db, where.username, where.password) == (
        "my master",
        3,
        "bob",
        "p@ss",
    )
    assert where.options == {"sentinel_password": "sp", "sentinel_username": "sam"}


def test_sentinel_url_db_defaults_to_0() -> None:
    where = parse_redis_url("redis+sentinel://127.0.0.1:26379/mymaster")
    assert (where.service, where.db, where.password) == ("mymaster", 0, None)


def test_direct_urls() -> None:
    tls = parse_redis_url("rediss://h:6390/2?ssl_cert_reqs=none&ssl_ca_certs=%2Fetc%2Fca.pem")
    assert (tls.kind, tls.tls, tls.nodes, tls.db) == ("direct", True, (("h", 6390),), 2)
    assert tls.options == {"ssl_cert_reqs": "none", "ssl_ca_certs": "/etc/ca.pem"}
    unix = parse_redis_url("unix:///tmp/redis.sock?db=4")
    assert (unix.kind, unix.db, unix.nodes) == ("direct", 4, ())
    assert parse_redis_url("redis://localhost").nodes == (("localhost", 6379),)
    assert parse_redis_url("redis://h/1?db=2").db == 2  # the query wins, as in redis-py


def test_cluster_url_is_parsed_and_planned_with_the_seed_nodes() -> None:
    where = parse_redis_url("redis+cluster://u:pw@a:7000,b:7001")
    assert (where.kind, where.nodes) == ("cluster", (("a", 7000), ("b", 7001)))
    config = RedisConfig.from_url("redis+cluster://a:7000,b:7001")  # a config may name it
    assert config.explicit_url() == "redis+cluster://a:7000,b:7001"
    plan = plan_client("redis+cluster://u:pw@a:7000", {"socket_timeout": 2.0})
    assert plan.options["password"] == "pw" and plan.options["socket_timeout"] == 2.0
    assert plan.sentinel_options == {"socket_timeout": 2.0, "username": "u", "password": "pw"}


def test_every_key_carries_the_cluster_hash_tag_on_a_cluster_only() -> None:
    assert key_tag("redis+cluster://a:7000") == CLUSTER_TAG
    assert key_tag("redis://a:7000") is None and key_tag(None) is None
    assert Keys("fq").task("t") == "fq:task:t"  # one server: the names of before


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://h", "must be a redis://, rediss://, unix://, redis+sentinel://"),
        ("redis+sentinel://h:26379", "must name the Sentinel service"),
        ("redis+sentinel://h:26379/m/0/9", "must name the Sentinel service"),
        ("redis+sentinel://h:26379/m/x", "numeric db"),
        ("redis+sentinel://h:26379,,h2/m", "empty host name"),
        ("redis+sentinel://h:99999/m", "invalid port number"),
        ("redis+sentinel://h:2x/m", "invalid port number"),
        ("redis+sentinel://h/m?password=x", "unknown option 'password'"),
        ("redis+cluster://h:7000/2", "a cluster has only database 0"),
        ("redis+cluster://h:7000?socket_timeout=1", "unknown option 'socket_timeout'"),
        ("redis://a:1,b:2/0", "use redis+sentinel://"),
        ("redis://h/x", "numeric db"),
        ("redis://h:0/0", "invalid port number"),
        ("redis://h/0?ssl_cert_reqs=none", "TLS options need rediss://"),
        ("rediss://h/0?ssl_cert_reqs=maybe", "'ssl_cert_reqs' that must be one of none"),
        ("rediss://h/0?ssl_check_hostname=perhaps", "must be true or false"),
        ("rediss://h/0?ssl_check_hostname=off", "must be true or false"),
        ("rediss://h/0?ssl_cert_reqs=NONE", "'ssl_cert_reqs' that must be one of none"),
        ("rediss://h/0?ssl_ca_certs=", "'ssl_ca_certs' that is empty"),
        ("redis://h/0?socket_timeout=soon", "'socket_timeout' that must be a number"),
        ("redis://h/0?sockettimeout=1", "unknown option 'sockettimeout'"),
        ("redis://h/0?ssl_check_hostname=true", "TLS options need rediss://"),
        ("redis://h/0?max_connections=2.5", "'max_connections' that must be a whole number"),
        ("unix:///r.sock?db=x", "'db' that must be a whole number"),
        ("unix://", "must name the socket file"),
    ],
)
def test_bad_urls_are_refused_naming_the_problem(url: str, problem: str) -> None:
    with pytest.raises(ConfigValueError) as info:
        parse_redis_url(url)
    assert problem in str(info.value)
    assert str(info.value).startswith("url ")


def test_a_bad_url_never_echoes_the_password() -> None:
    with pytest.raises(ConfigValueError) as info:
        RedisConfig(url="redis+sentinel://u:secret@h:26379")
    assert "secret" not in str(info.value)


def test_bad_fairque_redis_url_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIRQUE_REDIS_URL", "redis+sentinel://h:26379")
    with pytest.raises(ConfigValueError, match=r"^FAIRQUE_REDIS_URL must name the Sentinel"):
        RedisConfig().resolved_url()


def test_redact_hides_both_passwords() -> None:
    url = "redis+sentinel://bob:pw@h:26379/m?sentinel_password=spw&sentinel_username=s"
    shown = redact(url)
    assert "pw" not in shown.replace("sentinel_password", "")
    assert shown == "redis+sentinel://bob:***@h:26379/m?sentinel_password=***&sentinel_username=s"
    assert RedisConfig.from_url(url).redacted_url() == shown
    assert redact("redis://h:1/0") == "redis://h:1/0"
    assert redact("unix:///tmp/r.sock?db=1") == "unix:///tmp/r.sock?db=1"
    assert redact("unix://:pw@/tmp/r.sock") == "unix://:***@/tmp/r.sock"


# --- client plans (no connection is made) ---------------------------------------------


def test_sentinel_plan_splits_master_and_sentinel_credentials() -> None:
    options: dict[str, Any] = {"socket_timeout": 2.0, "decode_responses": True}
    plan = plan_client("redis+sentinel://bob:pw@h:1/m/2?sentinel_password=spw", options)
    assert plan.service == "m"
    assert plan.options == {**options, "db": 2, "username": "bob", "password": "pw"}
    assert plan.sentinel_options == {"socket_timeout": 2.0, "username": None, "password": "spw"}
    retry = object()
    assert plan_client("redis+sentinel://h/m", {"retry": retry}).sentinel_options["retry"] is retry


def test_sentinel_client_talks_to_the_master_of_the_service() -> None:
    client = sync_client("redis+sentinel://h1:1,h2:2/svc/5", socket_timeout=1.0)
    try:
        pool = client.connection_pool
        assert isinstance(pool, redis.sentinel.SentinelConnectionPool)
        assert (pool.service_name, pool.is_master) == ("svc", True)
        assert pool.connection_kwargs["db"] == 5
        sentinels = pool.sentinel_manager.sentinels
        assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [1, 2]
    finally:
        close_sync_client(client)


def test_tls_url_gives_a_tls_client_with_its_options() -> None:
    client = sync_client("rediss://h:6390/0?ssl_cert_reqs=none&ssl_check_hostname=false")
    try:
        kwargs = client.connection_pool.connection_kwargs
        assert client.connection_pool.connection_class.__name__ == "SSLConnection"
        assert (kwargs["ssl_cert_reqs"], kwargs["ssl_check_hostname"]) == ("none", False)
    finally:
        close_sync_client(client)


# --- failover errors are transient ----------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        MasterNotFoundError("No master found for 'mymaster'"),
        SlaveNotFoundError("No slave found for 'mymaster'"),
        redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
        redis.exceptions.ConnectionError("The previous master is now a slave"),
        redis.exceptions.ResponseError("NOSCRIPT No matching script."),
    ],
)
def test_failover_errors_are_transient(error: Exception) -> None:
    assert is_transient(error)
    mapped = map_redis_error(error, "push", "redis+sentinel://h:26379/m", "push")
    assert isinstance(mapped, RedisUnavailableError)


# --- durability -------------------------------------------------------------------------


def test_durability_config_env_and_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert durability_mode(None, {}) == "async"
    assert durability_mode(None, {DURABILITY_ENV: " Replicated "}) == "replicated"
    assert durability_mode("async", {DURABILITY_ENV: "replicated"}) == "async"
    with pytest.raises(ConfigValueError, match=r"^FAIRQUE_DURABILITY must be one of async"):
        durability_mode(None, {DURABILITY_ENV: "sync"})
    config = FairQueueConfig.from_dict({"queue": {"durability": "replicated"}})
    assert config.queue.durability == "replicated"
    assert config.queue.replication_timeout_seconds == 1.0


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"durability": "always"}, "durability must be one of async, replicated"),
        ({"replication_timeout_seconds": 0}, "replication_timeout_seconds must be > 0"),
    ],
)
def test_bad_durability_settings(settings: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigValueError, match=problem):
        QueueConfig(**settings)


def test_config_files_accept_every_url_kind(tmp_path: Any) -> None:
    path = tmp_path / "fairque_config.yaml"
    url = "redis+sentinel://bob:pw@s1:26379,s2:26380/mymaster/1?sentinel_password=spw"
    path.write_text(f'redis: {{url: "{url}"}}\nqueue: {{durability: replicated}}\n')
    config = FairQueueConfig.from_yaml(path)
    assert config.redis.explicit_url() == url
    assert config.queue.durability == "replicated"
    path.write_text('redis: {url: "redis+sentinel://s1:26379"}\n')
    with pytest.raises(ConfigError, match=r"line 1: redis\.url must name the Sentinel service"):
        FairQueueConfig.from_yaml(path)
