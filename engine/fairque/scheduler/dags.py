"""The scheduled DAGs of a folder and how they fire: from a due index, in batches, by
any number of schedulers at once.

Each scheduler loads the folder (again when a file changes, noticed by ``stat``) and
keeps the due index (``fq:dags:due``, see :mod:`fairque.queue.firing`) in step with it:
a DAG added or whose schedule changed is due at once (its next fire time is computed
when it is handled), a DAG whose file was removed leaves the index. A pass claims the
DAGs due now in batches (``claim_due.lua``: each DAG is claimed by one scheduler, for a
lease of ``lock_ttl_seconds``) and, per batch, reads their cursors and the paused DAGs in
one round trip, creates every due run in one pipeline of push calls (each run compiled
once per DAG version: :mod:`fairque.scheduler.runs`), then moves the cursors and sets
each DAG's next due time in another. A pass costs what is due: when nothing is, it is
one claim call whatever the number of DAGs.

Exactly once: a tick's run id is fixed (``{dag_id}__{tick}``) and push.lua creates a run
id once (and refuses a tick its cursor passed), so two schedulers that both handle a DAG
(a lease that ran out under a slow pass) still create each run once. A scheduler that
dies holding claims loses them when the lease ends; one stopped by SIGTERM gives its
unhandled claims back at once. All schedulers must read the same DAG folder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fairque.core.errors import FairQueueError, RedisUnavailableError, RunExistsError
from fairque.dag.loader import dags_folder, load_dags
from fairque.dag.model import DAG
from fairque.dag.runs import scheduled_run_id
from fairque.queue import firing
from fairque.queue.calls import PushPlan, ScriptCall
from fairque.queue.firing import DagStates, dag_key
from fairque.scheduler.backfill import in_range, intervals
from fairque.scheduler.cron import check_timezone, fire_times, latest_fire, next_fire
from fairque.scheduler.runs import RunTemplate

if TYPE_CHECKING:
    from fairque.scheduler.scheduler import TaskScheduler

logger = logging.getLogger(__name__)

RELOAD_SECONDS = 2.0
WARM_CHUNK = 50
WARM_SECONDS = 1.0
"""How long an idle pass may spend compiling run templates ahead of the ticks..."""
WARM_MARGIN = 0.5
"""...stopping this long before the next DAG is due."""
RETRY_SECONDS = 1.0
"""A DAG that failed, or waits for a free ``max_active_runs`` slot, is due again after this."""


def spec_text(dag: DAG) -> str:
    """What a DAG's due time depends on (a change makes it due at once to be recomputed)."""
    return json.dumps(
        [
            dag.schedule,
            dag.timezone,
            dag.catchup,
            dag.start_date.isoformat() if dag.start_date else None,
            dag.end_date.isoformat() if dag.end_date else None,
        ]
    )


class DagSource:
    """The DAGs with a ``schedule`` in a folder, reloaded when a file changes."""

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = dags_folder(folder)
        self.dags: dict[str, DAG] = {}
        self._stamp: tuple[tuple[str, float, int], ...] = ()
        self._checked = 0.0
        self._synced: dict[str, DAG] | None = None  # the ``dags`` the index was synced with
        self._indexed: dict[str, str] = {}
        self._templates: dict[str, RunTemplate] = {}
        self.by_id: dict[str, DAG] = {}  # the DAGs by their ``dag_id`` as last synced
        self._cold: list[str] = []  # DAGs whose run template is not compiled yet
        self.in_flight: dict[str, float] = {}  # the batch being fired: id -> due time it had
        self.lags: list[tuple[str, float]] = []
        """(DAG id, seconds late) of each run the latest :meth:`fire_due` created."""
        self.reload()

    def reload(self) -> None:
        """Load the folder again if any file was added, removed or changed."""
        stamp = tuple(
            sorted(
                (str(p), st.st_mtime, st.st_size)
                for p in self.folder.glob("*")
                if p.is_file() and (st := p.stat())
            )
        )
        if stamp == self._stamp:
            return
        self._stamp = stamp
        bag = load_dags(self.folder, cache=True)  # parses only the changed files
        for problem in bag.problems:
            logger.warning("DAG file problem: %s", problem)
        self.dags = {i: d for i, d in bag.dags.items() if d.schedule}
        logger.info("%d scheduled DAG(s) in %s", len(self.dags), self.folder)
        logger.debug("scheduled DAGs: %s", ", ".join(sorted(self.dags)) or "none")

    def fire_due(self, scheduler: TaskScheduler, now: datetime) -> list[str]:
        """Create the due runs of the DAGs due at ``now``; returns their run ids. Each
        DAG fires on its own: one that fails is recorded in ``scheduler.failures`` and
        tried again after RETRY_SECONDS. Stops between batches when the scheduler is
        asked to stop."""
        if time.monotonic() - self._checked > RELOAD_SECONDS:
            self._checked = time.monotonic()
            try:
                self.reload()
            except OSError as e:  # e.g. a file removed while listed: keep the DAGs as they were
                logger.warning("cannot read the DAG folder %s: %s", self.folder, e)
        if self.dags is not self._synced:
            self._sync_index(scheduler, now.timestamp())
        fired: list[str] = []
        self.lags = []
        queue = scheduler.queue
        while not scheduler.stopping:
            limit = scheduler.batch_size
            claim = queue.calls.claim_due(now.timestamp(), scheduler.lock_ttl_seconds, limit)
            got: list[tuple[str, float]] = queue.run_script(claim)
            self.in_flight = dict(got)
            claimed = list(self.in_flight)
            if not claimed:
                break
            batch = Batch(self, scheduler, now, claimed)
            fired += batch.fire()
            self.in_flight = {}
            self.lags += batch.lags
            if len(claimed) < limit:
                break
        if not fired and self._cold:  # idle: compile ahead, until shortly before the next tick
            due = queue.run_pipeline(firing.next_due(queue.keys))
            room = (due if due is not None else float("inf")) - now.timestamp() - WARM_MARGIN
            self._warm(scheduler, min(WARM_SECONDS, room))
        return fired

    @property
    def all_compiled(self) -> bool:
        """True once every DAG's run template is compiled (and stored)."""
        return not self._cold

    def _warm(self, scheduler: TaskScheduler, seconds: float) -> None:
        """Store the run templates Redis lacks (compiling them), for at most ``seconds``:
        an idle pass does it, so a tick seldom waits for a compile."""
        deadline = time.monotonic() + seconds
        queue = scheduler.queue
        while self._cold and time.monotonic() < deadline and not scheduler.stopping:
            chunk = [self._cold.pop() for _ in range(min(WARM_CHUNK, len(self._cold)))]
            found = []
            for dag_id in chunk:
                dag = self.by_id.get(dag_id)
                with contextlib.suppress(Exception):  # a bad DAG is reported when it fires
                    if (
                        dag is not None
                        and (template := self.template(dag, scheduler)).stored_in_redis
                    ):
                        found.append(template)
            versions = queue.run_pipeline(firing.template_versions([t.key for t in found]))
            for template, version in zip(found, versions, strict=True):
                if version != template.stored_version and time.monotonic() < deadline:
                    with contextlib.suppress(Exception):
                        queue.run_pipeline(template.store())
                elif version != template.stored_version:
                    self._cold.append(template.dag.dag_id)

    def _sync_index(self, scheduler: TaskScheduler, now: float) -> None:
        """Bring the due index in step with the folder: changed or new DAGs due now,
        removed ones out (and, on the first sync, any indexed DAG the folder lacks)."""
        queue = scheduler.queue
        self.by_id = {dag.dag_id: dag for dag in self.dags.values()}
        specs = {dag_id: spec_text(dag) for dag_id, dag in self.by_id.items()}
        first = self._synced is None
        stored = queue.run_pipeline(firing.due_specs(queue.keys))
        put = {i: (s, now) for i, s in specs.items() if stored.get(i) != s}
        known = stored.keys() if first else self._indexed.keys()
        drop = [i for i in known if i not in specs]
        if put or drop:
            queue.run_pipeline(firing.index_dags(queue.keys, put, drop))
            logger.info("due index: %d DAG(s) added or changed, %d removed", len(put), len(drop))
        scheduler.failures.forget(dag_key(i) for i in drop)
        for dag_id in drop:
            self._templates.pop(dag_id, None)
        self._indexed = specs
        self._synced = self.dags
        self._cold = sorted(specs, reverse=True)

    def template(self, dag: DAG, scheduler: TaskScheduler) -> RunTemplate:
        """The DAG's run template, compiled once per DAG version."""
        found = RunTemplate.of(dag, scheduler.queue, self._templates.get(dag.dag_id))
        self._templates[dag.dag_id] = found
        return found


class Batch:
    """One batch of claimed DAGs: plan each one's ticks, create the runs, move on."""

    def __init__(
        self, source: DagSource, scheduler: TaskScheduler, now: datetime, dag_ids: list[str]
    ) -> None:
        self.source = source
        self.scheduler = scheduler
        self.now = now
        self.dag_ids = dag_ids
        self.handled: dict[str, float] = {}  # cursor moves (DAG id -> last tick handled)
        self.due: dict[str, float] = {}  # next due times
        self.pushes: list[tuple[str, datetime, ScriptCall[Any] | PushPlan]] = []
        self.lags: list[tuple[str, float]] = []
        self.errors: dict[str, Exception] = {}  # DAGs whose run template does not compile

    def fire(self) -> list[str]:
        queue = self.scheduler.queue
        states = queue.run_pipeline(firing.dag_states(queue.keys, self.dag_ids))
        ready: dict[str, list[datetime]] = {}
        for dag_id in self.dag_ids:
            dag = self.source.by_id.get(dag_id)
            if dag is None:  # not in this scheduler's folder (yet): leave it to a reload
                self.due[dag_id] = self.now.timestamp() + RETRY_SECONDS
                continue
            ticks = self._attempt(dag_id, partial(self._ticks, dag, states))
            if ticks:
                ready[dag_id] = ticks
        self._plan_runs(ready)
        fired = self._push()
        self._finish()
        return fired

    def _attempt(self, dag_id: str, action: partial[list[datetime]]) -> list[datetime]:
        failures = self.scheduler.failures
        try:
            return action()
        except RedisUnavailableError:
            raise
        except Exception as e:
            failures.record(dag_key(dag_id), e)
        self.due[dag_id] = self.now.timestamp() + RETRY_SECONDS
        return []

    def _ticks(self, dag: DAG, states: DagStates) -> list[datetime]:
        """The DAG's ticks to fire now; the ones it skips (paused, outside its dates)
        and a first sighting move its cursor at once."""
        assert dag.schedule is not None
        now = self.now
        zone = check_timezone(dag.timezone)
        cursor = states.cursors.get(dag.dag_id)
        ticks: list[datetime] = []
        if cursor is None:  # first seen: nothing before now fires
            self.handled[dag.dag_id] = now.timestamp()
        else:
            after = datetime.fromtimestamp(cursor, tz=timezone.utc)
            if dag.catchup:
                limit = self.scheduler.catchup_limit
                ticks = fire_times(dag.schedule, zone, after, now, limit=limit)
            else:
                latest = latest_fire(dag.schedule, zone, after, now)
                ticks = [] if latest is None else [latest]
        paused = dag.dag_id in states.paused
        skipped = [t for t in ticks if paused or not in_range(dag, t)]
        if skipped:
            self.handled[dag.dag_id] = skipped[-1].timestamp()
        ticks = [t for t in ticks if t not in skipped]
        last = datetime.fromtimestamp(cursor or 0, timezone.utc)
        following = ticks[-1] if ticks else max(now, last)
        self.due[dag.dag_id] = next_fire(dag.schedule, zone, following).timestamp()
        if len(ticks) >= self.scheduler.catchup_limit:  # more missed ticks wait: come back now
            self.due[dag.dag_id] = now.timestamp()
        return ticks

    def _plan_runs(self, ready: dict[str, list[datetime]]) -> None:
        """The push calls of the ready ticks, within each DAG's max_active_runs."""
        if not ready:
            return
        room = self._room(ready)
        for dag_id, ticks in ready.items():
            dag = self.source.by_id[dag_id]
            chosen = ticks[: max(room[dag_id], 0)]
            if len(chosen) < len(ticks):  # no free slot: try again soon
                self.due[dag_id] = self.now.timestamp() + RETRY_SECONDS
            if not chosen:
                self.scheduler.failures.succeeded(dag_key(dag_id))
                continue
            try:
                template = self.source.template(dag, self.scheduler)
                calls = [(dag_id, i[1], template.call(i[1], i)) for i in intervals(dag, chosen)]
            except Exception as e:  # a compile error (ids too long, a bad conf...)
                self.scheduler.failures.record(dag_key(dag_id), e)
                self.due[dag_id] = self.now.timestamp() + RETRY_SECONDS
                continue
            self.pushes += calls

    def _room(self, ready: dict[str, list[datetime]]) -> dict[str, int]:
        """Free max_active_runs slots per DAG: its limit less the runs holding a slot
        (with unended tasks) and the runs waiting for one."""
        queue = self.scheduler.queue
        holders = queue.run_pipeline(firing.slot_holders(queue.keys, list(ready)))
        run_keys = [  # only where the slots held might leave too little room
            k
            for dag_id, (members, waiting) in holders.items()
            if self.source.by_id[dag_id].max_active_runs - waiting - len(members)
            < len(ready[dag_id])
            for k in members
        ]
        active = queue.run_pipeline(firing.active_task_counts(run_keys)) if run_keys else {}
        return {
            dag_id: self.source.by_id[dag_id].max_active_runs
            - waiting
            - sum(1 for k in members if active.get(k, 1) > 0)
            for dag_id, (members, waiting) in holders.items()
        }

    def _push(self) -> list[str]:
        """Send every run of the batch in one round trip (and, for DAGs whose template
        Redis lacks, store it and send theirs again); note what each did."""
        if not self.pushes:
            return []
        replies = self._send()
        created_at = self.scheduler.clock().timestamp()
        fired: list[str] = []
        failed: set[str] = set()
        for (dag_id, tick, _), reply in zip(self.pushes, replies, strict=True):
            if dag_id in failed:
                continue
            if reply is None or (
                isinstance(reply, FairQueueError) and not isinstance(reply, RunExistsError)
            ):
                failed.add(dag_id)
                error = reply or self.errors.get(dag_id) or FairQueueError("no run template")
                self.scheduler.failures.record(dag_key(dag_id), error)
                self.due[dag_id] = self.now.timestamp() + RETRY_SECONDS
                continue
            self.handled[dag_id] = tick.timestamp()
            if not isinstance(reply, RunExistsError):
                run_id = scheduled_run_id(dag_id, tick)
                fired.append(run_id)
                self.lags.append((dag_id, max(0.0, created_at - tick.timestamp())))
                logger.debug("fired DAG %s for %s: run %s", dag_id, tick.isoformat(), run_id)
        for dag_id in {d for d, _, _ in self.pushes} - failed:
            self.scheduler.failures.succeeded(dag_key(dag_id))
        return fired

    def _send(self) -> list[Any]:
        """Each run's reply; the templates Redis lacks are stored and their runs sent again."""
        queue = self.scheduler.queue
        calls = [(i, c) for i, (_, _, c) in enumerate(self.pushes) if isinstance(c, ScriptCall)]
        replies: list[Any] = [None] * len(self.pushes)
        for (i, _), reply in zip(calls, queue.run_scripts([c for _, c in calls]), strict=True):
            replies[i] = reply
        for i, (_, _, plan) in enumerate(self.pushes):
            if isinstance(plan, PushPlan):  # a run larger than the step size: in steps
                try:
                    replies[i] = queue.push_plan(plan)
                except RedisUnavailableError:
                    raise
                except FairQueueError as e:
                    replies[i] = e
        again = [i for i, reply in enumerate(replies) if reply is None]
        for dag_id in sorted({self.pushes[i][0] for i in again}):
            template = self.source.template(self.source.by_id[dag_id], self.scheduler)
            try:
                queue.run_pipeline(template.store())
            except RedisUnavailableError:
                raise
            except Exception as e:  # it does not compile (ids too long...): this DAG fails
                self.errors[dag_id] = e
        again = [i for i in again if self.pushes[i][0] not in self.errors]
        fires = [self.pushes[i][2] for i in again]  # only fire.lua replies None
        retried = queue.run_scripts([c for c in fires if isinstance(c, ScriptCall)])
        for i, reply in zip(again, retried, strict=True):
            replies[i] = reply
        return replies

    def _finish(self) -> None:
        """Move the cursors, then set the next due times (one round trip each)."""
        queue = self.scheduler.queue
        moves = [(dag_key(d), tick) for d, tick in sorted(self.handled.items())]
        if moves:
            queue.run_script(queue.calls.advance(*moves[0], *moves[1:]))
        queue.run_pipeline(firing.set_due(queue.keys, self.due))
