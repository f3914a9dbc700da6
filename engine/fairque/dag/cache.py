"""The DAG file cache: what parsing and checking a YAML DAG file found, kept by file identity.

Loading a folder of DAG files costs what changed: for each unchanged YAML file the
loader takes the parsed document and its problems from here instead of parsing and
checking it again (:mod:`fairque.dag.loader` decides what is kept; this module keeps
it). The cache lives in the state folder (``$FAIRQUE_STATE_DIR``, else ``./.fairque``)
under ``dag-cache/``, one JSON file per DAG folder and set of allowed modules; it needs
no Redis, so ``fairque dag validate`` uses it too. JSON only, never pickle: a cache file
is data, not code.

A file is unchanged when its identity (size, mtime_ns, ctime_ns, inode) is the one
recorded, unless the file changed within :data:`RACY_NS` of the recording (a clock
tick can hide a second write of the same size): then, and whenever the identity
differs, its content hash (SHA-256) decides, so ``touch`` or a checkout that rewrites
the same bytes costs a read, not a parse. A cache file recorded by another fairque
version, with another ``dag.schema.json``, or by other code for the rules (the loader
and checking modules' own files: an edited checkout) is ignored as a whole.

Never in the way: ``FAIRQUE_DAG_CACHE=off`` (or ``--no-cache``) bypasses it; a corrupt
cache file, or a state folder that cannot be written, is warned about once and the
files are parsed as without a cache. Writers replace the whole file atomically (a
temporary file, then ``os.replace``), so concurrent processes never leave a torn file;
the last one wins and the other's new entries are parsed again next time.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fairque.core.state import state_folder

if TYPE_CHECKING:
    from fairque.dag.model import DAG

logger = logging.getLogger(__name__)

CACHE_ENV = "FAIRQUE_DAG_CACHE"
"""``off`` (or ``0``, ``false``, ``no``) bypasses the cache."""
FORMAT = 1
"""The layout of a cache file; bumped when an entry's meaning changes."""
FOLDER_NAME = "dag-cache"
RACY_NS = 2_000_000_000
"""A file changed this close to its recording is checked by content hash."""
_OFF = ("off", "0", "false", "no")
_RULE_MODULES = (
    "fairque.core.cron",
    "fairque.core.fields",
    "fairque.core.models",
    "fairque.core.refs",
    "fairque.core.schemas",
    "fairque.dag.cache",
    "fairque.dag.codechecks",
    "fairque.dag.document",
    "fairque.dag.entries",
    "fairque.dag.flow",
    "fairque.dag.groups",
    "fairque.dag.loader",
    "fairque.dag.model",
    "fairque.dag.params",
    "fairque.dag.references",
    "fairque.dag.rules",
    "fairque.dag.shorthands",
    "fairque.dag.templates",
    "fairque.dag.validate",
    "fairque.queue.runs",
)
"""The modules whose rules decide what a file's entry says."""
_warned: set[str] = set()


def cache_disabled() -> bool:
    """True when ``$FAIRQUE_DAG_CACHE`` turns the cache off."""
    return os.environ.get(CACHE_ENV, "").strip().lower() in _OFF


def default_cache_dir() -> Path:
    """``dag-cache/`` in the state folder (``$FAIRQUE_STATE_DIR``, else ``./.fairque``)."""
    return state_folder() / FOLDER_NAME


def warn_once(key: str, message: str, *args: object) -> None:
    """Log ``message`` as a warning the first time ``key`` is seen in this process."""
    if key not in _warned:
        _warned.add(key)
        logger.warning(message, *args)


Identity = list[int]
BuiltKey = tuple[str, str, tuple[str, ...]]
"""A DAG built in this process: (its file as given, the file's content hash, allowed)."""


def identity(stat: os.stat_result) -> Identity:
    """What says a file is unchanged without reading it."""
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]


def digest(raw: bytes) -> str:
    """The content hash of a file's bytes."""
    return hashlib.sha256(raw).hexdigest()


@dataclass
class Lookup:
    """What :meth:`FolderCache.find` found for one file: its recorded ``entry`` when
    the file is unchanged; else the file's ``raw`` bytes (read at most ``limit + 1``)
    with their ``sha256`` and ``identity``, to parse and :meth:`FolderCache.put`."""

    entry: dict[str, Any] | None
    raw: bytes | None = None
    sha256: str = ""
    identity: Identity = field(default_factory=list)


class FolderCache:
    """The entries of one DAG folder (for one set of allowed modules), by file name."""

    def __init__(self, path: Path | None, header: dict[str, Any]) -> None:
        self.path = path
        self.header = header
        self.entries: dict[str, dict[str, Any]] = {}
        self.seen: set[str] = set()
        self.complete = False
        """True when this load listed the whole folder (entries of files not seen go)."""
        self.dirty = False
        self.parsed: list[str] = []
        """Names of the files parsed in this process (what tests count)."""

    def find(self, file: Path, limit: int) -> Lookup:
        """The entry of ``file`` if it is unchanged, else its bytes (OSError if unreadable)."""
        self.seen.add(file.name)
        entry = self.entries.get(file.name)
        if not isinstance(entry, dict):
            entry = None  # a foreign value: parsed again
        recorded = entry.get("recorded_ns") if entry is not None else None
        if (
            entry is not None
            and isinstance(recorded, int)
            and entry.get("identity") == identity(file.stat())
            and entry["identity"][1] < recorded - RACY_NS
        ):
            return Lookup(entry)
        with open(file, "rb") as f:
            raw = f.read(limit + 1)
            ident = identity(os.fstat(f.fileno()))
        sha = digest(raw)
        if entry is not None and entry.get("sha256") == sha:
            self.put(file, entry, sha, ident)
            return Lookup(entry)
        return Lookup(None, raw, sha, ident)

    def forget(self, file: Path) -> None:
        """Drop the entry of ``file`` (one that could not be read back)."""
        self.entries.pop(file.name, None)
        self.dirty = True

    def put(self, file: Path, entry: dict[str, Any], sha256: str, ident: Identity) -> None:
        """Record ``entry`` for ``file`` (content ``sha256``, identity ``ident``)."""
        entry.update(sha256=sha256, identity=ident, recorded_ns=time.time_ns())
        self.entries[file.name] = entry
        self.dirty = True

    def save(self) -> None:
        """Write the entries if anything changed, without those of files no longer in
        the folder when it was loaded whole (:attr:`complete`); then start afresh for
        the next load. Never raises: a failure is warned about once."""
        gone = set(self.entries) - self.seen if self.complete else set()
        for name in gone:
            del self.entries[name]
        self.seen, self.complete = set(), False
        if self.path is None or not (self.dirty or gone):
            return
        document = {**self.header, "entries": self.entries}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-")
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    out.write(json.dumps(document, separators=(",", ":")))
                os.replace(temporary, self.path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except (OSError, TypeError, ValueError) as e:
            warn_once(
                f"write:{self.path.parent}",
                "cannot write the DAG cache in %s (%s); DAG files are parsed every time",
                self.path.parent,
                e,
            )
            return
        self.dirty = False


class DagCache:
    """Parsed and checked DAG files kept in ``folder`` (None: in this process only),
    and the DAGs built from them in this process (a long-running scheduler rebuilds
    only the DAGs of changed files)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.built: dict[BuiltKey, DAG] = {}
        self._folders: dict[str, FolderCache] = {}

    @classmethod
    def shared(cls) -> DagCache | None:
        """This process's cache of the state folder (:func:`default_cache_dir`), or
        None when ``$FAIRQUE_DAG_CACHE`` is off."""
        if cache_disabled():
            return None
        folder = default_cache_dir()
        return _SHARED.setdefault(folder, cls(folder))

    def for_folder(self, dag_folder: Path, allowed: Sequence[str]) -> FolderCache:
        """The cache of the DAG files directly in ``dag_folder`` (read once per process
        per folder; an unreadable or foreign file gives an empty cache)."""
        where = str(dag_folder.resolve())
        key = json.dumps([where, sorted(set(allowed))])
        found = self._folders.get(key)
        if found is not None:
            return found
        name = hashlib.sha256(key.encode()).hexdigest()[:24] + ".json"
        path = None if self.folder is None else self.folder / name
        header = {"format": FORMAT, "folder": where, "allowed": sorted(set(allowed))}
        header["code"] = _code_stamp()
        found = FolderCache(path, header)
        if path is not None:
            found.entries = _read(path, header)
        self._folders[key] = found
        return found

    def forget_built(self, files: set[str], used: set[BuiltKey]) -> None:
        """Forget the DAGs built from earlier contents of ``files`` (a long-running
        scheduler keeps only those of the current ones, ``used``)."""
        for key in [k for k in self.built if k[0] in files and k not in used]:
            del self.built[key]

    def save(self) -> None:
        """Write every folder cache that changed (at the end of a load)."""
        for folder in self._folders.values():
            folder.save()


_SHARED: dict[Path, DagCache] = {}


def _read(path: Path, header: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The entries of the cache file ``path`` if it was written under ``header``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as e:
        warn_once(f"read:{path}", "cannot read the DAG cache %s (%s); ignoring it", path, e)
        return {}
    try:
        document = json.loads(text)
        entries = document["entries"]
        if not isinstance(entries, dict):
            raise TypeError("entries is not a mapping")
    except (ValueError, KeyError, TypeError) as e:
        warn_once(f"read:{path}", "the DAG cache %s is corrupt (%s); ignoring it", path, e)
        return {}
    same = all(document.get(key) == value for key, value in header.items())
    return entries if same else {}


_CODE: list[Any] = []


def _code_stamp() -> list[Any]:
    """fairque's version, the DAG schema's hash and the rule modules' file identities:
    a cache recorded under other rules is not used."""
    if not _CODE:
        from importlib.metadata import PackageNotFoundError, version

        from fairque.core.schemas import schema_path

        try:
            release = version("fairque")
        except PackageNotFoundError:  # pragma: no cover - a source tree on sys.path
            release = "unknown"
        schema = digest(schema_path("dag.schema.json").read_bytes())
        files = []
        for name in _RULE_MODULES:
            where = getattr(importlib.import_module(name), "__file__", None)
            if where:
                stat = os.stat(where)
                files.append([name, stat.st_size, stat.st_mtime_ns])
        _CODE.append([release, schema, files])
    return list(_CODE[0])


__all__ = [
    "CACHE_ENV",
    "BuiltKey",
    "DagCache",
    "FolderCache",
    "Lookup",
    "cache_disabled",
    "default_cache_dir",
]
