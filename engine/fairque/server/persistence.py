"""What the embedded server keeps on disk: an append-only file (AOF), or nothing.

A durable server (the default) runs with ``appendonly yes`` in its data folder: Valkey
7+/Redis 7+ keep a multi-part AOF in ``appendonlydir/`` there, load it on start, write
every change to it before answering and fsync it as ``appendfsync`` says (``everysec``
by default; ``$FAIRQUE_SERVER_APPENDFSYNC`` or the ``appendfsync`` argument choose
``always``, ``everysec`` or ``no``). An ephemeral server keeps nothing (no AOF, no RDB).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fairque.core.errors import ConfigValueError

APPENDFSYNC_ENV = "FAIRQUE_SERVER_APPENDFSYNC"
APPENDFSYNC_CHOICES = ("always", "everysec", "no")
DEFAULT_APPENDFSYNC = "everysec"
AOF_DIRNAME = "appendonlydir"
"""Where Valkey/Redis 7+ keep the AOF's parts inside the data folder (their default)."""
LOAD_BYTES_PER_SECOND = 1024 * 1024
"""A slow pace of loading an AOF (a busy laptop loads 10 MiB/s or more); a server
starting on that much data is given that long to answer (it does not while it loads)."""
EPHEMERAL = "none"
"""The persistence label of a server that keeps nothing."""


@dataclass(frozen=True)
class Persistence:
    """How a server keeps its data: ``appendfsync`` set means an AOF, None means nothing."""

    appendfsync: str | None

    @classmethod
    def choose(cls, *, durable: bool, appendfsync: str | None = None) -> Persistence:
        """The persistence asked for: ``appendfsync`` (else the environment, else
        ``everysec``) when ``durable``; ConfigValueError for an unknown fsync policy."""
        if not durable:
            return cls(None)
        chosen = (appendfsync or os.environ.get(APPENDFSYNC_ENV, "").strip()).lower()
        chosen = chosen or DEFAULT_APPENDFSYNC
        if chosen not in APPENDFSYNC_CHOICES:
            where = "appendfsync" if appendfsync else APPENDFSYNC_ENV
            raise ConfigValueError(
                (where,), f"must be one of {', '.join(APPENDFSYNC_CHOICES)}, not {chosen!r}"
            )
        return cls(chosen)

    @property
    def label(self) -> str:
        """``aof everysec`` (``aof always``, ``aof no``) or ``none``."""
        return f"aof {self.appendfsync}" if self.appendfsync else EPHEMERAL

    def load_seconds(self, data_bytes: int) -> float:
        """The extra seconds a server may take to start on ``data_bytes`` of data."""
        return data_bytes / LOAD_BYTES_PER_SECOND if self.appendfsync else 0.0

    def server_args(self) -> list[str]:
        """The server's persistence options: never an RDB snapshot; an AOF when durable."""
        args = ["--save", ""]
        if self.appendfsync is None:
            return [*args, "--appendonly", "no"]
        return [*args, "--appendonly", "yes", "--appendfsync", self.appendfsync]


def folder_bytes(folder: Path) -> int:
    """The total size of the files under ``folder`` (0 when it does not exist)."""
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                total += path.stat().st_size
        except OSError:  # removed while we looked (an AOF rewrite renames parts)
            continue
    return total
