"""The README's Quickstart: @task functions, run in-process or pushed to the queue with a
dependency, then run by a worker."""

from __future__ import annotations

from typing import Any

from examples.common import example_config
from fairque import Priority, TaskQueue, Worker, task


@task(task_id="process_order", priority=Priority.HIGH, max_retries=3, user_id="user:1")
def process_order(order_id: int, customer_id: str) -> dict[str, Any]:
    """Process customer order."""
    print(f"Processing order {order_id} for customer {customer_id}")
    return {"order_id": order_id, "customer_id": customer_id, "status": "processed", "total": 99.99}


@task(task_id="send_confirmation", depends_on=["process_order"], user_id="user:1")
def send_confirmation(order_id: int) -> str:
    """Send order confirmation email."""
    print(f"Sending confirmation for order {order_id}")
    return f"confirmation sent for {order_id}"


config = example_config(
    worker_id="worker-001",
    assigned_users=["user:1", "user:2", "user:3"],
    steal_targets=["user:4", "user:5"],
    allowed_modules=["examples"],
)


def main() -> None:
    """Run one task in-process, then push both and let a worker run them in order."""
    with TaskQueue(config) as queue:
        order_task = process_order(12345, "customer@example.com")
        confirmation_task = send_confirmation(12345)

        # Execute immediately, in this process
        result = order_task()
        print(f"Order result: {result}")

        # Or push to the queue for worker processing
        queue.push(order_task)
        queue.push(confirmation_task)  # DEFERRED until process_order has finished
        print(f"Confirmation is {queue.get_task(confirmation_task.task_id).state}")

        with Worker(config) as worker:
            worker.start_background()
            queue.wait_for([order_task.task_id, confirmation_task.task_id], timeout=30)
        print(f"Confirmation result: {queue.get_task(confirmation_task.task_id).result}")
        stats = queue.get_stats()
        print(f"Active tasks: {stats.get('tasks_active', 0)}")


if __name__ == "__main__":
    main()
