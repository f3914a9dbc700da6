"""The orders ETL as a Python DAG file: the same graph as orders_etl.yaml, built with
the pipeline operators from the @task functions of examples/etl.py."""

from __future__ import annotations

from examples.etl import extract_data, load_data, transform_data, validate_data

from fairque.dag import DAG, ParamSpec, TaskInfo

dag = DAG(
    dag_id="orders_etl_py",
    description="Order ETL written in Python: extract >> (transform | validate) >> load",
    pipeline=(
        extract_data(source="{{ params.source }}")
        >> (transform_data() | validate_data())
        >> load_data()
    ),
    tenant="user:1",
    max_active_runs=1,
    params={"source": ParamSpec("string", default="database", enum=("database", "api", "files"))},
    default_args={"max_retries": 2, "retry_delay_seconds": 5, "timeout_seconds": 600},
    task_info={"transform": TaskInfo("Double the records", xcom_pushes=("transformed",))},
)
