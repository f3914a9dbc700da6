"""A producer pushing one large batch in small steps, to be killed in the middle:
``python -m tests.faults.batch_producer URL COUNT STEP_SIZE STAGING_TIMEOUT``."""

from __future__ import annotations

import sys

from fairque import FairQueueConfig, TaskQueue
from tests.faults.tally import recording_tasks


def main(url: str, count: int, step_size: int, staging_timeout: float) -> None:
    config = FairQueueConfig.create_default(
        redis=url, step_size=step_size, staging_timeout_seconds=staging_timeout
    )
    with TaskQueue(config) as queue:
        queue.push_batch(recording_tasks(url, count, 20, 0.0, prefix="b"))
    print("pushed", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
