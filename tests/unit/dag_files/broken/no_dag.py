"""A Python file in a DAG folder that defines no DAG."""

VALUE = 1
