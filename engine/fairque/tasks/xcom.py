"""XCom in Redis: the backend a worker gives to running tasks.

Values live in ``fq:xcom:{scope}`` and every push and pull is appended to
``fq:lineage:{scope}`` by the same script, both expiring after ``xcom_ttl_seconds``.
"""

from __future__ import annotations

import json
from typing import Any

from fairque.core.errors import XComNotFoundError
from fairque.queue.sync_queue import TaskQueue
from fairque.tasks.context import encode_xcom


class RedisXCom:
    """An :class:`~fairque.tasks.context.XComBackend` on a TaskQueue's connection."""

    def __init__(self, queue: TaskQueue) -> None:
        self.queue = queue
        self.max_bytes = queue.config.queue.max_xcom_bytes

    def push(self, scope: str, key: str, value: Any, producer: str) -> None:
        """Store ``value`` (JSON, at most ``max_xcom_bytes``) under ``key``."""
        text = encode_xcom(key, value, self.max_bytes)
        self.queue.run_script(self.queue.calls.xcom_push(scope, key, text, producer))

    def pull(self, scope: str, key: str, consumer: str) -> Any:
        """The value under ``key``; XComNotFoundError when nothing was pushed."""
        text = self.queue.run_script(self.queue.calls.xcom_pull(scope, key, consumer))
        if text is None:
            raise XComNotFoundError(scope, key)
        return json.loads(text)

    def lineage(self, scope: str) -> list[dict[str, Any]]:
        """Every push and pull of ``scope``, oldest first."""
        return self.queue.run_pipeline(self.queue.calls.lineage(scope))
