"""The default DAG folder: YAML and Python DAG files (``fairque dag list`` reads them).

It is a package so that workers can import task functions defined in Python DAG files
as ``dags.<file>:<function>``.
"""
