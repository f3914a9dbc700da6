"""What TaskQueue and AsyncTaskQueue share apart from I/O: set-up and error mapping."""

from __future__ import annotations

import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis.exceptions

from fairque.core.config import EMBEDDED, FairQueueConfig, redis_location
from fairque.core.errors import QueueError, RedisUnavailableError
from fairque.core.models import Task
from fairque.queue.calls import QueueCalls
from fairque.server import resolve_redis_url


class QueueBase:
    """Configuration, key names and call builders of a queue."""

    def __init__(self, config: FairQueueConfig | None = None, *, connect: bool = True) -> None:
        """Resolve where Redis is now (the config's server, else ``FAIRQUE_REDIS_URL``,
        else the embedded server of the state folder, started if needed). With
        ``connect=False`` (a client is given) no embedded server is started."""
        self.config = config or FairQueueConfig.create_default()
        self.calls = QueueCalls(self.config)
        self.keys = self.calls.keys
        explicit = self.config.redis.explicit_url()
        if connect:
            self.url = resolve_redis_url(explicit)
        else:
            self.url = redis_location(explicit) or EMBEDDED

    def _client_options(self) -> dict[str, Any]:
        return {"decode_responses": True, **self.config.redis.client_kwargs()}

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Turn redis-py errors into ours, naming the server and the action."""
        try:
            yield
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as e:
            raise RedisUnavailableError(
                f"cannot {action}: Redis at {_safe_url(self.url)} is unreachable ({e}); "
                "start it or set FAIRQUE_REDIS_URL"
            ) from e
        except redis.exceptions.ResponseError as e:
            raise QueueError(f"cannot {action}: Redis refused the command: {e}") from e


def _safe_url(url: str) -> str:
    """The URL without its password."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


def error_record(error: BaseException | str | dict[str, Any]) -> dict[str, Any]:
    """The JSON error record kept on a failed task: type, message and traceback."""
    if isinstance(error, dict):
        return {"type": "Error", "message": "", "traceback": "", **error}
    if isinstance(error, str):
        return {"type": "Error", "message": error, "traceback": ""}
    tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return {"type": type(error).__name__, "message": str(error), "traceback": tb}


def leases_of(tasks: Task | Sequence[Task]) -> list[tuple[str, int]]:
    """(task id, claim token) pairs for lease renewal."""
    items = [tasks] if isinstance(tasks, Task) else list(tasks)
    return [(t.task_id, t.claim) for t in items]
