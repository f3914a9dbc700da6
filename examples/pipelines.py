"""The README's pipeline operators: >>, << and |, enqueued as runs on a worker."""

from __future__ import annotations

from examples.common import example_config
from examples.etl import (
    backup_data,
    extract_data,
    load_data,
    notify_completion,
    transform_data,
    validate_data,
)
from fairque import TaskQueue, Worker

config = example_config(worker_id="worker-001", allowed_modules=["examples"])


def main() -> None:
    """Enqueue four pipelines and print how each run ended."""
    pipelines = {
        # Sequential: A >> B >> C
        "linear": extract_data() >> transform_data() >> load_data(),
        # Parallel: A >> (B | C) >> D
        "parallel": extract_data() >> (transform_data() | validate_data()) >> load_data(),
        # Reverse: C << B << A
        "reverse": load_data() << transform_data() << extract_data(),
        # Complex workflows
        "complex": (
            extract_data()
            >> (transform_data() | validate_data())
            >> (load_data() | backup_data())
            >> notify_completion()
        ),
    }
    with TaskQueue(config) as queue, Worker(config) as worker:
        worker.start_background()
        runs = {name: queue.enqueue(pipeline) for name, pipeline in pipelines.items()}
        for name, run in runs.items():
            states = run.wait(timeout=30)
            print(f"{name}: " + ", ".join(f"{task}={state}" for task, state in states.items()))
        print(f"complex load result: {runs['complex'].result('load')}")


if __name__ == "__main__":
    main()
