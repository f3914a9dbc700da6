"""Large batches and releases go in bounded steps (queue.step_size), still all or none:
a batch is staged (held back, invisible to claims, cancel and delete), committed at
once and opened in order; a refusal or a producer that stops before the commit leaves
nothing; the dependents of an upstream beyond the step size are told in later steps
(continue_steps, which workers call)."""

from __future__ import annotations

import time

import pytest
import redis

from fairque import Task, TaskQueue, TaskState
from fairque.core.errors import (
    BatchGoneError,
    DuplicateTaskError,
    RunExistsError,
    TaskNotFoundError,
    UnknownDependencyError,
)
from tests.timing import wait_until

from .conftest import QueueFactory, background_worker, drain

pytestmark = pytest.mark.both_queues

S = TaskState
STEP = 4
TELL = STEP // 2  # dependents told (or tasks opened) per call


def _tasks(n: int, prefix: str = "t", user: str = "u") -> list[Task]:
    return [Task.create(user, task_id=f"{prefix}{i}") for i in range(n)]


def _finish_all(queue: TaskQueue) -> list[str]:
    """Claim and finish every ready task (and what they release), in claim order."""
    done = []
    while True:
        queue.continue_steps()
        task = queue.pop()
        if task is None and not queue.continue_steps():
            if queue.pop() is None:
                return done
            continue
        if task is not None:
            queue.finish(task, "ok")
            done.append(task.task_id)


def _missing(queue: TaskQueue, ids: list[str]) -> bool:
    """True when none of ``ids`` has a record."""
    for task_id in ids:
        try:
            queue.get_task(task_id)
        except TaskNotFoundError:
            continue
        return False
    return True


def _run_with_a_worker(queue: TaskQueue, redis_url: str, ids: list[str]) -> None:
    """Start a worker with the test's step size; wait until every task of ``ids`` ran."""
    with background_worker(redis_url, "w-steps", step_size=STEP, allowed_modules=["tests"]):
        wait_until(
            lambda: all(queue.get_task(i).state is S.FINISHED for i in ids),
            20,
            lambda: f"every task to run: {[queue.get_task(i).state.value for i in ids]}",
        )


def _leftovers(client: redis.Redis) -> list[str]:
    """Keys of staged batches, the given-up ZSet and pending steps left in Redis."""
    found = [k.decode() for k in client.scan_iter("fq:batch*")]
    return found + [k.decode() for k in client.scan_iter("fq:pending-steps")]


def test_a_batch_larger_than_the_step_keeps_its_order_and_its_dependencies(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue(step_size=STEP)
    tasks = _tasks(10)
    tasks.append(Task.create("u", task_id="after", depends_on=["t0", "t9"]))
    pushed = queue.push_batch(tasks)
    assert pushed["count"] == 11
    assert pushed["states"] == ["queued"] * 10 + ["deferred"]
    assert [queue.get_task(f"t{i}").state for i in range(10)] == [S.QUEUED] * 10
    assert queue.get_task("after").state is S.DEFERRED
    done = _finish_all(queue)
    assert done == [f"t{i}" for i in range(10)] + ["after"]  # FIFO, as one push would


def test_a_refusal_in_a_later_step_leaves_nothing_of_the_batch(
    make_queue: QueueFactory, redis_client: redis.Redis
) -> None:
    queue = make_queue(step_size=STEP)
    queue.push(Task.create("u", task_id="t7"))  # still queued: the batch's t7 is a duplicate
    with pytest.raises(DuplicateTaskError, match="t7"):
        queue.push_batch(_tasks(10))
    assert _missing(queue, [f"t{i}" for i in range(7)])
    assert queue.get_stats()["users"]["u"].get("deferred", 0) == 0
    with pytest.raises(UnknownDependencyError, match="nowhere"):
        queue.push_batch([*_tasks(5, "x"), Task.create("u", task_id="y", depends_on=["nowhere"])])
    assert _missing(queue, [f"x{i}" for i in range(5)])
    assert _leftovers(redis_client) == []
    assert [t.task_id for t in drain(queue)] == ["t7"]


def test_a_run_larger_than_the_step_is_created_once_and_ends_with_its_last_task(
    make_queue: QueueFactory, redis_client: redis.Redis
) -> None:
    queue = make_queue(step_size=STEP)
    ids = [f"r1:n{i}" for i in range(8)]
    tasks = [Task.create("u", task_id=ids[0], run_id="r1", name="n0")]
    tasks += [
        Task.create("u", task_id=ids[i], run_id="r1", name=f"n{i}", depends_on=[ids[0]])
        for i in range(1, 8)
    ]
    queue.enqueue_tasks(tasks, "r1", dag_id="big")
    with pytest.raises(RunExistsError):
        queue.enqueue_tasks([Task.create("u", task_id=f"r1:m{i}") for i in range(5)], "r1")
    assert _missing(queue, ["r1:m0"])
    run = queue.get_run("r1")
    assert (run.state.value, len(run.tasks)) == ("queued", 8)
    run_key = queue.calls.keys.run("r1")
    assert redis_client.hget(run_key, "active_tasks") == b"8"
    assert len(_finish_all(queue)) == 8
    assert queue.get_run("r1").state.value == "success"
    assert redis_client.hget(run_key, "active_tasks") == b"0"


def test_staged_tasks_are_not_the_queues_until_the_commit(
    make_queue: QueueFactory, redis_client: redis.Redis
) -> None:
    queue = make_queue(step_size=STEP, staging_timeout_seconds=0.3)
    plan = queue.calls.plan_push(_tasks(6))
    first, second = plan.steps(STEP)
    states = queue.run_script(queue.calls.stage("b1", plan, first, 0))  # then the producer stops
    assert queue.get_stats()["batches_staging"] == 1
    assert states == ["queued"] * STEP
    assert queue.run_script(queue.calls.stage("b1", plan, first, 0)) == states  # sent again
    assert queue.pop() is None
    with pytest.raises(TaskNotFoundError):
        queue.cancel("t0")
    with pytest.raises(TaskNotFoundError):
        queue.delete_task("t1")
    with pytest.raises(DuplicateTaskError):
        queue.push(Task.create("u", task_id="t2"))
    time.sleep(0.35)  # the staging timeout passes: the batch is given up
    wait_until(lambda: not queue.continue_steps(), 5, "the given-up batch to be taken back")
    assert _missing(queue, [f"t{i}" for i in range(STEP)])
    with pytest.raises(BatchGoneError, match="b1"):
        queue.run_script(queue.calls.stage("b1", plan, second, len(first)))
    with pytest.raises(BatchGoneError):
        queue.run_script(queue.calls.commit("b1", plan))
    assert _leftovers(redis_client) == []
    assert queue.push_batch(_tasks(6))["count"] == 6  # the ids are free again


def test_a_committed_task_can_be_canceled_before_it_is_opened(
    make_queue: QueueFactory, redis_client: redis.Redis
) -> None:
    queue = make_queue(step_size=STEP)
    tasks = [Task.create("u", task_id=f"r2:n{i}", run_id="r2", name=f"n{i}") for i in range(7)]
    plan = queue.calls.plan_push(tasks, ("r2", None, {"task_ids": "{}"}))
    done = 0
    for parts in plan.steps(STEP):
        queue.run_script(queue.calls.stage("b2", plan, parts, done))
        done += len(parts)
    committed = queue.run_script(queue.calls.commit("b2", plan))
    assert (committed["held"], committed["left"]) == (False, 7 - TELL)
    again = queue.run_script(queue.calls.commit("b2", plan))  # its reply lost: sent again
    assert (again["held"], again["left"]) == (False, 7 - TELL)
    assert queue.get_task("r2:n6").state is S.DEFERRED  # committed, not opened yet
    queue.cancel("r2:n6")
    assert queue.get_task("r2:n6").state is S.CANCELED
    while queue.continue_steps():
        pass
    assert queue.get_task("r2:n6").state is S.CANCELED
    assert len(_finish_all(queue)) == 6
    assert redis_client.hget(queue.calls.keys.run("r2"), "active_tasks") == b"0"


def test_dependents_beyond_the_step_are_told_in_later_steps(make_queue: QueueFactory) -> None:
    queue = make_queue(step_size=STEP)
    queue.push(Task.create("u", task_id="root"))
    queue.push_batch([Task.create("v", task_id=f"d{i}", depends_on=["root"]) for i in range(10)])
    root = queue.pop()
    assert root is not None and root.task_id == "root"
    queue.finish(root, "ok")
    states = [queue.get_task(f"d{i}").state for i in range(10)]
    assert states.count(S.QUEUED) == TELL  # the rest waits for continue_steps
    assert queue.get_stats()["pending_steps"] == 1
    # the upstream's id is pushed again meanwhile: its new dependents wait for the new life
    queue.push(Task.create("u", task_id="root"))
    queue.push(Task.create("u", task_id="new", depends_on=["root"]))
    while queue.continue_steps():
        pass
    assert [queue.get_task(f"d{i}").state for i in range(10)] == [S.QUEUED] * 10
    assert queue.get_task("new").state is S.DEFERRED


def test_a_failed_upstream_cancels_its_many_dependents_in_steps(make_queue: QueueFactory) -> None:
    queue = make_queue(step_size=STEP)
    queue.push(Task.create("u", task_id="root", max_retries=0))
    queue.push_batch([Task.create("v", task_id=f"d{i}", depends_on=["root"]) for i in range(8)])
    queue.push_batch([Task.create("v", task_id=f"e{i}", depends_on=[f"d{i}"]) for i in range(8)])
    root = queue.pop()
    assert root is not None
    queue.fail(root, "broken", retryable=False)
    while queue.continue_steps():
        pass
    ends = [queue.get_task(f"{p}{i}").state for p in "de" for i in range(8)]
    assert ends == [S.CANCELED] * 16


def test_a_worker_carries_on_a_release_larger_than_the_step(
    make_queue: QueueFactory, redis_url: str
) -> None:
    queue = make_queue(step_size=STEP)
    func = "tests.integration.jobs:add"
    queue.push(Task.create("u", task_id="root", func=func, args=[1, 2]))
    queue.push_batch(
        [
            Task.create("u", task_id=f"d{i}", func=func, args=[i, 1], depends_on=["root"])
            for i in range(12)
        ]
    )
    _run_with_a_worker(queue, redis_url, [f"d{i}" for i in range(12)])


def test_a_large_run_beyond_max_active_runs_waits_for_its_slot(make_queue: QueueFactory) -> None:
    queue = make_queue(step_size=STEP)

    def run(run_id: str, size: int) -> list[str]:
        tasks = [Task.create("u", task_id=f"{run_id}:n{i}", run_id=run_id) for i in range(size)]
        queue.enqueue_tasks(tasks, run_id, dag_id="d", max_active_runs=1)
        return [t.task_id for t in tasks]

    first = run("a", 2)
    second = run("b", 7)  # held, and larger than the step
    assert {queue.get_task(i).state for i in second} == {S.DEFERRED}
    done = _finish_all(queue)
    assert (done[:2], sorted(done[2:])) == (first, second)  # a started held run: any order


def test_a_held_run_larger_than_the_step_starts_in_steps(make_queue: QueueFactory) -> None:
    queue = make_queue(step_size=STEP)
    queue.enqueue_tasks(
        [Task.create("u", task_id="a:n0", run_id="a")], "a", dag_id="d", max_active_runs=1
    )
    held = [Task.create("u", task_id=f"b:n{i}", run_id="b") for i in range(7)]
    queue.enqueue_tasks(held, "b", dag_id="d", max_active_runs=1)
    first = queue.pop()
    assert first is not None and first.task_id == "a:n0"
    queue.finish(first, "ok")  # b gets the slot: TELL of its tasks start in this call
    states = [queue.get_task(t.task_id).state for t in held]
    assert states.count(S.QUEUED) == TELL and states.count(S.DEFERRED) == 7 - TELL
    while queue.continue_steps():
        pass
    assert {queue.get_task(t.task_id).state for t in held} == {S.QUEUED}


def test_a_worker_promotes_many_due_tasks_in_steps(
    make_queue: QueueFactory, redis_url: str
) -> None:
    queue = make_queue(step_size=STEP)
    due = time.time() + 0.2
    func = "tests.integration.jobs:noop"
    queue.push_batch(
        [Task.create("u", task_id=f"s{i}", func=func, execute_after=due) for i in range(12)]
    )
    assert {queue.get_task(f"s{i}").state for i in range(12)} == {S.SCHEDULED}
    _run_with_a_worker(queue, redis_url, [f"s{i}" for i in range(12)])


def test_a_task_with_many_upstreams_is_linked_in_parts(make_queue: QueueFactory) -> None:
    queue = make_queue(step_size=2)  # 10 upstreams per part
    queue.push_batch([Task.create("u", task_id=f"up{i}") for i in range(25)])
    join = Task.create("u", task_id="join", depends_on=[f"up{i}" for i in range(25)])
    plan = queue.calls.plan_push([join])
    assert [len(step) for step in plan.steps(2)] == [1, 1, 1]  # 10 + 10 + 5 upstreams
    assert queue.push(join)["state"] == "deferred"
    record = queue.get_task("join")
    assert record.state is S.DEFERRED and record.depends_on == [f"up{i}" for i in range(25)]
    done = _finish_all(queue)
    assert done[-1] == "join" and len(done) == 26  # it waited for all 25


def test_a_large_batch_is_enqueued_when_it_opens(
    make_queue: QueueFactory, redis_client: redis.Redis
) -> None:
    queue = make_queue(step_size=STEP)
    tasks = _tasks(10)
    tasks.append(Task.create("u", task_id="after", depends_on=["t0"]))
    before = time.time()
    queue.push_batch(tasks)
    after = time.time()
    times = [queue.get_task(t.task_id).enqueued_at for t in tasks]
    assert all(t is not None and before - 0.05 <= t <= after + 0.05 for t in times), times
    # a task queued as its batch opened leaves the field to its stamp; a waiting one has it
    assert not redis_client.hexists(queue.keys.task("t1"), "enqueued_at")
    assert redis_client.hexists(queue.keys.task("after"), "enqueued_at")
