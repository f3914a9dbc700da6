"""The README's XCom example: extract pushes its result, transform pulls it; the run's
lineage shows who pushed and who pulled each key."""

from __future__ import annotations

from examples.common import example_config
from examples.etl import extract_data, transform_data
from fairque import TaskQueue, Worker

config = example_config(worker_id="worker-001", allowed_modules=["examples"])


def main() -> None:
    """Run extract >> transform on a worker and print the result and the lineage."""
    pipeline = extract_data("database") >> transform_data()
    with TaskQueue(config) as queue, Worker(config) as worker:
        worker.start_background()
        run = queue.enqueue(pipeline)
        states = run.wait(timeout=30)
        print("states: " + ", ".join(f"{name}={state}" for name, state in states.items()))
        print(f"transform result: {run.result('transform')}")
        for event in run.lineage():
            print(
                f"{event['kind']}: {event['key']} ({event['bytes']} bytes) "
                f"by {event['producer']} -> {event['consumer'] or '-'}"
            )
    # The same tasks also run in-process, with an in-memory XCom:
    extract_data("file")()
    print(f"in-process transform: {transform_data()()}")


if __name__ == "__main__":
    main()
