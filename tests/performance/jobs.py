"""The task functions every system under test runs, as plain module-level functions.

Two task bodies (``--body``): ``noop`` does nothing; ``redis`` (``work``) makes one
pipelined round trip to Redis on the worker's own client, an ``RPUSH`` of a line and an
``INCR``, as almost every real task touches a database or cache. ``stamp`` and
``stamp_work`` are the same two bodies that also record when they started (latency).

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
WORK_LIST = "bench:work"  # the realistic body's RPUSH
WORK_COUNT = "bench:work-count"  # and its INCR: one per task run
URL_ENV = "BENCH_REDIS_URL"
LINE = "one line of work done by a benchmark task"

NOOP_BODY = "noop"
REDIS_BODY = "redis"
BODIES = (NOOP_BODY, REDIS_BODY)
# (job, stamped job) per body: the function queued, and the one latency scenarios queue
JOBS = {NOOP_BODY: ("noop", "stamp"), REDIS_BODY: ("work", "stamp_work")}


def body_name(name: str, body: str) -> str:
    """A figure's name for ``body``: the no-op keeps the plain name."""
    return name if body == NOOP_BODY else f"{name}, {body} body"


def plain_job(body: str) -> tuple[str, tuple[str, ...]]:
    """The job name and arguments of one task with ``body`` (no stamp)."""
    job = JOBS[body][0]
    return job, (LINE,) if body == REDIS_BODY else ()


def stamped_job(body: str) -> str:
    """The job name (taking one token) that records its start, with ``body``."""
    return JOBS[body][1]


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


def work(line: str) -> None:
    """The realistic body: one pipelined round trip (RPUSH ``line``, INCR a counter)."""
    pipe = sink_client().pipeline(transaction=False)
    pipe.rpush(WORK_LIST, line)
    pipe.incr(WORK_COUNT)
    pipe.execute()


def stamp(token: str) -> None:
    """Record ``token`` and the moment this task started."""
    started = time.time()
    sink_client().rpush(SINK, f"{token} {started!r}")


def stamp_work(token: str) -> None:
    """The realistic body whose line is the stamp: RPUSH it to the sink, INCR, one trip."""
    started = time.time()
    pipe = sink_client().pipeline(transaction=False)
    pipe.rpush(SINK, f"{token} {started!r}")
    pipe.incr(WORK_COUNT)
    pipe.execute()


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
