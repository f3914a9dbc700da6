"""DAG files: the DAG model, the ``flow`` grammar, loading and validation.

Pure Python (no Redis): ``load_dags()`` reads a folder into a :class:`DagBag`,
``validate_paths()`` lists every problem of some files, ``DAG.compile()`` turns a DAG
and a run's conf into task records. The names are imported on first use (see
``fairque.core.lazy``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fairque.core.lazy import lazy_exports

_EXPORTS = {
    "DAG": "fairque.dag.model",
    "DagBag": "fairque.dag.loader",
    "DagConfError": "fairque.core.errors",
    "DagNotFoundError": "fairque.core.errors",
    "Flow": "fairque.dag.flow",
    "FlowSyntaxError": "fairque.core.errors",
    "LoadResult": "fairque.dag.loader",
    "ParamSpec": "fairque.dag.model",
    "Problem": "fairque.dag.validate",
    "TaskInfo": "fairque.dag.model",
    "dags_folder": "fairque.dag.loader",
    "load_dag_file": "fairque.dag.loader",
    "load_dags": "fairque.dag.loader",
    "parse_flow": "fairque.dag.flow",
    "validate_dag_file": "fairque.dag.validate",
    "validate_paths": "fairque.dag.validate",
}

if TYPE_CHECKING:
    from fairque.core.errors import DagConfError, DagNotFoundError, FlowSyntaxError
    from fairque.dag.flow import Flow, parse_flow
    from fairque.dag.loader import DagBag, LoadResult, dags_folder, load_dag_file, load_dags
    from fairque.dag.model import DAG, ParamSpec, TaskInfo
    from fairque.dag.validate import Problem, validate_dag_file, validate_paths
else:
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "DAG",
    "DagBag",
    "DagConfError",
    "DagNotFoundError",
    "Flow",
    "FlowSyntaxError",
    "LoadResult",
    "ParamSpec",
    "Problem",
    "TaskInfo",
    "dags_folder",
    "load_dag_file",
    "load_dags",
    "parse_flow",
    "validate_dag_file",
    "validate_paths",
]
