"""Fair order across users, stealing, CRITICAL first, priorities and ageing."""

from __future__ import annotations

import threading

import pytest
import redis

from fairque import Priority, Task, TaskQueue
from tests.timing import budget

from .conftest import QueueFactory, drain

pytestmark = pytest.mark.both_queues


def test_light_user_is_interleaved_with_a_flooding_user(make_queue: QueueFactory) -> None:
    queue = make_queue(assigned_users=["A", "B"])
    queue.push_batch([Task.create("A", payload={"n": i}) for i in range(2000)])
    queue.push_batch([Task.create("B", payload={"n": i}) for i in range(10)])
    served = [t.user_id for t in drain(queue)]
    positions = [i + 1 for i, user in enumerate(served) if user == "B"]
    assert len(positions) == 10
    for i, position in enumerate(positions, start=1):
        assert position <= 2 * i + 2, (i, position, served[:30])
    assert served.count("A") == 2000


def test_round_robin_over_three_users_regardless_of_volume(make_queue: QueueFactory) -> None:
    queue = make_queue(assigned_users=["u1", "u2", "u3"])
    for user, count in (("u1", 50), ("u2", 5), ("u3", 5)):
        queue.push_batch([Task.create(user) for _ in range(count)])
    first = [t.user_id for t in drain(queue, limit=15)]
    assert sorted(first) == ["u1"] * 5 + ["u2"] * 5 + ["u3"] * 5
    for window in range(0, 15, 3):
        assert sorted(first[window : window + 3]) == ["u1", "u2", "u3"]


def test_fairness_is_shared_by_workers_not_kept_per_worker(make_queue: QueueFactory) -> None:
    one = make_queue(worker_id="w1", assigned_users=["A", "B"])
    two = make_queue(worker_id="w2", assigned_users=["A", "B"])
    one.push_batch([Task.create("A") for _ in range(100)])
    one.push_batch([Task.create("B") for _ in range(100)])
    served = []
    for i in range(40):
        task = (one if i % 2 else two).pop()
        assert task is not None
        served.append(task.user_id)
    # Each worker alone would see A,B,A,B; shared state makes the union alternate too.
    for pair in range(0, 40, 2):
        assert sorted(served[pair : pair + 2]) == ["A", "B"]


def test_fairness_holds_with_workers_popping_at_once(make_queue: QueueFactory) -> None:
    workers = 4
    queues = [make_queue(worker_id=f"w{i}", assigned_users=["*"]) for i in range(workers)]
    queues[0].push_batch([Task.create("heavy") for _ in range(1500)])
    queues[0].push_batch([Task.create("light") for _ in range(20)])
    served: list[Task] = []
    lock = threading.Lock()

    def run(queue: TaskQueue) -> None:
        while (task := queue.pop()) is not None:
            with lock:
                served.append(task)

    threads = [threading.Thread(target=run, args=(q,)) for q in queues]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=budget(30))
    assert len(served) == 1520
    # Order by the server's claim time; tasks claimed in the same millisecond tie, so
    # count only those claimed strictly earlier (a lower bound of the position).
    times = sorted(t.started_at or 0.0 for t in served)
    light = sorted(t.started_at or 0.0 for t in served if t.user_id == "light")
    for i, moment in enumerate(light, start=1):
        earlier = sum(1 for t in times if t < moment)
        assert earlier + 1 <= 2 * i + 2, (i, earlier)


def test_wildcard_serves_every_user_without_configuration(make_queue: QueueFactory) -> None:
    queue = make_queue(assigned_users=["*"])
    users = [f"tenant-{n}" for n in range(50)]
    queue.push_batch([Task.create(u) for u in users for _ in range(3)])
    served = [t.user_id for t in drain(queue)]
    assert len(served) == 150
    assert sorted(served[:50]) == sorted(users)  # one round over every tenant first


def test_steals_only_when_assigned_users_are_empty(make_queue: QueueFactory) -> None:
    queue = make_queue(assigned_users=["mine"], steal_targets=["other"])
    queue.push_batch([Task.create("other") for _ in range(3)])
    queue.push_batch([Task.create("mine") for _ in range(2)])
    queue.push(Task.create("stranger"))
    served = [t.user_id for t in drain(queue)]
    assert served == ["mine", "mine", "other", "other", "other"]
    assert queue.get_stats()["users"]["stranger"]["queued"] == 1


def test_steal_targets_are_served_round_robin(make_queue: QueueFactory) -> None:
    queue = make_queue(assigned_users=["idle"], steal_targets=["s1", "s2"])
    queue.push_batch([Task.create("s1") for _ in range(4)] + [Task.create("s2") for _ in range(2)])
    served = [t.user_id for t in drain(queue)]
    assert served[:4] in (["s1", "s2", "s1", "s2"], ["s2", "s1", "s2", "s1"])


def test_critical_first_in_fifo_order(make_queue: QueueFactory) -> None:
    queue = make_queue(assigned_users=["u"])
    queue.push(Task.create("u", Priority.VERY_HIGH, task_id="high"))
    for n in range(5):
        queue.push(Task.create("u", Priority.CRITICAL, task_id=f"crit-{n}"))
    served = [t.task_id for t in drain(queue)]
    assert served == [f"crit-{n}" for n in range(5)] + ["high"]


def test_higher_priority_first_and_fifo_within_a_priority(make_queue: QueueFactory) -> None:
    queue = make_queue(assigned_users=["u"])
    tasks = [
        Task.create("u", p, task_id=f"{p.name}-{n}")
        for n in range(3)
        for p in (Priority.VERY_LOW, Priority.NORMAL, Priority.HIGH, Priority.LOW)
    ]
    queue.push_batch(tasks)
    served = [t.task_id for t in drain(queue)]
    expected = [f"{name}-{n}" for name in ("HIGH", "NORMAL", "LOW", "VERY_LOW") for n in range(3)]
    assert served == expected


def test_ageing_lets_an_old_low_priority_task_pass_new_high_ones(
    make_queue: QueueFactory, redis_client: redis.Redis
) -> None:
    queue = make_queue(assigned_users=["u"], priority_aging_seconds=0.05)
    queue.push(Task.create("u", Priority.VERY_LOW, task_id="old-low"))
    # Three priority steps separate VERY_LOW from HIGH: 0.15 s of waiting at 0.05 s each.
    redis_client.incrby(queue.keys.clock, 200_000)  # the order clock moves on 0.2 s
    queue.push(Task.create("u", Priority.HIGH, task_id="new-high"))
    served = [t.task_id for t in drain(queue)]
    assert served == ["old-low", "new-high"]


def test_without_ageing_time_high_priority_still_wins(make_queue: QueueFactory) -> None:
    queue = make_queue(assigned_users=["u"])  # default step: 300 s per priority level
    queue.push(Task.create("u", Priority.VERY_LOW, task_id="low"))
    queue.push(Task.create("u", Priority.HIGH, task_id="high"))
    assert [t.task_id for t in drain(queue)] == ["high", "low"]


def test_pop_many_claims_in_fair_order(make_queue: QueueFactory) -> None:
    queue = make_queue(assigned_users=["*"])
    queue.push_batch([Task.create("x") for _ in range(5)] + [Task.create("y") for _ in range(5)])
    users = [t.user_id for t in queue.pop_many(6)]
    assert sorted(users) == ["x"] * 3 + ["y"] * 3
    assert queue.get_stats()["states"]["started"] == 6


def test_a_user_back_from_idle_has_no_hoard_of_credit(make_queue: QueueFactory) -> None:
    queue = make_queue(assigned_users=["*"])
    queue.push_batch([Task.create("busy") for _ in range(200)])
    queue.push(Task.create("sleepy"))
    drain(queue, limit=150)  # sleepy served once early, then idle while busy runs on
    queue.push_batch([Task.create("sleepy") for _ in range(20)])
    served = [t.user_id for t in drain(queue, limit=20)]
    assert served.count("sleepy") <= 11  # alternates with busy instead of a burst of 20
