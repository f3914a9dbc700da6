"""The README's "Manual Task Management": push, pop, process and clean up by hand."""

from __future__ import annotations

from examples.common import example_config
from fairque import Priority, Task, TaskQueue

# Create configuration
config = example_config(
    worker_id="worker-001",
    assigned_users=["user:1", "user:2", "user:3"],
    steal_targets=["user:4", "user:5"],
)


def main() -> None:
    """Push a task, pop it, process it, delete it and print the statistics."""
    with TaskQueue(config) as queue:
        # Create and push a task manually
        task = Task.create(
            user_id="user:1",
            priority=Priority.HIGH,
            payload={"action": "process_data", "data_id": 123},
        )
        result = queue.push(task)
        print(f"Task pushed: {result['success']}")

        # Pop and process tasks
        popped = queue.pop()
        if popped:
            print(f"Processing task {popped.task_id} from user {popped.user_id}")
            print(f"Payload: {popped.payload}")
            # Clean up after processing (or record the outcome: queue.finish(popped, result))
            queue.delete_task(popped.task_id)

        # Get statistics
        stats = queue.get_stats()
        print(f"Active tasks: {stats.get('tasks_active', 0)}")


if __name__ == "__main__":
    main()
