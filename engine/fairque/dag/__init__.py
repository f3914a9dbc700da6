"""DAG files: the DAG model, the ``flow`` grammar, loading and validation.

Pure Python (no Redis): ``load_dags()`` reads a folder into a :class:`DagBag`,
``validate_paths()`` lists every problem of some files, ``DAG.compile()`` turns a DAG
and a run's conf into task records.
"""

from fairque.core.errors import DagConfError, DagNotFoundError, FlowSyntaxError
from fairque.dag.flow import Flow, parse_flow
from fairque.dag.loader import DagBag, LoadResult, dags_folder, load_dag_file, load_dags
from fairque.dag.model import DAG, ParamSpec, TaskInfo
from fairque.dag.validate import Problem, validate_dag_file, validate_paths

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
