"""Fixtures shared by every fairque test: a real Redis/Valkey server, never a mock.

- ``redis_url`` (session): ``$FAIRQUE_TEST_REDIS_URL`` when set; else, with
  ``FAIRQUE_TEST_CLUSTER=1``, a private Valkey Cluster (three masters and a replica each:
  tests/cluster_group.py) and its ``redis+cluster://`` URL; else a private embedded
  Valkey (ephemeral: no append-only file). Either is started in a temporary folder and
  stopped at the end of the session.
- ``redis_client``: a client of that URL's database, FLUSHDB'd before each test (on a
  cluster: of the master serving fairque's hash slot); ``keys``: the key names there.
- ``proxy`` (a cuttable proxy to it) and ``procs`` (processes killed after the test).
- ``sentinel_group`` (per module): a private Sentinel group (master, replica, three
  sentinels: see tests/sentinel_group.py), killed after the module's last test;
  ``cluster_group`` (per module) likewise a private Valkey Cluster.
- ``_isolated_env`` (autouse): no inherited ``FAIRQUE_REDIS_URL``/``FAIRQUE_DAGS_FOLDER``,
  and ``FAIRQUE_STATE_DIR`` points to a per-test folder (its server is stopped afterwards),
  so tests never touch the repository's ``.fairque/``.

pytest-timeout's per-test limit (``timeout`` in pyproject.toml, or a ``timeout`` marker;
at least 180 s for a test marked ``slow``) is multiplied by ``$FAIRQUE_TEST_TIME_SCALE``
like every budget (see tests/timing.py), so a hang still fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_timeout
import redis

from fairque.core.keys import Keys, key_tag
from fairque.queue.connection import sync_client
from fairque.server import EmbeddedServer
from tests.cluster_group import ClusterGroup
from tests.integration.procs import Procs
from tests.integration.proxy import CuttableProxy
from tests.sentinel_group import SentinelGroup
from tests.timing import budget

TEST_REDIS_URL_ENV = "FAIRQUE_TEST_REDIS_URL"
TEST_CLUSTER_ENV = "FAIRQUE_TEST_CLUSTER"


SLOW_TEST_TIMEOUT = 180.0  # seconds (scaled): the least limit of a test marked slow


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: pytest_timeout.Settings) -> object:
    """Start pytest-timeout's timer with the limit scaled (0, no limit, stays 0), and at
    least ``SLOW_TEST_TIMEOUT`` for a slow test (its processes start slowly under load)."""
    timeout = settings.timeout
    if not timeout:
        return None  # pytest-timeout's own hook: no timer
    if item.get_closest_marker("slow") is not None:
        timeout = max(timeout, SLOW_TEST_TIMEOUT)
    scaled = settings._replace(timeout=budget(timeout))
    return pytest_timeout.pytest_timeout_set_timer(item=item, settings=scaled)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the test server: ``$FAIRQUE_TEST_REDIS_URL`` or a session-wide embedded Valkey."""
    external = os.environ.get(TEST_REDIS_URL_ENV, "").strip()
    if external:
        yield external
        return
    if os.environ.get(TEST_CLUSTER_ENV, "").strip() not in ("", "0"):
        with ClusterGroup(tmp_path_factory.mktemp("cluster")) as cluster:
            yield cluster.url
        return
    server = EmbeddedServer(tmp_path_factory.mktemp("redis-server"), durable=False)
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on the test database (db of ``redis_url``), emptied before the test."""
    client = sync_client(redis_url)
    try:
        client.flushdb()
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def keys(redis_url: str) -> Keys:
    """The key builder of the default prefix on the test server (tagged on a cluster)."""
    return Keys("fq", key_tag(redis_url))


@pytest.fixture
def proxy(redis_url: str, redis_client: redis.Redis) -> Iterator[CuttableProxy]:
    """A proxy to the (emptied) test database that the test can cut."""
    if not redis_url.startswith("redis://"):
        pytest.skip("the outage tests need a redis://host:port server")
    with CuttableProxy(redis_url) as p:
        yield p


@pytest.fixture
def procs(tmp_path: Path, redis_url: str, redis_client: redis.Redis) -> Iterator[Procs]:
    """Starts processes on the clean test database; kills all of them afterwards."""
    started = Procs(tmp_path, redis_url)
    try:
        yield started
    finally:
        started.kill_all()


@pytest.fixture(scope="module")
def sentinel_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    """A master, a replica and three sentinels of the embedded binary, started for the
    module (about 2 s: the sentinels find each other) and killed after it. A test that
    kills a member starts a :class:`SentinelGroup` of its own instead."""
    with SentinelGroup(tmp_path_factory.mktemp("sentinel-group")) as group:
        yield group


@pytest.fixture(scope="module")
def cluster_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterGroup]:
    """Three masters and a replica of each, of the embedded binary, started for the
    module (a few seconds) and killed after it. A test that kills a node starts a
    :class:`ClusterGroup` of its own instead."""
    with ClusterGroup(tmp_path_factory.mktemp("cluster-group")) as group:
        yield group


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Per-test environment: no inherited Redis URL, a private state folder (yielded)."""
    monkeypatch.delenv("FAIRQUE_REDIS_URL", raising=False)
    monkeypatch.delenv("FAIRQUE_DAGS_FOLDER", raising=False)
    monkeypatch.delenv("FAIRQUE_ALLOWED_MODULES", raising=False)
    state_dir = tmp_path / "fairque-state"
    monkeypatch.setenv("FAIRQUE_STATE_DIR", str(state_dir))
    yield state_dir
    if (state_dir / "server.json").exists():
        EmbeddedServer(state_dir).stop()


@pytest.fixture
def state_dir(_isolated_env: Path) -> Path:
    """The per-test state folder that ``FAIRQUE_STATE_DIR`` points to (not created yet)."""
    return _isolated_env
