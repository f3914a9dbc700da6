"""The task functions every system under test runs, as plain module-level functions.

``noop`` does nothing. ``stamp(token)`` takes ``time.time()`` first thing and appends
``"token time"`` to the Redis list ``SINK`` on the benchmark server, so the harness sees
when each task *started* (on loopback the harness and the workers share one clock).
Both are imported by fairque workers and RQ workers by path; the other peers wrap them in
their own app modules (``peers/*_app.py``). The sink's client is made on first use from
``$BENCH_REDIS_URL``, which the harness sets for every worker it starts.

This module imports nothing but redis-py: RQ's work horse imports it anew for every job
(it forks first), so a heavy import here would be charged to RQ.
"""

from __future__ import annotations

import os
import time

import redis

SINK = "bench:sink"
URL_ENV = "BENCH_REDIS_URL"

_client: redis.Redis | None = None


def sink_client() -> redis.Redis:
    """The worker-side client for the sink (one per process, made on first use)."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ[URL_ENV])
    return _client


def noop() -> None:
    """The no-op task."""


def sleep(seconds: float) -> None:
    """A task that takes ``seconds`` of worker time (the tenant benchmarks)."""
    time.sleep(seconds)


def stamp(token: str) -> None:
    """Record ``token`` and the moment this task started."""
    started = time.time()
    sink_client().rpush(SINK, f"{token} {started!r}")


def stamp_entry(token: str, started: float) -> str:
    """The sink entry ``stamp`` writes (for peers that stamp through their own client)."""
    return f"{token} {started!r}"


def parse_entry(entry: bytes | str) -> tuple[str, float]:
    """(token, start time) of a sink entry."""
    text = entry.decode() if isinstance(entry, bytes) else entry
    token, _, started = text.rpartition(" ")
    return token, float(started)


def timed() -> dict[str, float]:
    """A no-op that returns when it started and ended (the DAG scenario's step)."""
    started = time.time()
    return {"start": started, "end": time.time()}
