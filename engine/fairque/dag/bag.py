"""The result of loading DAG files: per-file results and the bag of DAGs by id.

:func:`collect` merges per-file results into a :class:`DagBag`; a ``dag_id`` defined by
more than one file is refused in each of them.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fairque.core.errors import DagNotFoundError
from fairque.core.schemas import did_you_mean
from fairque.dag.entries import DagInfo, DagRef, DagTable
from fairque.dag.model import DAG
from fairque.dag.validate import Problem


@dataclass
class LoadResult:
    """What one file gave: its DAGs and its problems (a file with problems gives none)."""

    path: str
    dags: list[DAG] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    lines: dict[str, int | None] = field(default_factory=dict)  # dag_id -> line of dag_id
    refs: list[DagRef] = field(default_factory=list)  # DAGs built on first use

    @property
    def ok(self) -> bool:
        """True when the file has no problem."""
        return not self.problems


@dataclass
class DagBag:
    """The DAGs of a folder (or of some paths) by id, and every problem found.

    ``files`` lists each file read with its own problems (``[]`` when it is fine).
    Loaded with ``lazy=True``, the DAGs of unchanged cached files are built on first
    use; :meth:`info` summarises one without building it.
    """

    folder: Path | None
    dags: MutableMapping[str, DAG] = field(default_factory=DagTable)
    problems: list[Problem] = field(default_factory=list)
    files: dict[str, list[Problem]] = field(default_factory=dict)

    def info(self, dag_id: str) -> DagInfo:
        """The summary of ``dag_id`` (as ``dag list`` shows it), without building it."""
        if isinstance(self.dags, DagTable):
            return self.dags.info(dag_id)
        return DagInfo.of(self.dags[dag_id])

    def get(self, dag_id: str) -> DAG:
        """The DAG ``dag_id``; DagNotFoundError (with a did-you-mean) otherwise."""
        if dag_id in self.dags:
            return self.dags[dag_id]
        hint = did_you_mean(dag_id, self.dags)
        known = ", ".join(sorted(self.dags)) or "none"
        raise DagNotFoundError(dag_id, f"{hint}; known: {known}")


def collect(results: Sequence[LoadResult]) -> DagBag:
    """One DagBag from per-file results; a dag_id found more than once is refused
    everywhere, with a problem on each file naming the others."""
    owners: dict[str, list[tuple[LoadResult, DAG | DagRef]]] = {}
    for result in results:
        for dag in result.dags:
            owners.setdefault(dag.dag_id, []).append((result, dag))
        for ref in result.refs:
            owners.setdefault(ref.info.dag_id, []).append((result, ref))
    table = DagTable()
    bag = DagBag(None, table, files={r.path: list(r.problems) for r in results})
    for dag_id, found in owners.items():
        if len(found) == 1:
            table[dag_id] = found[0][1]
            continue
        for result, _ in found:
            others = ", ".join(sorted({r.path for r, _ in found} - {result.path})) or "this file"
            line = result.lines.get(dag_id)
            message = f"dag_id {dag_id!r} is also defined in {others}; both are refused"
            bag.files[result.path].append(
                Problem(result.path, line, 1 if line else None, "/dag_id" if line else "", message)
            )
    bag.problems = [p for found in bag.files.values() for p in found]
    return bag


def failed(
    file: Path, message: str, line: int | None = None, column: int | None = None
) -> LoadResult:
    """A result with one problem about the whole file (or at ``line``:``column``)."""
    return LoadResult(str(file), problems=[Problem(str(file), line, column, "", message)])


__all__ = ["DagBag", "LoadResult", "collect", "failed"]
