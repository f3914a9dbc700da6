"""taskflow_chain.yaml as a Python DAG file: calling a task with another task's call as
an argument passes that task's return value (``task["key"]``: one key of it)."""

from __future__ import annotations

from examples.dynamic import extract, load, transform

from fairque.dag import DAG

_rows = extract(source="orders")

dag = DAG(
    dag_id="taskflow_chain_py",
    description="load(transform(extract())) in Python",
    pipeline=load(transform(_rows["rows"], factor=3), source=_rows["source"]),
)
