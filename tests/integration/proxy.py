"""A TCP proxy to the test server that a test can cut and restore: a real outage for the
clients behind it (their connections are closed, new ones are dropped at once), while
the server and every other client carry on."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from urllib.parse import urlsplit


class CuttableProxy:
    """Forwards ``127.0.0.1:{port}`` to the server of ``redis_url`` until :meth:`cut`."""

    def __init__(self, redis_url: str) -> None:
        parts = urlsplit(redis_url)
        if parts.scheme != "redis" or parts.port is None:
            raise ValueError(f"CuttableProxy needs a redis://host:port URL, not {redis_url!r}")
        self._target = (parts.hostname or "127.0.0.1", parts.port)
        self._path = parts.path or "/0"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._up = threading.Event()
        self._up.set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The URL clients use to go through the proxy."""
        return f"redis://127.0.0.1:{self.port}{self._path}"

    def cut(self) -> None:
        """Close every proxied connection and drop new ones until :meth:`restore`."""
        self._up.clear()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _close(sock)

    def restore(self) -> None:
        """Forward new connections again."""
        self._up.set()

    def close(self) -> None:
        """Cut, stop accepting and free the port."""
        self._closed.set()
        self.cut()
        self._thread.join(2.0)
        self._listener.close()

    def __enter__(self) -> CuttableProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            if not self._up.is_set():
                _close(client)
                continue
            try:
                server = socket.create_connection(self._target, timeout=2.0)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
            self._link(client, server)

    def _link(self, client: socket.socket, server: socket.socket) -> None:
        """Forward both ways until either side closes (a subclass may inspect)."""
        for source, sink in ((client, server), (server, client)):
            threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
