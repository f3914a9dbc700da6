"""A local Valkey Cluster for the tests: three masters and a replica of each.

Every node is the embedded ``valkey-server`` binary (``cluster-enabled yes``) on a free
loopback port, with its files in a temporary folder and no persistence; the slots are
assigned and the replicas attached by ``valkey-cli --cluster create --cluster-replicas``.
The node timeout is short (scaled by ``FAIRQUE_TEST_TIME_SCALE``) so a failover takes a
few seconds. (:class:`~tests.server_group.ServerGroup`
starts and kills them).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import redis
from redis.crc import key_slot

from fairque.core.keys import CLUSTER_SLOT_KEY
from fairque.server.process import free_port
from tests.server_group import ServerGroup
from tests.timing import budget, wait_until

START_TIMEOUT = 30.0  # seconds (scaled) for the whole cluster to come up


class ClusterGroup(ServerGroup):
    """Start with :meth:`start` (or ``with``); ``url`` is its ``redis+cluster://`` URL.

    Nodes are named ``node0``.. ``node{n}``; which of them are masters is the cluster's
    business: :meth:`fairque_master` names the one serving fairque's hash slot."""

    def __init__(
        self, folder: Path, *, masters: int = 3, replicas: int = 1, node_timeout_ms: int = 0
    ) -> None:
        super().__init__(folder)
        self.masters = masters
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms or int(budget(1.0) * 1000)

    @property
    def url(self) -> str:
        seeds = ",".join(f"127.0.0.1:{port}" for port in list(self.ports.values())[:2])
        return f"redis+cluster://{seeds}"

    def start(self) -> ClusterGroup:
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            for n in range(self.masters * (1 + self.replicas)):
                self._start_node(f"node{n}")
            wait_until(lambda: all(self._answers(n) for n in self.ports), START_TIMEOUT, "nodes")
            self._create()
            wait_until(self._ready, START_TIMEOUT, "the cluster to be ok with every replica")
        except BaseException:
            self.close()
            raise
        return self

    def _start_node(self, name: str) -> None:
        self._start_server(
            name,
            f"cluster-port {free_port()}",  # the default, port + 10000, may be taken or > 65535
            "cluster-enabled yes",
            f"cluster-config-file {name}-nodes.conf",
            f"cluster-node-timeout {self.node_timeout_ms}",
            "cluster-replica-validity-factor 0",  # any replica may take over, however stale
        )

    def _create(self) -> None:
        cli = Path(self.binary).with_name("valkey-cli")
        nodes = [f"127.0.0.1:{port}" for port in self.ports.values()]
        replicas = ["--cluster-replicas", str(self.replicas)] if self.replicas else []
        subprocess.run(
            [str(cli), "--cluster", "create", *nodes, *replicas, "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=budget(60.0),
        )

    def _ready(self) -> bool:
        live = [name for name, p in self.processes.items() if p.poll() is None]
        try:
            for name in live:
                with self.client(name) as c:
                    if c.cluster("info").get("cluster_state") != "ok":
                        return False
                    info = c.info("replication")
                    if info["role"] == "slave" and info.get("master_link_status") != "up":
                        return False
        except redis.RedisError:
            return False
        return True

    def fairque_master(self) -> str | None:
        """The node serving fairque's hash slot as the first live node sees it."""
        slot = key_slot(CLUSTER_SLOT_KEY.encode())
        by_port = {port: name for name, port in self.ports.items()}
        for name, process in self.processes.items():
            if process.poll() is not None:
                continue
            try:
                with self.client(name) as c:
                    for start, end, master, *_ in c.execute_command("CLUSTER SLOTS"):
                        if int(start) <= slot <= int(end):
                            return by_port.get(int(master[1]))
            except redis.RedisError:
                continue
        return None

    def replica_of(self, master: str) -> str:
        """The name of a replica of ``master``."""
        for name in self.ports:
            if name == master or self.processes[name].poll() is not None:
                continue
            with self.client(name) as c:
                info = c.info("replication")
            if info["role"] == "slave" and int(info["master_port"]) == self.ports[master]:
                return name
        raise LookupError(f"{master} has no replica")

    def wait_failover(self, old_master: str, timeout: float = 30.0) -> str:
        """Wait until another node serves fairque's slot and the cluster is ok again;
        returns the new master's name."""

        def moved() -> str:  # "" until then
            name = self.fairque_master()
            return name if name and name != old_master and self._ready() else ""

        return wait_until(moved, timeout, f"a replica of {old_master} to take over")
