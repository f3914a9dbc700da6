"""A local Sentinel group for the tests: a master, one replica and three sentinels.

All five are the embedded ``valkey-server`` binary (``fairque.server.find_server_binary``;
a sentinel is ``valkey-server sentinel.conf --sentinel``) on free loopback ports, with
their files in a temporary folder, no persistence, and short failure-detection times
(scaled by ``FAIRQUE_TEST_TIME_SCALE``) so that a failover takes a few seconds.
(:class:`~tests.server_group.ServerGroup` starts and kills them).
"""

from __future__ import annotations

from pathlib import Path

import redis

from fairque.server.process import free_port
from tests.server_group import ServerGroup
from tests.timing import budget, wait_until

SERVICE = "mymaster"
START_TIMEOUT = 20.0  # seconds (scaled) for the whole group to come up


class SentinelGroup(ServerGroup):
    """Start with :meth:`start` (or ``with``); ``url`` is its ``redis+sentinel://`` URL.

    Members: ``master``, ``replica`` (and ``replica2``... with ``replicas`` > 1),
    ``sentinel0`` to ``sentinel2``."""

    def __init__(
        self, folder: Path, *, replicas: int = 1, down_after_ms: int | None = None
    ) -> None:
        super().__init__(folder)
        self.replicas = ["replica", *(f"replica{n}" for n in range(2, replicas + 1))]
        self.down_after_ms = down_after_ms or int(budget(1.0) * 1000)

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{self.ports[f'sentinel{i}']}" for i in range(3))
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> SentinelGroup:
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            self._start_server("master")
            master_port = self.ports["master"]
            for name in self.replicas:
                self._start_server(name, f"replicaof 127.0.0.1 {master_port}")
            for i in range(3):
                self._start_sentinel(f"sentinel{i}", master_port)
            wait_until(self._ready, START_TIMEOUT, "the replica to sync and the sentinels to agree")
        except BaseException:
            self.close()
            raise
        return self

    def _start_sentinel(self, name: str, master_port: int) -> None:
        port = free_port()
        conf = [
            f"port {port}",
            "bind 127.0.0.1",
            f"dir {self.folder}",
            f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} 2",
            f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}",
            f"sentinel failover-timeout {SERVICE} {int(budget(10.0) * 1000)}",
            f"sentinel parallel-syncs {SERVICE} 1",
        ]
        self._launch(name, port, conf, "--sentinel")

    def _ready(self) -> bool:
        if not all(self._answers(n) for n in self.processes):
            return False
        for name in self.replicas:
            with self.client(name) as c:
                if c.info("replication").get("master_link_status") != "up":
                    return False
        for i in range(3):
            with self.client(f"sentinel{i}") as c:
                info = c.sentinel_master(SERVICE)
                if int(info["num-other-sentinels"]) < 2:
                    return False
                if int(info["num-slaves"]) < len(self.replicas):
                    return False
        return True

    def master_port(self) -> int | None:
        """The master's port as the first sentinel that answers sees it."""
        for i in range(3):
            try:
                with self.client(f"sentinel{i}") as c:
                    _, port = c.sentinel_get_master_addr_by_name(SERVICE)
                return int(port)
            except (redis.RedisError, TypeError, ValueError):
                continue
        return None

    def wait_promoted(self, timeout: float = 30.0) -> str:
        """Wait until the sentinels name a replica as master and it says it is one;
        returns that member's name."""
        by_port = {self.ports[name]: name for name in self.replicas}

        def promoted() -> str:  # "" until then
            name = by_port.get(self.master_port() or 0)
            if name is None:
                return ""
            with self.client(name) as c:
                return name if c.info("replication").get("role") == "master" else ""

        return wait_until(promoted, timeout, "sentinel to promote a replica")
