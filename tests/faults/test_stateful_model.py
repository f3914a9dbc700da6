"""A Hypothesis state machine drives the real Lua scripts through TaskQueue with random
interleavings of push (with dependencies and trigger rules, sometimes due later, or again
under an ended id), pop, finish, fail, requeue, cancel, delete, reclaim (a lease cut
short with ``extend_lease``, then ``reclaim_expired``) and promote, and after every step
reads Redis through core/keys.py to check the invariants:

- each task is in exactly one state registry, the one its record names, and every
  registry member has a record;
- a QUEUED task sits once in its user's queue (the CRITICAL list or the sorted set) and
  nothing else does; the per-user counters of the active states and of queued tasks per
  priority equal what the registries and queues hold (the counters of ended states, which
  only go up, are at least the registries);
- the active users are exactly the users with ready tasks;
- a DEFERRED task is blocked by at least one task (or its run is held), each one that
  has not ended and lists it as waiting; no task that ended (or is gone) still has
  dependents waiting on it;
- a run's ``active_tasks`` equals its tasks in active states; a held run (beyond its DAG's
  max_active_runs) has no task ready or started, and waits in the DAG's queue unless
  it has no active task; a DAG's run holds a slot exactly when it is not held and has
  an active task.

Runs of a few tasks with dependencies (some of a DAG with ``max_active_runs=1``) are
made with ``enqueue_tasks`` and cleared with ``clear_run`` (every failed task by default,
or named tasks, with or without their downstream); a clear that must be refused raises
ClearError and changes nothing. The same model runs with a step size of 2 (runs written
in steps, releases one dependent per call; see "Large batches" in the README).

A finish, fail or requeue must succeed exactly when the caller's claim is the current
one (fencing); otherwise LeaseLostError.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any, ClassVar

import pytest
import redis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from fairque import TaskQueue
from fairque.core.errors import (
    ClearError,
    DuplicateTaskError,
    InvalidStateError,
    LeaseLostError,
    TaskNotFoundError,
    UnknownDependencyError,
)
from fairque.core.keys import Keys
from fairque.core.models import ACTIVE_STATES, TERMINAL_STATES, Task, TaskRecord, TaskState
from tests.faults.conftest import Figures
from tests.integration.conftest import QueueFactory
from tests.timing import budget

pytestmark = [pytest.mark.faults, pytest.mark.slow]

USERS = ("a", "b", "c")
DAG = "dag"
CLEARABLE = frozenset({"deferred", "finished", "failed", "canceled"})
RULES = ("all_success", "all_done", "one_success", "one_failed", "none_failed", "all_failed")
MAX_EXAMPLES = int(os.environ.get("FAIRQUE_FAULTS_EXAMPLES", "80"))  # more to hunt bugs
STEPS = 35
# A failure is shown as found, not shrunk (shrinking one took more than five minutes);
# FAIRQUE_FAULTS_SHRINK=1 shrinks it to a short example.
SHRINK = os.environ.get("FAIRQUE_FAULTS_SHRINK") == "1"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class QueueModel(RuleBasedStateMachine):
    """Random operations on one queue; the invariants are read back from Redis."""

    queue: ClassVar[TaskQueue]
    tally: ClassVar[Counter[str]] = Counter()
    fence_lives: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        self.redis: redis.Redis = self.queue.redis
        self.keys: Keys = self.queue.keys
        self.redis.flushdb()
        self.ids: list[str] = []
        self.claims: dict[str, TaskRecord] = {}  # the last claim of each task (maybe stale)
        self.old_lives: list[TaskRecord] = []  # claims on an id pushed again since
        self.runs: dict[str, dict[str, list[str]]] = {}  # run -> task id -> upstream ids
        self.run_of: dict[str, str] = {}  # task id of a run -> its run (never pushed again)
        self.tally["examples"] += 1

    # --- helpers ---------------------------------------------------------------------

    def record(self, task_id: str) -> dict[str, str]:
        raw = self.redis.hgetall(self.keys.task(task_id))
        return {_text(k): _text(v) for k, v in raw.items()}

    def holds(self, claim: TaskRecord) -> bool:
        """Does ``claim`` still hold its task (started, same claim token)?"""
        now = self.record(claim.task_id)
        return now.get("state") == "started" and now.get("claim_token") == str(claim.claim_token)

    def count(self, what: str) -> None:
        self.tally[what] += 1

    # --- producing -------------------------------------------------------------------

    @rule(
        user=st.sampled_from(USERS),
        priority=st.integers(1, 6),
        trigger_rule=st.sampled_from(RULES),
        later=st.integers(0, 9),
        max_retries=st.integers(0, 2),
        data=st.data(),
    )
    def push(
        self,
        user: str,
        priority: int,
        trigger_rule: str,
        later: int,
        max_retries: int,
        data: st.DataObject,
    ) -> None:
        deps: list[str] = []
        if self.ids:
            deps = data.draw(st.lists(st.sampled_from(self.ids), max_size=2, unique=True))
        again = self.ended_ids()
        reuse = bool(again) and data.draw(st.integers(0, 4)) == 0
        task_id = data.draw(st.sampled_from(again)) if reuse else f"t{len(self.ids)}"
        deps = [d for d in deps if d != task_id]
        task = Task.create(
            user,
            priority,
            task_id=task_id,
            depends_on=deps,
            trigger_rule=trigger_rule,
            max_retries=max_retries,
            retry_delay_seconds=0,
            execute_after=time.time() + 3600 if later == 0 else None,
        )
        missing = [d for d in deps if not self.record(d)]
        try:
            self.queue.push(task)
        except UnknownDependencyError:
            assert missing, f"push of {task_id} refused though {deps} all exist"
            self.count("push refused (unknown dependency)")
            return
        assert not missing, f"push of {task_id} accepted though {missing} do not exist"
        if reuse:
            self.retire(task_id)
        else:
            self.ids.append(task_id)
        self.count("push again" if reuse else "push")

    def retire(self, task_id: str) -> None:
        """The id starts a new life: a claim on its earlier life is stale for good. The
        model keeps such claims only when it checks fencing across lives."""
        old = self.claims.pop(task_id, None)
        if old is not None and self.fence_lives:
            self.old_lives.append(old)

    @precondition(lambda self: self.old_lives)
    @rule(data=st.data(), how=st.sampled_from(["finish", "fail", "requeue", "extend"]))
    def settle_an_earlier_life(self, data: st.DataObject, how: str) -> None:
        """A claim on an id's earlier life must be refused, whatever its token says."""
        claim = data.draw(st.sampled_from(self.old_lives))
        if how == "extend":
            assert self.queue.extend_lease(claim)[claim.task_id] == "lost", claim
        else:
            with pytest.raises(LeaseLostError):
                if how == "finish":
                    self.queue.finish(claim, result="stale")
                elif how == "fail":
                    self.queue.fail(claim, "stale")
                else:
                    self.queue.requeue(claim)
        self.count("settle an earlier life")

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def push_duplicate(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(self.ids))
        state = self.record(task_id).get("state")
        if state is None or TaskState(state) not in ACTIVE_STATES:
            return
        with pytest.raises(DuplicateTaskError):
            self.queue.push(Task.create("a", task_id=task_id))
        self.count("push duplicate")

    def ended_ids(self) -> list[str]:
        """Ended tasks whose id may be pushed again (not those of a run)."""
        return [
            i
            for i in self.ids
            if i not in self.run_of
            and (s := self.record(i).get("state"))
            and TaskState(s) in TERMINAL_STATES
        ]

    # --- runs ------------------------------------------------------------------------

    @precondition(lambda self: len(self.runs) < 4)
    @rule(user=st.sampled_from(USERS), of_dag=st.booleans(), data=st.data())
    def make_run(self, user: str, of_dag: bool, data: st.DataObject) -> None:
        """A run of two to four tasks, each depending on some of the ones before it."""
        run_id = f"r{len(self.runs)}"
        size = data.draw(st.integers(2, 4))
        names = [f"n{i}" for i in range(size)]
        tasks: list[Task] = []
        graph: dict[str, list[str]] = {}
        for i, name in enumerate(names):
            ups = (
                data.draw(st.lists(st.sampled_from(names[:i]), max_size=2, unique=True))
                if i
                else []
            )
            task_id = f"{run_id}:{name}"
            graph[task_id] = [f"{run_id}:{u}" for u in ups]
            tasks.append(
                Task.create(
                    user,
                    data.draw(st.integers(1, 6)),
                    task_id=task_id,
                    run_id=run_id,
                    name=name,
                    depends_on=graph[task_id],
                    trigger_rule=data.draw(st.sampled_from(RULES)),
                    max_retries=data.draw(st.integers(0, 1)),
                    retry_delay_seconds=0,
                )
            )
        if of_dag:
            self.queue.enqueue_tasks(tasks, run_id, dag_id=DAG, max_active_runs=1)
        else:
            self.queue.enqueue_tasks(tasks, run_id)
        self.runs[run_id] = graph
        for task_id in graph:
            self.run_of[task_id] = run_id
            self.ids.append(task_id)
        self.count("make run of a dag" if of_dag else "make run")

    def expected_clear(
        self, run_id: str, names: list[str] | None, downstream: bool
    ) -> tuple[set[str], str | None]:
        """The task ids a clear should put back, and why it must be refused (or None)."""
        graph = self.runs[run_id]
        records = {i: self.record(i) for i in graph}
        if names is None:
            chosen = {
                i
                for i, r in records.items()
                if r.get("state") == "failed"
                or (r.get("state") == "canceled" and '"UpstreamFailed"' in r.get("error", ""))
            }
        else:
            chosen = {f"{run_id}:{n}" for n in names}
        # A deleted task has no edges left: it, and what only it leads to, is not reached.
        edges = {d: set(ups) for d, ups in graph.items() if records[d]}
        while downstream and (more := {d for d, ups in edges.items() if ups & chosen} - chosen):
            chosen |= more
        if not chosen:
            return chosen, "nothing to clear"
        for i in chosen:
            state = records[i].get("state")
            if state is None:
                return chosen, "is gone"
            if state not in CLEARABLE:
                return chosen, f"is {state}"
            if not all(records[up] for up in graph[i]):  # clear.lua relinks to each
                return chosen, "upstream gone"
        if self.redis.hget(self.keys.run(run_id), "held") is not None:
            return chosen, "held"
        return chosen, None

    def snapshot(self, run_id: str) -> tuple[Any, ...]:
        registries = {s: self.redis.zrange(self.keys.state(s), 0, -1) for s in TaskState}
        index = self.redis.hgetall(self.keys.queued_seconds)
        tasks = {i: self.record(i) for i in self.runs[run_id]}
        stats = self.redis.hgetall(self.keys.stats)
        return registries, index, stats, self.record_of_run(run_id), tasks

    def record_of_run(self, run_id: str) -> dict[str, str]:
        raw = self.redis.hgetall(self.keys.run(run_id))
        return {_text(k): _text(v) for k, v in raw.items()}

    @precondition(lambda self: self.runs)
    @rule(data=st.data(), downstream=st.booleans(), named=st.booleans())
    def clear(self, data: st.DataObject, downstream: bool, named: bool) -> None:
        run_id = data.draw(st.sampled_from(sorted(self.runs)))
        all_names = sorted(i.split(":", 1)[1] for i in self.runs[run_id])
        names = (
            data.draw(st.lists(st.sampled_from(all_names), min_size=1, max_size=2, unique=True))
            if named
            else None
        )
        chosen, refusal = self.expected_clear(run_id, names, downstream)
        before = self.snapshot(run_id)
        try:
            self.queue.clear_run(run_id, tasks=names, downstream=downstream)
        except ClearError as error:
            assert refusal is not None, f"clear {run_id} {names} refused: {error}"
            assert self.snapshot(run_id) == before, f"refused clear of {run_id} wrote"
            self.count(f"clear refused ({refusal})")
            return
        assert refusal is None, f"clear {run_id} {names} accepted though {refusal}"
        for task_id in self.runs[run_id]:
            state = self.record(task_id).get("state")
            if task_id in chosen:
                assert state in ("deferred", "queued", "scheduled", "canceled"), (task_id, state)
            else:
                assert state == before[4][task_id].get("state"), (task_id, state)
        self.count("clear named" if named else "clear failed")

    # --- consuming -------------------------------------------------------------------

    @rule(n=st.integers(1, 3))
    def pop(self, n: int) -> None:
        for claim in self.queue.pop_many(n):
            assert claim.state is TaskState.STARTED, claim
            assert self.holds(claim), claim
            self.claims[claim.task_id] = claim
            self.count("pop")

    @rule()
    def pop_one(self) -> None:
        """A second way to pop, so that the rules a run leaves out rarely include both."""
        self.pop(1)

    def draw_claim(self, data: st.DataObject) -> TaskRecord:
        """A claim still held three times in four (when there is one), else any claim."""
        held = sorted(i for i, c in self.claims.items() if self.holds(c))
        stale = data.draw(st.integers(0, 3)) == 0
        return self.claims[
            data.draw(st.sampled_from(held if held and not stale else sorted(self.claims)))
        ]

    def settle(self, what: str, data: st.DataObject, act: Any) -> None:
        """Run ``act(claim)`` on a claim drawn at random; it must succeed exactly when
        the claim is still held, else raise LeaseLostError."""
        claim = self.draw_claim(data)
        if self.holds(claim):
            act(claim)
            self.count(what)
        else:
            with pytest.raises(LeaseLostError):
                act(claim)
            self.count(f"{what} refused (stale claim)")

    @precondition(lambda self: self.claims)
    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        self.settle("finish", data, lambda c: self.queue.finish(c, result=c.task_id))

    @precondition(lambda self: self.claims)
    @rule(data=st.data(), retryable=st.booleans())
    def fail(self, data: st.DataObject, retryable: bool) -> None:
        self.settle("fail", data, lambda c: self.queue.fail(c, "boom", retryable=retryable))

    @precondition(lambda self: self.claims)
    @rule(data=st.data())
    def requeue(self, data: st.DataObject) -> None:
        self.settle("requeue", data, self.queue.requeue)

    @precondition(lambda self: self.claims)
    @rule(data=st.data())
    def reclaim(self, data: st.DataObject) -> None:
        """Cut a held lease to 1 ms (extend_lease), let it run out, reclaim it."""
        claim = self.draw_claim(data)
        held = self.holds(claim)
        verdict = self.queue.extend_lease(claim, 0.001)[claim.task_id]
        assert (verdict != "lost") == held, (verdict, held)
        if not held:
            return
        time.sleep(0.003)
        requeued, failed = self.queue.reclaim_expired()
        assert requeued + failed == 1, (requeued, failed)
        state = self.record(claim.task_id)["state"]
        assert state in ("queued", "failed", "canceled"), state
        self.count("reclaim")

    @rule()
    def promote(self) -> None:
        if self.queue.promote_due():
            self.count("promote")

    # --- managing --------------------------------------------------------------------

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(self.ids))
        state = self.record(task_id).get("state")
        if state is None:
            with pytest.raises(TaskNotFoundError):
                self.queue.cancel(task_id)
        elif TaskState(state) in TERMINAL_STATES:
            with pytest.raises(InvalidStateError):
                self.queue.cancel(task_id)
        else:
            expected = "requested" if state == "started" else "canceled"
            assert self.queue.cancel(task_id) == expected
        self.count("cancel")

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(self.ids))
        state = self.record(task_id).get("state")
        if state is None:
            with pytest.raises(TaskNotFoundError):
                self.queue.delete_task(task_id)
        else:
            assert self.queue.delete_task(task_id) == TaskState(state)
        self.count("delete")

    # --- invariants ------------------------------------------------------------------

    @invariant()
    def registries_match_records(self) -> None:
        self.count("checks")
        registries = {
            s: {_text(m) for m in self.redis.zrange(self.keys.state(s), 0, -1)}
            for s in TaskState
            if s is not TaskState.QUEUED
        }
        assert not self.redis.exists(self.keys.state(TaskState.QUEUED)), "queued before the index"
        places = Counter(m for members in registries.values() for m in members)
        assert all(n == 1 for n in places.values()), f"in several registries: {places}"
        records = {i: self.record(i) for i in set(self.ids) | set(places)}
        queued = {i for i, rec in records.items() if rec.get("state") == "queued"}
        self.check_queued_index(queued, records)
        registries[TaskState.QUEUED] = queued  # the users' queues must hold them (check_user)
        for task_id, rec in records.items():
            registry = [s.value for s, members in registries.items() if task_id in members]
            if not rec:
                assert not registry, f"{task_id} has no record but is in {registry}"
                continue
            assert registry == [rec["state"]], f"{task_id} is {rec['state']}, in {registry}"
        for user in USERS:
            self.check_user(user, registries, records)
        self.check_dependencies(registries, records)
        self.check_runs()

    def check_queued_index(self, queued: set[str], records: dict[str, dict[str, str]]) -> None:
        """The queued index counts the queued tasks per second of their order stamp, and
        its seconds are scored by the earliest stamp (ms) that entered them, at most."""
        stamps = [int(records[i]["order"]) for i in queued]
        per_second = Counter(str(stamp // 1_000_000) for stamp in stamps)
        index = {_text(k): int(v) for k, v in self.redis.hgetall(self.keys.queued_seconds).items()}
        assert index.pop("all", 0) == len(queued), (index, sorted(queued))
        assert index == dict(per_second), (index, per_second)
        since = {
            _text(m): s
            for m, s in self.redis.zrange(self.keys.queued_since, 0, -1, withscores=True)
        }
        assert set(since) == set(per_second), (since, per_second)
        for second, score in since.items():
            earliest = min(stamp // 1000 for stamp in stamps if stamp // 1_000_000 == int(second))
            assert int(second) * 1000 <= score <= earliest, (second, score, earliest)

    def check_runs(self) -> None:
        slots = {_text(m) for m in self.redis.smembers(self.keys.run_slots(DAG))}
        waiting = {_text(m) for m in self.redis.zrange(self.keys.queued_runs(DAG), 0, -1)}
        for run_id, graph in self.runs.items():
            run = self.record_of_run(run_id)
            states = [self.record(i).get("state") for i in graph]
            active = sum(1 for s in states if s and TaskState(s) in ACTIVE_STATES)
            count = int(run["active_tasks"])
            assert count == active, f"{run_id}: active_tasks {count}, tasks {states}"
            held = run.get("held") == "1"
            if held:
                ready = [s for s in states if s in ("queued", "scheduled", "started")]
                assert not ready, f"held {run_id} has tasks {states}"
            if run.get("dag_id") != DAG:
                continue
            key = self.keys.run(run_id)
            assert (key in waiting) == (held and active > 0), (run_id, held, states, waiting)
            assert (key in slots) == (not held and active > 0), (run_id, held, states, slots)

    def check_user(
        self,
        user: str,
        registries: dict[TaskState, set[str]],
        records: dict[str, dict[str, str]],
    ) -> None:
        critical, normal = self.keys.user_queues(user)
        in_list = [_text(m) for m in self.redis.lrange(critical, 0, -1)]
        in_set = [_text(m) for m in self.redis.zrange(normal, 0, -1)]
        queued = {i for i in registries[TaskState.QUEUED] if records[i]["user_id"] == user}
        assert len(set(in_list)) == len(in_list), f"{user}: twice in the list: {in_list}"
        assert set(in_list) | set(in_set) == queued, (user, in_list, in_set, queued)
        assert not set(in_list) & set(in_set), (user, in_list, in_set)
        priority = {i: records[i].get("priority", "3") for i in queued}  # missing: NORMAL
        by_priority = Counter(priority.values())
        assert all(priority[i] == "6" for i in in_list), in_list
        stats = {_text(k): int(v) for k, v in self.redis.hgetall(self.keys.stats).items()}
        for p in range(1, 7):
            got = stats.get(f"p{p} {user}", 0)
            assert got == by_priority[str(p)], f"p{p} {user}: counter {got}, {by_priority}"
        for state, members in registries.items():
            have = sum(1 for i in members if records[i]["user_id"] == user)
            counter = stats.get(f"{state.value} {user}", 0)
            if state in ACTIVE_STATES:
                assert counter == have, f"{state.value} {user}: counter {counter}, {have} tasks"
            else:
                assert counter >= have, f"{state.value} {user}: counter {counter} < {have}"
        active = self.redis.zscore(self.keys.active_users, user) is not None
        assert active == bool(queued), f"{user}: active {active}, ready tasks {queued}"

    def check_dependencies(
        self, registries: dict[TaskState, set[str]], records: dict[str, dict[str, str]]
    ) -> None:
        def active(task_id: str) -> bool:
            state = records.get(task_id) or self.record(task_id)
            return bool(state) and TaskState(state["state"]) in ACTIVE_STATES

        deferred = registries[TaskState.DEFERRED]
        for task_id in deferred:
            blocked = {_text(m) for m in self.redis.smembers(self.keys.deps_blocked(task_id))}
            rec = records.get(task_id) or self.record(task_id)
            held = "run_key" in rec and self.redis.hget(rec["run_key"], "held") is not None
            assert blocked or held, f"deferred {task_id} is blocked by nothing (nor held)"
            counted = sum(int(rec.get(f"deps_{s}", 0)) for s in ("finished", "failed", "canceled"))
            total = int(rec.get("deps_total", 0))
            assert counted + len(blocked) == total, (
                f"deferred {task_id}: {counted} upstreams ended + {sorted(blocked)} waited "
                f"on, of {total}: released by a task it does not depend on?"
            )
            for up in blocked:
                assert active(up), f"deferred {task_id} waits on {up}, which ended"
                waiting = {_text(m) for m in self.redis.smembers(self.keys.deps_waiting(up))}
                assert task_id in waiting, f"{up} does not list its dependent {task_id}"
        for task_id, rec in records.items():
            if task_id not in deferred:
                assert not self.redis.exists(self.keys.deps_blocked(task_id)), (task_id, rec)
            waiting = {_text(m) for m in self.redis.smembers(self.keys.deps_waiting(task_id))}
            if not active(task_id):
                assert not waiting, f"{task_id} ended with dependents waiting: {waiting}"
            for dependent in waiting:
                blocked = {_text(m) for m in self.redis.smembers(self.keys.deps_blocked(dependent))}
                assert dependent in deferred and task_id in blocked, (
                    f"{task_id} lists {dependent} as waiting, which does not wait on it"
                )


@pytest.mark.timeout(budget(120))
def test_random_interleavings_keep_the_registries_consistent(
    make_queue: QueueFactory, figures: Figures
) -> None:
    run_model(QueueModel, make_queue, figures)


class FencedLivesModel(QueueModel):
    """The same model, also settling claims on the earlier life of a reused id (and
    reusing the ids of claimed tasks that ended more often, to get there)."""

    fence_lives = True

    def claimed_and_ended(self) -> list[str]:
        ended = set(self.ended_ids())
        return sorted(i for i in self.claims if i in ended)

    @precondition(lambda self: self.claimed_and_ended())
    @rule(data=st.data())
    def push_a_claimed_id_again(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(self.claimed_and_ended()))
        self.queue.push(Task.create(self.claims[task_id].user_id, 6, task_id=task_id))
        self.retire(task_id)
        self.count("push a claimed id again")
        if data.draw(st.booleans()):  # and claim the new life at once, sometimes
            self.pop(50)


@pytest.mark.timeout(budget(120))
def test_a_claim_on_an_earlier_life_of_a_reused_id_is_refused(
    make_queue: QueueFactory, figures: Figures
) -> None:
    run_model(FencedLivesModel, make_queue, figures)


class SteppedModel(QueueModel):
    """The same model with a step size of 2: a run of more than two tasks is written in
    steps (staged, committed, opened one task per call) and an end tells one dependent
    per call. The work left over is carried on one step at a time (``continue_steps``,
    as workers do) as one more random operation, so the others also come between two
    steps of a release, an opening or a held run's start; the invariants are read when
    no step is pending."""

    @rule()
    def carry_on_one_step(self) -> None:
        self.queue.continue_steps()
        self.count("carry on one step")

    @rule()
    def carry_on_every_step(self) -> None:
        while self.queue.continue_steps():
            pass
        self.count("carry on every step")

    @invariant()
    def registries_match_records(self) -> None:
        if self.redis.llen(self.keys.pending_steps):
            self.count("checks put off (steps pending)")
            return
        super().registries_match_records()


@pytest.mark.timeout(budget(120))
def test_random_interleavings_in_small_steps_keep_the_registries_consistent(
    make_queue: QueueFactory, figures: Figures
) -> None:
    run_model(SteppedModel, make_queue, figures, step_size=2)


def run_model(
    model: type[QueueModel], make_queue: QueueFactory, figures: Figures, **config: Any
) -> None:
    started = time.monotonic()
    model.queue = make_queue(worker_id="model", max_recoveries=2, **config)
    model.tally = Counter()
    try:
        run_state_machine_as_test(
            model,
            settings=settings(
                max_examples=MAX_EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
                phases=list(Phase) if SHRINK else [p for p in Phase if p is not Phase.shrink],
                report_multiple_bugs=False,
            ),
        )
    finally:
        tally = model.tally
        figures(
            examples=tally.pop("examples", 0),
            invariant_checks=tally.pop("checks", 0),
            seconds=time.monotonic() - started,
            **{
                k.replace(" ", "_").replace("(", "").replace(")", ""): v
                for k, v in sorted(tally.items())
            },
        )
