"""The one place where fairque turns a connection URL into Redis clients (sync and async).

A URL is read by :func:`fairque.core.urls.parse_redis_url`: ``redis://``, ``rediss://``
(TLS) and ``unix://`` go to redis-py's ``from_url``; ``redis+sentinel://`` gives a client
of the service's current master through redis-py's ``Sentinel.master_for`` (it asks the
sentinels for the master on every new connection, and drops a connection that meets a
demoted master's READONLY, so a failover is followed).

``redis+cluster://`` gives a client pinned to the master that serves fairque's hash slot
(every fairque key carries one hash tag, see :mod:`fairque.core.keys`): the master is
read with ``CLUSTER SLOTS`` from the seed nodes of the URL (and the nodes they named),
and each new connection goes to the slot's current master. A connection that meets MOVED, ASK,
CLUSTERDOWN or TRYAGAIN (a failover, a resharding), or that cannot connect, marks the
topology stale and is dropped with a ConnectionError, so redis-py's retry and
fairque's loops reconnect to the new master. As every key of a call is in that one
slot, scripts, pipelines, ``WAIT`` (durability) and Pub/Sub (PUBLISH reaches every
node of a cluster) work as on one server. Pub/Sub and pipelines use the client's own
pool, so they follow the master too. Close a client with :func:`close_sync_client` /
:func:`close_async_client`, which also close its sentinels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.exceptions
import redis.sentinel
from redis.crc import key_slot

from fairque.core.keys import CLUSTER_SLOT_KEY
from fairque.core.urls import RedisLocation, parse_redis_url

_SLOT_MOVED = (
    redis.exceptions.MovedError,
    redis.exceptions.AskError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
)
"""Replies saying fairque's slot is not (or not now) served by the connected node."""

_SLOT = key_slot(CLUSTER_SLOT_KEY.encode())
"""The hash slot of every fairque key on a cluster."""


@dataclass(frozen=True)
class ClientPlan:
    """How to build the client of one URL (shared by the sync and async builders).

    ``options`` go to ``from_url`` (direct), ``master_for`` (Sentinel: the master's
    connections) or the pool of the slot's master (Cluster); ``sentinel_options`` to the
    connections to the sentinels themselves, or to the cluster's seed nodes.
    """

    location: RedisLocation
    options: dict[str, Any]
    sentinel_options: dict[str, Any] = field(default_factory=dict)

    @property
    def service(self) -> str:
        """The Sentinel service name (the monitored master's)."""
        return self.location.service or ""


def plan_client(url: str, options: dict[str, Any]) -> ClientPlan:
    """The plan for ``url`` with client ``options`` (socket timeouts, retry, decoding).

    Raises :class:`~fairque.core.errors.ConfigValueError` for a bad URL."""
    where = parse_redis_url(url)
    if where.kind == "direct":
        return ClientPlan(where, options)
    if where.kind == "cluster":
        cluster = {k: v for k, v in options.items() if k.startswith("socket_")}
        auth = {"username": where.username, "password": where.password}
        return ClientPlan(where, {**options, **auth}, {**cluster, **auth})
    master = {**options, "db": where.db, "username": where.username, "password": where.password}
    sentinel = {k: v for k, v in options.items() if k.startswith("socket_") or k == "retry"}
    sentinel["username"] = where.options.get("sentinel_username")
    sentinel["password"] = where.options.get("sentinel_password")
    return ClientPlan(where, master, sentinel)


def sync_client(url: str, **options: Any) -> redis.Redis:
    """A blocking client for ``url`` (see the module's doc)."""
    plan = plan_client(url, options)
    if plan.location.kind == "direct":
        return redis.Redis.from_url(url, **options)
    if plan.location.kind == "cluster":
        locator = SlotLocator(plan)
        pool = redis.ConnectionPool(
            connection_class=_SlotConnection, locator=locator, **plan.options
        )
        return redis.Redis.from_pool(pool)  # the client owns (and closes) the pool
    sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        plan.location.nodes, sentinel_kwargs=plan.sentinel_options
    )
    client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        plan.service, **plan.options
    )
    return client


def async_client(url: str, **options: Any) -> redis.asyncio.Redis:
    """An asyncio client for ``url`` (see the module's doc)."""
    plan = plan_client(url, options)
    if plan.location.kind == "direct":
        return redis.asyncio.Redis.from_url(url, **options)
    if plan.location.kind == "cluster":
        locator = AsyncSlotLocator(plan)
        pool = redis.asyncio.ConnectionPool(
            connection_class=_AsyncSlotConnection, locator=locator, **plan.options
        )
        return redis.asyncio.Redis.from_pool(pool)  # the client owns (and closes) the pool
    sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        plan.location.nodes, sentinel_kwargs=plan.sentinel_options
    )
    client: redis.asyncio.Redis = sentinel.master_for(plan.service, **plan.options)
    return client


def close_sync_client(client: redis.Redis) -> None:
    """Close ``client``'s pool and, for a Sentinel client, its sentinels' connections."""
    client.close()
    for sentinel in _sentinels_of(client):
        sentinel.close()


async def close_async_client(client: redis.asyncio.Redis) -> None:
    """Close ``client``'s pool and, for a Sentinel client, its sentinels' connections."""
    await client.aclose()
    for sentinel in _sentinels_of(client):
        await sentinel.aclose()


def _sentinels_of(client: Any) -> list[Any]:
    manager = getattr(client.connection_pool, "sentinel_manager", None)
    return list(manager.sentinels) if manager is not None else []


class SlotLocator:
    """Where fairque's hash slot is served now (the master's host and port), read with
    ``CLUSTER SLOTS`` from the first seed node that answers when first needed and again
    after :meth:`forget` (a MOVED reply or a failed connection). Every node a reading
    names is kept as a seed, so the cluster is found again when a seed of the URL is
    gone."""

    def __init__(self, plan: ClientPlan) -> None:
        self._options = plan.sentinel_options
        self._seeds: list[tuple[str, int]] = list(plan.location.nodes)
        self._address: tuple[str, int] | None = None

    def address(self) -> tuple[str, int]:
        """The (host, port) of the master serving the slot; ConnectionError when no
        seed or known node answers."""
        errors: list[str] = []
        for host, port in [] if self._address else list(self._seeds):
            try:
                with redis.Redis(host, port, **self._options) as seed:
                    self._learn(host, seed.execute_command("CLUSTER SLOTS"))
                break
            except redis.RedisError as e:
                errors.append(f"{host}:{port}: {e}")
        return self._known(errors)

    def _learn(self, seed_host: str, slots: list[Any]) -> None:
        """Take the master of fairque's slot and every node from a CLUSTER SLOTS reply
        (an empty host means the host the reply came from)."""
        known: list[tuple[str, int]] = []
        for first, last, *nodes in slots:
            addresses = [(_text(n[0]) or seed_host, int(n[1])) for n in nodes]
            known.extend(addresses)
            if int(first) <= _SLOT <= int(last) and addresses:
                self._address = addresses[0]
        self._seeds = [*dict.fromkeys([*self._seeds, *known])]
        if self._address is None:
            raise redis.exceptions.ConnectionError("no node of the cluster serves fairque's slot")

    def _known(self, errors: list[str]) -> tuple[str, int]:
        if self._address is None:
            tried = "; ".join(errors) or "no seed nodes"
            raise redis.exceptions.ConnectionError(f"no node of the cluster answered: {tried}")
        return self._address

    def forget(self) -> None:
        """Read the topology again before the next connection."""
        self._address = None


class AsyncSlotLocator(SlotLocator):
    """:class:`SlotLocator` for asyncio clients."""

    async def address_async(self) -> tuple[str, int]:
        """The (host, port) of the master serving the slot (see :class:`SlotLocator`)."""
        errors: list[str] = []
        for host, port in [] if self._address else list(self._seeds):
            try:
                async with redis.asyncio.Redis(host=host, port=port, **self._options) as seed:
                    self._learn(host, await seed.execute_command("CLUSTER SLOTS"))  # type: ignore[no-untyped-call]
                break
            except redis.RedisError as e:
                errors.append(f"{host}:{port}: {e}")
        return self._known(errors)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class _SlotConnection(redis.Connection):
    """A connection to the master serving fairque's slot, found anew on each connect."""

    def __init__(self, **kwargs: Any) -> None:
        self.locator: SlotLocator = kwargs.pop("locator")
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]

    def connect(self) -> None:
        if self._sock:
            return
        self.host, self.port = self.locator.address()
        try:
            super().connect()  # type: ignore[no-untyped-call]
        except redis.exceptions.ConnectionError:
            self.locator.forget()
            raise

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except _SLOT_MOVED as e:
            self.locator.forget()
            self.disconnect()  # type: ignore[no-untyped-call]
            raise redis.exceptions.ConnectionError(f"fairque's slot moved: {e}") from e


class _AsyncSlotConnection(redis.asyncio.Connection):
    """:class:`_SlotConnection` for asyncio clients."""

    def __init__(self, **kwargs: Any) -> None:
        self.locator: AsyncSlotLocator = kwargs.pop("locator")
        super().__init__(**kwargs)

    async def connect(self) -> None:
        if self.is_connected:
            return
        self.host, self.port = await self.locator.address_async()
        try:
            await super().connect()  # type: ignore[no-untyped-call]
        except redis.exceptions.ConnectionError:
            self.locator.forget()
            raise

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)
        except _SLOT_MOVED as e:
            self.locator.forget()
            await self.disconnect()
            raise redis.exceptions.ConnectionError(f"fairque's slot moved: {e}") from e
