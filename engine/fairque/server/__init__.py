"""The Redis/Valkey server fairque talks to: finding one, or starting a private one.

:class:`EmbeddedServer` runs a server on 127.0.0.1 owned by a state folder
(``./.fairque`` by default) so that every fairque process started from the same place
shares it; :func:`resolve_redis_url` picks the URL a command should use. The names are
imported on first use (see ``fairque.core.lazy``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fairque.core.lazy import lazy_exports

_EXPORTS = {
    "INSTALL_HINT": "fairque.server.binary",
    "EmbeddedServer": "fairque.server.embedded",
    "ServerStatus": "fairque.server.embedded",
    "find_server_binary": "fairque.server.binary",
    "resolve_redis_url": "fairque.server.embedded",
}

if TYPE_CHECKING:
    from fairque.server.binary import INSTALL_HINT, find_server_binary
    from fairque.server.embedded import EmbeddedServer, ServerStatus, resolve_redis_url
else:
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "INSTALL_HINT",
    "EmbeddedServer",
    "ServerStatus",
    "find_server_binary",
    "resolve_redis_url",
]
