"""The one place where fairque turns a connection URL into Redis clients (sync and async).

A URL is read by :func:`fairque.core.urls.parse_redis_url`: ``redis://``, ``rediss://``
(TLS) and ``unix://`` go to redis-py's ``from_url``; ``redis+sentinel://`` gives a client
of the service's current master through redis-py's ``Sentinel.master_for`` (it asks the
sentinels for the master on every new connection, and drops a connection that meets a
demoted master's READONLY, so a failover is followed); ``redis+cluster://`` is refused
here with :data:`~fairque.core.urls.CLUSTER_NOT_SUPPORTED`. Pub/Sub and pipelines use the
client's own pool, so they follow the master too. Close a client with
:func:`close_sync_client` / :func:`close_async_client`, which also close its sentinels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel

from fairque.core.errors import ConfigError
from fairque.core.urls import CLUSTER_NOT_SUPPORTED, RedisLocation, parse_redis_url


@dataclass(frozen=True)
class ClientPlan:
    """How to build the client of one URL (shared by the sync and async builders).

    ``options`` go to ``from_url`` (direct) or ``master_for`` (Sentinel: the master's
    connections); ``sentinel_options`` to the connections to the sentinels themselves.
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

    Raises :class:`~fairque.core.errors.ConfigValueError` for a bad URL and
    :class:`~fairque.core.errors.ConfigError` for ``redis+cluster://``."""
    where = parse_redis_url(url)
    if where.kind == "cluster":
        raise ConfigError(CLUSTER_NOT_SUPPORTED)
    if where.kind == "direct":
        return ClientPlan(where, options)
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
