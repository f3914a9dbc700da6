"""A proxy that loses one reply: the first reply to a given script (by its function's
name) that is not its idle answer.

The command has run on the server when its reply is dropped; the proxy then closes the
connection, as a client that timed out would: the caller never learns what it did.
"""

from __future__ import annotations

import socket
import threading

from fairque.queue.scripts import function_name
from tests.integration.proxy import CuttableProxy, _close

SETTLE_EMPTY = b"*2\r\n*0\r\n*0\r\n"
"""settle.lua's reply (RESP2) when it recorded no outcome and claimed nothing: the
worker's idle poll."""


class ReplyDropper(CuttableProxy):
    """Forwards like CuttableProxy; drops the first reply to script ``script`` other than
    ``idle`` or an error (its library not loaded yet), then closes that connection.
    :attr:`dropped` counts the drops."""

    def __init__(self, redis_url: str, script: str, idle: bytes) -> None:
        self._marker = function_name(script).encode()
        self._idle = idle
        self.dropped = 0
        self._armed = threading.Event()
        self._armed.set()
        super().__init__(redis_url)

    def _link(self, client: socket.socket, server: socket.socket) -> None:
        asked = threading.Event()  # the request on this connection runs the script

        def requests() -> None:
            try:
                while data := client.recv(65536):
                    if self._marker in data:
                        asked.set()
                    server.sendall(data)
            except OSError:
                pass
            finally:
                _close(client)
                _close(server)

        def replies() -> None:
            held = b""  # the start of a reply to the script, until it can be judged
            try:
                while data := server.recv(65536):
                    if asked.is_set():
                        held += data
                        if len(held) < len(self._idle) and self._idle.startswith(held):
                            continue
                        asked.clear()
                        data, held = held, b""
                        if self._armed.is_set() and data[:1] == b"*" and data != self._idle:
                            self._armed.clear()
                            self.dropped += 1
                            break
                    client.sendall(data)
            except OSError:
                pass
            finally:
                _close(client)
                _close(server)

        for pump in (requests, replies):
            threading.Thread(target=pump, daemon=True).start()
