"""A Python DAG file outside any package (imported under a private module name)."""

from examples.etl import cleanup, extract_data, failing_step

from fairque.dag import DAG

failure = DAG(
    dag_id="good_py",
    pipeline=extract_data() >> failing_step() >> cleanup(),
    default_args={"priority": "HIGH", "max_retries": 1},
)
second = DAG(dag_id="good_py_single", pipeline=extract_data())
