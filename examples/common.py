"""What every example shares: a config on FAIRQUE_REDIS_URL or the embedded server."""

from __future__ import annotations

from typing import Any

from fairque import FairQueueConfig
from fairque.server import resolve_redis_url


def example_config(**settings: Any) -> FairQueueConfig:
    """``FairQueueConfig.create_default(**settings)`` on the server examples should use."""
    return FairQueueConfig.create_default(redis=resolve_redis_url(), **settings)
