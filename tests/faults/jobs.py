"""Task functions of the fault suite (importable as tests.faults.jobs by the workers)."""

from __future__ import annotations

import threading
import time
import uuid

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

_CLIENTS: dict[str, redis.Redis] = {}
_LOCK = threading.Lock()


def _client(url: str) -> redis.Redis:
    with _LOCK:
        client = _CLIENTS.get(url)
        if client is None:
            client = _CLIENTS[url] = redis.Redis.from_url(
                url,
                retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 60),
                retry_on_error=[redis.ConnectionError, redis.TimeoutError],
            )
        return client


def record(url: str, key: str, token: str, seconds: float = 0.0) -> str:
    """Log one execution (RPUSH ``token`` and a mark of this execution to the list ``key``
    on ``url``), then sleep.

    The client retries through a server restart (about 20 s), so an outage does not
    turn into a failed attempt; an RPUSH that reached the server before the crash ate
    its reply is sent again, so the mark tells one execution logged twice from two
    executions (see tests/faults/tally.py)."""
    _client(url).rpush(key, f"{token} {uuid.uuid4().hex[:12]}")
    time.sleep(seconds)
    return token
