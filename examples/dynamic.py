"""Task functions for the dynamic DAGs in dags/: return values passed as arguments
(TaskFlow) and a fan-out over a list known only at run time (task mapping).

The same functions serve the YAML files (``callable: "examples.dynamic:..."``) and the
Python DAG files, which call them: ``load(transform(extract()))``.
"""

from __future__ import annotations

from typing import Any

from fairque import task


@task
def extract(source: str = "orders") -> dict[str, Any]:
    """Some rows, as a dict (``{from: extract, key: rows}`` takes the list)."""
    return {"source": source, "rows": [{"id": i, "amount": i * 10} for i in range(1, 6)]}


@task
def transform(rows: list[dict[str, Any]], factor: int = 2) -> list[dict[str, Any]]:
    """Each row with its amount multiplied by ``factor``."""
    return [{**row, "amount": row["amount"] * factor} for row in rows]


@task
def load(rows: list[dict[str, Any]], source: str = "?") -> dict[str, Any]:
    """What a load step reports: how many rows and their total."""
    return {"source": source, "count": len(rows), "total": sum(r["amount"] for r in rows)}


@task
def list_files(count: int = 50) -> list[str]:
    """A list whose length is known only when the task runs."""
    return [f"file_{i:03d}.csv" for i in range(count)]


@task
def process_file(path: str, prefix: str = "") -> dict[str, Any]:
    """One file's result (one mapped instance per file)."""
    number = int(path.removeprefix("file_").removesuffix(".csv"))
    return {"file": prefix + path, "lines": number * 2}


@task
def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The reduce step: receives every instance's result, in the list's order."""
    return {
        "files": len(results),
        "lines": sum(r["lines"] for r in results),
        "first": results[0]["file"] if results else None,
        "last": results[-1]["file"] if results else None,
    }
