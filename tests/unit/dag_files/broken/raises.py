"""A Python DAG file whose import fails (line 7)."""

from examples.etl import extract_data, load_data

from fairque.dag import DAG

dag = DAG(dag_id="raises", pipeline=extract_data() >> load_data(), schedule="bad cron")
