"""The DAG model: a named Pipeline of task templates plus its schedule, params and tenant.

A :class:`DAG` comes from a YAML file (see :mod:`fairque.dag.loader`) or is built in a
Python DAG file with the Pipeline operators::

    DAG(dag_id="orders_etl", pipeline=extract() >> (transform() | validate()) >> load())

Construction checks everything that can be checked without running a task (ids, the
length of every task id its runs will make, cron, timezone, params, dependencies,
cycles) and raises a :class:`DagError` subclass.
:meth:`DAG.compile` turns it, plus a run's conf, into the task records of one run.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from types import MappingProxyType
from typing import Any

from fairque.core import refs
from fairque.core.cron import cron_problem as schedule_problem
from fairque.core.cron import make_croniter as make_croniter
from fairque.core.cron import timezone_problem
from fairque.core.errors import DagConfError, DagError, UnknownDependencyError
from fairque.core.graph import ancestors
from fairque.core.models import Setter, Task, task_fields, to_json, validate_identifier
from fairque.core.schemas import did_you_mean
from fairque.dag import templates
from fairque.dag.branching import branch_problems
from fairque.dag.params import NO_DEFAULT, PARAM_TYPES, TYPE_WORDS, ParamSpec, short_json
from fairque.dag.references import not_a_list_type
from fairque.dag.rules import (
    RUN_CALLBACKS,
    dependency_problems,
    param_problems,
    placeholder_problems,
    run_end_problems,
    schedule_problems,
)
from fairque.queue.runs import task_id_problem
from fairque.tasks.dataflow import bind_references
from fairque.tasks.pipeline import Pipeline, clone_task

DAG_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
_DEFAULT_ARGS = task_fields(Setter.DEFAULT_ARGS)
DEFAULT_ARG_KEYS = tuple(spec.key for spec in _DEFAULT_ARGS)
"""The keys ``default_args`` may set; each may also be set on a task (the task wins)."""


# --- the DAG -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskInfo:
    """What a DAG file says about a task beyond its record: a description, and the XCom
    keys it pushes by hand (besides ``xcom_push_key``), for lineage drawn before a run."""

    description: str = ""
    xcom_pushes: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class DAG:
    """A workflow: named task templates and their edges, with schedule, params and tenant.

    ``pipeline`` may be a single Task. ``default_args`` fill what a template leaves at
    its default (``max_retries``/``retry_delay_seconds``/``timeout_seconds`` unset,
    priority NORMAL, trigger rule all_success); ``defaults_applied=True`` says the
    templates already include them (the YAML loader merges them itself).
    """

    dag_id: str
    pipeline: Pipeline
    description: str = ""
    schedule: str | None = None
    timezone: str = "UTC"
    catchup: bool = False
    max_active_runs: int = 16
    tenant: str = "default"
    params: Mapping[str, ParamSpec] = field(default_factory=dict)
    default_args: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None
    task_info: Mapping[str, TaskInfo] = field(default_factory=dict)
    defaults_applied: bool = field(default=False, repr=False)
    dagrun_timeout_seconds: float | None = None
    on_failure_callback: str | None = None
    on_success_callback: str | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None

    def __post_init__(self) -> None:
        self._check_fields()
        pipeline = self.pipeline
        if isinstance(pipeline, Task) or hasattr(pipeline, "__fairque_pipeline__"):
            pipeline = Pipeline.of(pipeline)  # a Task, or a TaskGroup
        if not isinstance(pipeline, Pipeline):
            raise DagError(
                f"DAG {self.dag_id!r}: pipeline must be a Pipeline or a Task "
                f"(e.g. a() >> b()), not {type(pipeline).__name__}"
            )
        if not len(pipeline):
            raise DagError(f"DAG {self.dag_id!r} has no tasks")
        self._check_params(self.params)
        params = {name: ParamSpec.of(spec) for name, spec in dict(self.params).items()}
        defaults = dict(self.default_args)
        if not self.defaults_applied:
            pipeline = _apply_defaults(pipeline, defaults, self.dag_id)
        pipeline = _wire_references(pipeline, self.dag_id)
        self._check_graph(pipeline, params)
        set_ = object.__setattr__
        set_(self, "start_date", self._moment("start_date", self.start_date))
        set_(self, "end_date", self._moment("end_date", self.end_date, end=True))
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise DagError(f"DAG {self.dag_id!r}: end_date is before start_date")
        set_(self, "pipeline", pipeline)
        set_(self, "params", MappingProxyType(params))
        set_(self, "default_args", MappingProxyType(defaults))
        set_(self, "task_info", MappingProxyType(dict(self.task_info)))
        set_(self, "defaults_applied", True)

    def _check_fields(self) -> None:
        if not isinstance(self.dag_id, str) or not DAG_ID_PATTERN.match(self.dag_id):
            raise DagError(
                f"dag_id {self.dag_id!r} is invalid: use 1-200 letters, digits, '_', '.' or '-'"
            )
        problems = schedule_problems(self.schedule, self.timezone)
        if problems:
            raise DagError(f"DAG {self.dag_id!r}: {problems[0][1]}")
        if isinstance(self.max_active_runs, bool) or not isinstance(self.max_active_runs, int):
            raise DagError(f"DAG {self.dag_id!r}: max_active_runs must be an integer")
        if self.max_active_runs < 1:
            raise DagError(f"DAG {self.dag_id!r}: max_active_runs must be 1 or more")
        ends = run_end_problems(
            self.dagrun_timeout_seconds, self.on_failure_callback, self.on_success_callback
        )
        if ends:
            raise DagError(f"DAG {self.dag_id!r}: {ends[0][0]}: {ends[0][1]}")
        if not isinstance(self.catchup, bool):
            raise DagError(f"DAG {self.dag_id!r}: catchup must be true or false")
        validate_identifier(self.tenant, "user_id")

    def _moment(self, name: str, value: object, end: bool = False) -> datetime | None:
        try:
            return as_moment(value, self.timezone, end)
        except ValueError as e:
            raise DagError(f"DAG {self.dag_id!r}: {name} {e}") from None

    def _check_params(self, params: Mapping[str, Any]) -> None:
        problems = [text for _, text in param_problems(params)]
        if problems:
            raise DagError(f"DAG {self.dag_id!r}: " + "; ".join(problems))

    def _check_graph(self, pipeline: Pipeline, params: Mapping[str, ParamSpec]) -> None:
        nodes = pipeline.nodes
        for name, task in nodes.items():
            too_long = task_id_problem(self.dag_id, instance_name(name, task))
            if too_long:
                raise DagError(f"DAG {self.dag_id!r}: {too_long}")
        known = {*nodes, *(task.task_id for task in nodes.values())}
        depends_on = {name: task.depends_on for name, task in nodes.items()}
        for name, i, text in dependency_problems(depends_on, known):
            if depends_on[name][i] in known:
                raise DagError(f"DAG {self.dag_id!r}: {text}")
            raise UnknownDependencyError(name, [d for d in depends_on[name] if d not in known])
        pipeline.validate()
        for name, task in nodes.items():
            for ref in refs.references(task.expand):
                source = nodes.get(ref.task)
                declared = None if ref.path or source is None else _declared_not_list(source)
                if declared:
                    raise DagError(
                        f"DAG {self.dag_id!r}: task {name!r} maps over the return value of "
                        f"{ref.task!r}, whose function declares it returns {declared}, not a list"
                    )
        for name, task in pipeline.nodes.items():
            if task.branch:
                downstream = {b for a, b in pipeline.edges if a == name}
                for text in branch_problems(name, getattr(task, "_function", None), downstream):
                    raise DagError(f"DAG {self.dag_id!r}: {text}")
            values = {"args": task.args, "kwargs": task.kwargs}
            for _, text in placeholder_problems(name, values, params):
                raise DagError(f"DAG {self.dag_id!r}: {text}")

    # --- reading -------------------------------------------------------------------------

    @property
    def task_names(self) -> list[str]:
        """The task names in topological order (ties broken by name)."""
        return self.pipeline.order()

    def planned_lineage(self) -> list[tuple[str, str, str]]:
        """(producer, key, consumer) for every XCom key a task declares it pulls.

        The producers of a key are the tasks that push it (``xcom_push_key`` or declared
        ``xcom_pushes``) and run before the consumer; when none does, any other task
        that pushes it. Keys nobody declares pushing are left out.
        """
        pushers: dict[str, list[str]] = {}
        for name, task in self.pipeline.nodes.items():
            keys = [task.xcom_push_key, *self.task_info.get(name, TaskInfo()).xcom_pushes]
            for key in dict.fromkeys(k for k in keys if k):
                pushers.setdefault(key, []).append(name)
        lineage: list[tuple[str, str, str]] = []
        for consumer in self.task_names:
            before = ancestors(self.pipeline.edges, consumer)
            for key in self.pipeline.nodes[consumer].xcom_pulls:
                candidates = [p for p in pushers.get(key, []) if p != consumer]
                upstream = [p for p in candidates if p in before]
                lineage.extend((p, key, consumer) for p in sorted(upstream or candidates))
        return lineage

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible description of the DAG (for ``--json`` and dry runs)."""
        return {
            "dag_id": self.dag_id,
            "description": self.description,
            "schedule": self.schedule,
            "timezone": self.timezone,
            "catchup": self.catchup,
            "max_active_runs": self.max_active_runs,
            "dagrun_timeout_seconds": self.dagrun_timeout_seconds,
            "on_failure_callback": self.on_failure_callback,
            "on_success_callback": self.on_success_callback,
            "start_date": self.start_date.isoformat() if self.start_date else None,
            "end_date": self.end_date.isoformat() if self.end_date else None,
            "tenant": self.tenant,
            "params": {name: spec.to_dict() for name, spec in self.params.items()},
            "default_args": dict(self.default_args),
            "source": self.source,
            "tasks": self.task_names,
            "groups": sorted(self.pipeline.groups),
            "pipeline": self.pipeline.to_dict(),
            "planned_lineage": [list(item) for item in self.planned_lineage()],
        }

    # --- running -------------------------------------------------------------------------

    def check_conf(self, conf: Mapping[str, Any] | None) -> dict[str, Any]:
        """``conf`` merged over the params' defaults, or DagConfError listing every
        problem: unknown keys, missing required params, wrong types, values off the enum."""
        given = {} if conf is None else conf
        if not isinstance(given, Mapping):
            raise DagConfError(self.dag_id, [f"conf must be a mapping, not {short_json(given)}"])
        problems = [
            f"unknown param {key!r}{did_you_mean(str(key), self.params)}; "
            f"known: {', '.join(self.params) or 'none'}"
            for key in given
            if key not in self.params
        ]
        merged: dict[str, Any] = {}
        for name, spec in self.params.items():
            if name in given:
                problem = spec.check(given[name])
                if problem:
                    problems.append(f"param {name!r} {problem}")
                merged[name] = given[name]
            elif spec.required:
                problems.append(f"param {name!r} is required ({TYPE_WORDS.get(spec.type)})")
            else:
                merged[name] = copy.deepcopy(spec.default)
        if problems:
            raise DagConfError(self.dag_id, problems)
        return json.loads(to_json(merged, "conf"))  # type: ignore[no-any-return]

    def pipeline_for(
        self,
        conf: Mapping[str, Any] | None = None,
        *,
        run_id: str = "in-process",
        logical_date: datetime | None = None,
        data_interval: tuple[datetime, datetime] | None = None,
    ) -> Pipeline:
        """The pipeline as one run with ``conf`` executes it: conf checked (DagConfError)
        and merged over the params' defaults, every template's ``payload["conf"]`` set to
        it, and every Jinja2 template in args or kwargs (at any depth) rendered in the
        sandbox of :mod:`fairque.dag.templates` (DagError for one that fails). The
        logical date defaults to now; the data interval to the logical date. Both go to
        every template's ``payload["dates"]`` (ISO text), where
        ``current_task().logical_date`` and ``.data_interval_start``/``_end`` read them."""
        merged = self.check_conf(conf)
        start, end = data_interval if data_interval is not None else (None, None)
        context = templates.TemplateContext(
            dag_id=self.dag_id,
            run_id=run_id,
            params=merged,
            logical_date=logical_date or datetime.now(timezone.utc),
            data_interval_start=start,
            data_interval_end=end,
        )
        logical = context.logical_date
        dates = {
            "logical_date": _utc(logical),
            "data_interval_start": _utc(start or logical),
            "data_interval_end": _utc(end or logical),
        }
        nodes = {}
        for name, task in self.pipeline.nodes.items():
            try:
                args = templates.render(task.args, context, name, ("args",))
                kwargs = templates.render(task.kwargs, context, name, ("kwargs",))
            except DagError as e:
                raise DagError(f"DAG {self.dag_id!r}: {e}") from e
            nodes[name] = clone_task(
                task,
                payload={**task.payload, "conf": copy.deepcopy(merged), "dates": dict(dates)},
                args=args,
                kwargs=kwargs,
            )
        p = self.pipeline
        return Pipeline(nodes, p.edges, p.heads, p.tails, p.groups)

    def compile(
        self,
        run_id: str,
        *,
        user_id: str | None = None,
        conf: Mapping[str, Any] | None = None,
        logical_date: datetime | None = None,
        data_interval: tuple[datetime, datetime] | None = None,
    ) -> list[Task]:
        """The task records of one run, upstreams first; nothing is written anywhere.

        The conf, templates and dates are applied as in :meth:`pipeline_for` (a task
        reads them as ``current_task().conf``, ``.logical_date``...); ``task_id`` is
        ``"<run_id>:<name>"``; ``user_id`` (else the DAG's ``tenant``) is whose fair
        share the run uses.
        """
        pipeline = self.pipeline_for(
            conf, run_id=run_id, logical_date=logical_date, data_interval=data_interval
        )
        return pipeline.compile(run_id, user_id=user_id or self.tenant)


def _utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def as_moment(value: object, zone: str, end: bool = False) -> datetime | None:
    """``value`` (None, a date, a datetime or its ISO text) as an aware datetime; a naive
    time is wall time in the time zone ``zone``, and a date alone is that day's midnight
    there (with ``end``, the day's last microsecond: an end date covers its whole day).
    ValueError says what is wrong."""
    from zoneinfo import ZoneInfo

    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{short_json(value)} is not a date: use YYYY-MM-DD or an ISO date and time"
            ) from None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
        if end:
            value = value.replace(hour=23, minute=59, second=59, microsecond=999_999)
    if not isinstance(value, datetime):
        raise ValueError(f"must be a date such as 2024-01-01, not {short_json(value)}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(zone))
    return value


def placeholders(value: Any) -> list[str]:
    """The param names used as whole ``"{{ params.NAME }}"`` strings anywhere in
    ``value`` (templates in general: :func:`fairque.dag.templates.problems`)."""
    if isinstance(value, str):
        name = templates.whole_param(value)
        return [name] if name is not None else []
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [name for item in value for name in placeholders(item)]
    return []


def substitute(value: Any, params: Mapping[str, Any]) -> Any:
    """``value`` with every whole ``"{{ params.NAME }}"`` string replaced by
    ``params[NAME]`` and nothing else rendered (a run renders every template:
    :meth:`DAG.pipeline_for`)."""
    if isinstance(value, str):
        name = templates.whole_param(value)
        return copy.deepcopy(params[name]) if name is not None else value
    if isinstance(value, Mapping):
        return {k: substitute(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, params) for v in value]
    return value


def _declared_not_list(task: Task) -> str | None:
    function = getattr(task, "_function", None)  # a FunctionTask's; plain Tasks: unknown
    return None if function is None else not_a_list_type(function)


def instance_name(name: str, task: Task) -> str:
    """The longest name a task's runs give it: ``name[max_map_length - 1]`` for a mapped
    task (its instances), else ``name``."""
    return f"{name}[{task.max_map_length - 1}]" if task.expand else name


def _wire_references(pipeline: Pipeline, dag_id: str) -> Pipeline:
    """The pipeline with its return-value references wired to XCom keys (see
    :func:`fairque.tasks.dataflow.bind_references`); DagError for an unknown reference."""
    try:
        wiring = bind_references(pipeline.nodes)
    except DagError as e:
        raise DagError(f"DAG {dag_id!r}: {e}") from None
    if not wiring:
        return pipeline
    nodes = {
        name: clone_task(task, **wiring[name]) if name in wiring else task
        for name, task in pipeline.nodes.items()
    }
    return Pipeline(nodes, pipeline.edges, pipeline.heads, pipeline.tails, pipeline.groups)


def _apply_defaults(pipeline: Pipeline, defaults: Mapping[str, Any], dag_id: str) -> Pipeline:
    """The pipeline with ``defaults`` filled into every template field left at its default."""
    unknown = [key for key in defaults if key not in DEFAULT_ARG_KEYS]
    if unknown:
        raise DagError(
            f"DAG {dag_id!r}: unknown default_args key {unknown[0]!r}"
            f"{did_you_mean(unknown[0], DEFAULT_ARG_KEYS)}; known: {', '.join(DEFAULT_ARG_KEYS)}"
        )
    if not defaults:
        return pipeline
    nodes: dict[str, Task] = {}
    for name, task in pipeline.nodes.items():
        changes = {
            spec.name: defaults[spec.key]
            for spec in _DEFAULT_ARGS
            if spec.key in defaults and getattr(task, spec.name) == spec.default
        }
        nodes[name] = clone_task(task, **changes) if changes else task
    return Pipeline(nodes, pipeline.edges, pipeline.heads, pipeline.tails, pipeline.groups)


__all__ = [
    "DAG",
    "DEFAULT_ARG_KEYS",
    "NO_DEFAULT",
    "PARAM_TYPES",
    "RUN_CALLBACKS",
    "ParamSpec",
    "TaskInfo",
    "as_moment",
    "dependency_problems",
    "make_croniter",
    "param_problems",
    "placeholder_problems",
    "placeholders",
    "run_end_problems",
    "schedule_problem",
    "schedule_problems",
    "substitute",
    "timezone_problem",
]
