"""What one dashboard holds while it serves: the queue, the DAG folder (reloaded when
its files change), the chart samples and the graph cache."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fairque.core.config import FairQueueConfig
from fairque.core.tenants import ShareTotals
from fairque.ui.charts import Samples
from fairque.ui.graph import SvgCache

if TYPE_CHECKING:
    from fairque.dag.loader import DagBag
    from fairque.dag.model import DAG
    from fairque.queue.sync_queue import TaskQueue

SHARE_TOTALS_SECONDS = 5.0
"""How old the overview's share totals may be before they are read again: they cover a
minute of service, and their script reads every tenant (about 50 ms of the server's
time at 10,000 tenants), so pages polled every few seconds share one reading."""


def _signature(folder: Path) -> tuple[tuple[str, float, int], ...]:
    """Names, modification times and sizes of the folder's DAG files."""
    from fairque.dag.loader import dag_files

    try:
        entries = dag_files(folder) if folder.is_dir() else []
    except OSError:
        return ()
    found = []
    for path in entries:
        try:
            info = path.stat()
        except OSError:
            continue
        found.append((str(path), info.st_mtime, info.st_size))
    return tuple(found)


@dataclass
class Dashboard:
    """The state behind one ``create_app``."""

    config: FairQueueConfig
    dags_folder: Path | None = None
    read_only: bool = False
    token: str | None = None
    samples: Samples = field(default_factory=Samples)
    graphs: SvgCache = field(default_factory=SvgCache)
    _queue: TaskQueue | None = None
    _bag: DagBag | None = None
    _bag_signature: tuple[tuple[str, float, int], ...] = ()
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _totals: tuple[float, ShareTotals] | None = None  # (when read, monotonic; totals)

    @property
    def queue(self) -> TaskQueue:
        """The queue (connected on first use; its connection pool serves every thread)."""
        with self._lock:
            if self._queue is None:
                from fairque.queue.sync_queue import TaskQueue

                self._queue = TaskQueue(self.config)
            return self._queue

    def share_totals(self) -> ShareTotals:
        """What the overview's shares are measured against (over every tenant, see
        ``TaskQueue.tenant_share_totals``), read again when older than
        :data:`SHARE_TOTALS_SECONDS`."""
        with self._lock:
            known = self._totals
        if known is not None and time.monotonic() - known[0] <= SHARE_TOTALS_SECONDS:
            return known[1]
        totals = self.queue.tenant_share_totals()
        with self._lock:
            self._totals = (time.monotonic(), totals)
        return totals

    def close(self) -> None:
        with self._lock:
            if self._queue is not None:
                self._queue.close()
                self._queue = None

    @property
    def folder(self) -> Path:
        from fairque.dag.loader import dags_folder

        return dags_folder(self.dags_folder)

    def bag(self) -> DagBag:
        """The DAGs of the folder, loaded again when a file changed."""
        from fairque.dag.loader import load_dags

        folder = self.folder
        signature = _signature(folder)
        with self._lock:
            if self._bag is None or signature != self._bag_signature:
                self._bag = load_dags(folder, cache=True, lazy=True)  # parses what changed
                self._bag_signature = signature
            return self._bag

    def dag(self, dag_id: str) -> DAG:
        """One DAG; DagNotFoundError (with a did-you-mean) for an unknown id."""
        return self.bag().get(dag_id)

    def dag_or_none(self, dag_id: str | None) -> DAG | None:
        if dag_id is None:
            return None
        return self.bag().dags.get(dag_id)
