"""A DAG's scheduled run compiled once per DAG version and reused for every tick.

Compiling a run (conf merged, templates rendered, every task copied and checked, the
push arguments encoded) costs milliseconds; a scheduler firing 1,000 DAGs at one tick
cannot pay it 1,000 times. :class:`RunTemplate` compiles the run of a stand-in tick once,
exactly as :func:`fairque.dag.runs.trigger` would (the same records, run fields and
snapshot), and stores push.lua's arguments for it in Redis once per version
(``fq:dags:template:{dag_id}``). Each tick's run is then one small fire.lua call that
names the stand-in texts (run id, dates, tick) and this run's: the script swaps them
into the stored arguments and does what push.lua does, so creating a run costs the
client almost nothing. A DAG whose task arguments hold Jinja templates is compiled for
every tick (a template may render the run id or the dates in any form).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from fairque.dag import templates
from fairque.dag.model import DAG
from fairque.dag.runs import dag_snapshot, scheduled_run_id
from fairque.queue.calls import PipelineCall, PushPlan, ScriptCall
from fairque.queue.firing import dag_key
from fairque.queue.runs import RunEnd, run_fields
from fairque.queue.scripts import script_source
from fairque.queue.sync_queue import TaskQueue

# Stand-in moments, each formatted differently from the others and from any real tick.
_TICK = datetime(1901, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
_START = datetime(1902, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
_END = datetime(1903, 4, 5, 6, 7, 8, tzinfo=timezone.utc)
_CREATED = -1234.5678  # a task's created_at (set to the client's clock per run)


_LAYOUT = hashlib.sha256(script_source("fire").encode()).hexdigest()


def _STAND_IN_ID(dag_id: str) -> str:
    return scheduled_run_id(dag_id, _TICK)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def _has_template(value: Any) -> bool:
    if templates.is_template(value):
        return True
    if isinstance(value, dict):
        return any(_has_template(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_template(v) for v in value)
    return False


@dataclass
class RunTemplate:
    """How to create one scheduled run of ``dag``, for any tick (see the module)."""

    dag: DAG
    version: str
    """The DAG's version: its file's hash (see :func:`~fairque.dag.runs.dag_snapshot`)."""
    queue: TaskQueue

    def __post_init__(self) -> None:
        self.conf = self.dag.check_conf(None)
        nodes = self.dag.pipeline.nodes.values()
        self._reuse = len(nodes) <= self.queue.config.queue.step_size and not any(
            _has_template(t.args) or _has_template(t.kwargs) for t in nodes
        )
        dag = self.dag
        watched = RunEnd(
            dag.dagrun_timeout_seconds, dag.on_failure_callback, dag.on_success_callback
        ).watched
        self._keys = self.queue.calls.run_keys(_STAND_IN_ID(dag.dag_id), dag.dag_id, watched)
        self.key = self.queue.keys.dag_template(dag.dag_id)
        self._stand_ins = (
            _STAND_IN_ID(dag.dag_id),
            _iso(_TICK),
            _iso(_START),
            _iso(_END),
            repr(_CREATED),
            repr(_TICK.timestamp()),
        )
        # What the stored template must be: this DAG version, in the arguments' layout of
        # this fairque's scripts, with this queue configuration (the defaults it writes
        # into task records).
        made_by = f"{self.version}|{_LAYOUT}|{self.queue.config.queue!r}"
        self.stored_version = hashlib.sha256(made_by.encode()).hexdigest()[:16]
        self._stored: list[str] | None = None

    @classmethod
    def of(cls, dag: DAG, queue: TaskQueue, known: RunTemplate | None = None) -> RunTemplate:
        """``known`` when it is of the same DAG version (file content), else a new one."""
        if known is not None and known.dag is dag:
            return known
        version = str(dag_snapshot(dag)["version"])
        if known is not None and known.version == version and known.dag.dag_id == dag.dag_id:
            known.dag = dag  # the same file loaded again: known from now on by identity
            return known
        return cls(dag, version, queue)

    @property
    def stored_in_redis(self) -> bool:
        """True when runs are made from the template kept in Redis (see fire.lua);
        False for a DAG compiled for every tick (its tasks use templates, or it has
        more tasks than the step size: its runs are written in steps)."""
        return self._reuse

    def call(
        self, tick: datetime, interval: tuple[datetime, datetime]
    ) -> ScriptCall[Any] | PushPlan:
        """What creates the run of ``tick`` (once: see push.lua): fire.lua with this
        run's ids and dates (it replies None when Redis lacks this version of the
        template: :meth:`store` it), or a push of a run compiled for this tick: a call,
        or for a run larger than the step size a plan to write in steps."""
        run_id = scheduled_run_id(self.dag.dag_id, tick)
        if not self._reuse:
            plan = self._plan(run_id, tick, interval, time.time())
            if plan.weight() > self.queue.config.queue.step_size:
                return plan
            return self.queue.calls.push_planned(plan)
        news = (
            run_id,
            _iso(tick),
            _iso(interval[0]),
            _iso(interval[1]),
            repr(time.time()),
            repr(tick.timestamp()),
        )
        swaps = list(zip(self._stand_ins, news, strict=True))
        keys = [key.replace(self._stand_ins[0], run_id) for key in self._keys]
        return self.queue.calls.fire([*keys, self.key], self.stored_version, swaps)

    def store(self) -> PipelineCall[None]:
        """Store the template in Redis (replacing any other version); compiles the DAG's
        run for a stand-in tick the first time."""
        if self._stored is None:
            plan = self._plan(_STAND_IN_ID(self.dag.dag_id), _TICK, (_START, _END), _CREATED)
            stand_in = self.queue.calls.push_planned(plan)
            self._stored = [str(arg) for arg in self.queue.calls.own_part(stand_in)[1]]
        positions = " ".join(
            str(i)
            for i, arg in enumerate(self._stored, start=1)
            if any(old in arg for old in self._stand_ins)
        )
        commands: list[tuple[Any, ...]] = [
            ("DEL", self.key),
            ("RPUSH", self.key, self.stored_version, positions, *self._stored),
        ]
        return PipelineCall(commands, lambda _: None, atomic=True)

    def _plan(
        self,
        run_id: str,
        tick: datetime,
        interval: tuple[datetime, datetime],
        created: float,
    ) -> PushPlan:
        dag = self.dag
        tasks = [
            replace(t, created_at=created)
            for t in dag.compile(
                run_id,
                user_id=dag.tenant,
                conf=self.conf,
                logical_date=tick,
                data_interval=interval,
            )
        ]
        fields = run_fields(
            {t.label: t.task_id for t in tasks},
            dag_id=dag.dag_id,
            logical_date=_iso(tick),
            conf=self.conf,
            tenant=dag.tenant,
            tick=(dag_key(dag.dag_id), tick.timestamp()),
            on_end=RunEnd(
                dag.dagrun_timeout_seconds, dag.on_failure_callback, dag.on_success_callback
            ),
            dag_snapshot=dag_snapshot(dag),
        )
        return self.queue.calls.plan_push(
            tasks, (run_id, dag.dag_id, fields), dag.max_active_runs, dag.max_active_tasks
        )
