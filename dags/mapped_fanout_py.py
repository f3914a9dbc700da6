"""mapped_fanout.yaml as a Python DAG file: ``process_file.partial(...).expand(...)``."""

from __future__ import annotations

from examples.dynamic import list_files, process_file, summarize

from fairque.dag import DAG, ParamSpec

dag = DAG(
    dag_id="mapped_fanout_py",
    description="summarize(process_file.expand(path=list_files()))",
    pipeline=summarize(
        process_file.partial(prefix="in/")
        .expand(path=list_files(count="{{ params.count }}"))
        .with_options(name="process")  # named as in the YAML file: process[0], ...
    ),
    params={"count": ParamSpec("integer", default=50)},
    default_args={"max_retries": 2},
)
