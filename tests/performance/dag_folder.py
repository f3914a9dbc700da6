"""Generated DAG folders for the DAG-scale benchmarks: N YAML files of chained no-op tasks.

``write_dags(folder, 1000)`` writes ``bench_0000.yaml`` ... ``bench_0999.yaml``, each a
chain of ``tasks`` no-op tasks (``tests.performance.jobs:noop``) on the cron ``schedule``
(every 15 seconds by default, seconds field first).
"""

from __future__ import annotations

from pathlib import Path

EVERY_15_SECONDS = "*/15 * * * * *"


def dag_text(dag_id: str, tasks: int = 10, schedule: str = EVERY_15_SECONDS) -> str:
    """One DAG file's YAML: ``tasks`` chained no-op tasks on ``schedule``."""
    names = [f"t{i:02d}" for i in range(tasks)]
    lines = [
        f"dag_id: {dag_id}",
        f'schedule: "{schedule}"',
        "catchup: false",
        "max_active_runs: 16",
        f'flow: "{" >> ".join(names)}"',
        "tasks:",
    ]
    for name in names:
        lines += [f"  {name}:", '    callable: "tests.performance.jobs:noop"']
    return "\n".join(lines) + "\n"


def write_dags(
    folder: Path, count: int, tasks: int = 10, schedule: str = EVERY_15_SECONDS
) -> list[str]:
    """Write ``count`` DAG files into ``folder`` (created); returns their DAG ids."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = [f"bench_{i:04d}" for i in range(count)]
    for dag_id in ids:
        (folder / f"{dag_id}.yaml").write_text(dag_text(dag_id, tasks, schedule))
    return ids
