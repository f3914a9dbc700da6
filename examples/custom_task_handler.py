"""The README's "Custom Task Handler": payload tasks handled by a subclass, function
tasks by the parent class, and hooks on success and failure."""

from __future__ import annotations

from examples.common import example_config
from fairque import Task, TaskHandler, TaskQueue, TaskRecord, Worker


def double(value: int) -> int:
    """A function task: workers import it as examples.custom_task_handler:double."""
    return value * 2


class MyTaskHandler(TaskHandler):
    """Handles payload tasks with action "custom_processing"; the rest as usual."""

    def _process_task(self, task: Task) -> bool:
        action = task.payload.get("action")
        if action == "custom_processing":
            print(f"Custom processing for task {task.task_id}")
            self.set_result({"processed": task.payload.get("item")})
            return True
        # For function tasks, the parent class imports and runs task.func
        return super()._process_task(task)

    def on_task_success(self, task: TaskRecord, duration: float) -> None:
        print(f"✓ Task {task.task_id} completed in {duration:.4f}s: {task.result}")

    def on_task_failure(self, task: Task, error: Exception, duration: float) -> None:
        print(f"✗ Task {task.task_id} failed: {error}")


config = example_config(
    worker_id="worker-001",
    assigned_users=["user:1", "user:2"],
    steal_targets=["user:3", "user:4"],
    allowed_modules=["examples"],
)


def main() -> None:
    """Queue three tasks, run a worker until they are done, then stop it."""
    with TaskQueue(config) as queue:
        ids = [
            queue.push(Task.create("user:1", payload={"action": "custom_processing", "item": 7})),
            queue.push(
                Task.create("user:3", func="examples.custom_task_handler:double", args=[21])
            ),
            queue.push(Task.create("user:2", payload={"action": "unknown"}, max_retries=0)),
        ]
        # start() blocks until SIGTERM/SIGINT; start_background() returns at once.
        with Worker(config, MyTaskHandler()) as worker:
            worker.start_background()
            queue.wait_for([pushed["task_id"] for pushed in ids], timeout=30)
        for pushed in ids:
            task = queue.get_task(pushed["task_id"])
            print(f"{task.task_id}: {task.state} result={task.result}")


if __name__ == "__main__":
    main()
