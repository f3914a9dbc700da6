"""The Redis/Valkey server fairque talks to: finding one, or starting a private one.

:class:`EmbeddedServer` runs a server on 127.0.0.1 owned by a state folder
(``./.fairque`` by default) so that every fairque process started from the same place
shares it; :func:`resolve_redis_url` picks the URL a command should use.
"""

from __future__ import annotations

from fairque.server.embedded import (
    INSTALL_HINT,
    EmbeddedServer,
    ServerStatus,
    find_server_binary,
    resolve_redis_url,
)

__all__ = [
    "INSTALL_HINT",
    "EmbeddedServer",
    "ServerStatus",
    "find_server_binary",
    "resolve_redis_url",
]
