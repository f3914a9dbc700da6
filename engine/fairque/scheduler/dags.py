"""The scheduled DAGs of a folder, reloaded when a file changes, and how they fire."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from fairque.core.errors import RunExistsError
from fairque.dag.loader import dags_folder, load_dags
from fairque.dag.model import DAG
from fairque.dag.runs import paused_dags, scheduled_run_id, trigger
from fairque.scheduler.backfill import in_range, intervals

if TYPE_CHECKING:
    from fairque.scheduler.scheduler import TaskScheduler

logger = logging.getLogger(__name__)

RELOAD_SECONDS = 2.0


class DagSource:
    """The DAGs with a ``schedule`` in a folder, reloaded when a file changes."""

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = dags_folder(folder)
        self.dags: dict[str, DAG] = {}
        self._stamp: tuple[tuple[str, float], ...] = ()
        self._checked = 0.0
        self.reload()

    def reload(self) -> None:
        """Load the folder again if any file was added, removed or changed."""
        stamp = tuple(
            sorted((str(p), p.stat().st_mtime) for p in self.folder.glob("*") if p.is_file())
        )
        if stamp == self._stamp:
            return
        self._stamp = stamp
        bag = load_dags(self.folder, cache=True)  # parses only the changed files
        for problem in bag.problems:
            logger.warning("DAG file problem: %s", problem)
        self.dags = {i: d for i, d in bag.dags.items() if d.schedule}
        logger.info("scheduled DAGs in %s: %s", self.folder, ", ".join(sorted(self.dags)) or "none")

    def fire_due(self, scheduler: TaskScheduler, now: datetime) -> list[str]:
        """Create the due runs of every scheduled DAG; returns their run ids. Each DAG
        fires on its own: one that fails is recorded in ``scheduler.failures`` and tried
        again on the next pass."""
        if time.monotonic() - self._checked > RELOAD_SECONDS:
            self._checked = time.monotonic()
            try:
                self.reload()
            except OSError as e:  # e.g. a file removed while listed: keep the DAGs as they were
                logger.warning("cannot read the DAG folder %s: %s", self.folder, e)
        paused = paused_dags(scheduler.queue)
        fired: list[str] = []
        for dag in list(self.dags.values()):
            fired += scheduler.failures.attempt(
                f"dag:{dag.dag_id}",
                partial(self._fire, scheduler, dag, now, dag.dag_id in paused),
            )
        return fired

    def _fire(self, scheduler: TaskScheduler, dag: DAG, now: datetime, paused: bool) -> list[str]:
        key = f"dag:{dag.dag_id}"
        assert dag.schedule is not None
        ticks = scheduler.due_ticks(
            key, dag.schedule, dag.timezone, dag.catchup, now.timestamp(), now
        )
        skipped = [tick for tick in ticks if paused or not in_range(dag, tick)]
        for tick in skipped:  # paused, or outside the DAG's start_date..end_date
            scheduler.advance(key, tick.timestamp())
        ticks = [tick for tick in ticks if tick not in skipped]
        if not ticks:
            return []
        room = dag.max_active_runs - _active_runs(scheduler, dag)
        fired = []
        for interval in intervals(dag, ticks[: max(room, 0)]):
            tick = interval[1]
            run_id = scheduled_run_id(dag.dag_id, tick)
            try:
                trigger(
                    scheduler.queue,
                    dag,
                    run_id=run_id,
                    logical_date=tick,
                    tick=(key, tick.timestamp()),
                    data_interval=interval,
                )
                fired.append(run_id)
                logger.info("fired DAG %s for %s: run %s", dag.dag_id, tick.isoformat(), run_id)
            except RunExistsError:
                pass  # another scheduler created it: the tick is handled all the same
            scheduler.advance(key, tick.timestamp())
        return fired


def _active_runs(scheduler: TaskScheduler, dag: DAG) -> int:
    runs = scheduler.queue.list_runs(dag.dag_id, limit=dag.max_active_runs + 10)
    return sum(1 for run in runs if not run.state.is_finished)
