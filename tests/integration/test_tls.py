"""``rediss://`` (TLS) end to end, with the URL's TLS options.

The embedded Valkey is built without TLS (``valkey-server --tls-port`` answers "Failed
finding TLS support"), so the server side of TLS is a proxy that terminates it (Python's
``ssl``, a self-signed certificate made by the ``openssl`` command) in front of the test
server: the client side, which is fairque's, is the real thing.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from fairque import FairQueueConfig, Task, TaskQueue, TaskState
from fairque.core.errors import RedisUnavailableError
from tests.integration.proxy import CuttableProxy
from tests.timing import budget


class TlsProxy(CuttableProxy):
    """A proxy whose clients speak TLS to it (it speaks plain RESP to the server)."""

    def __init__(self, redis_url: str, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__(redis_url)

    def _link(self, client: socket.socket, server: socket.socket) -> None:
        client.settimeout(budget(5.0))
        try:
            wrapped = self._context.wrap_socket(client, server_side=True)
        except (OSError, ssl.SSLError):  # the client refused our certificate
            server.close()
            return
        wrapped.settimeout(None)
        with self._lock:
            self._sockets.append(wrapped)
        super()._link(wrapped, server)

    def tls_url(self, query: str = "") -> str:
        return f"rediss://localhost:{self.port}/0" + (f"?{query}" if query else "")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1: (cert, key)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    argv = [openssl, "req", "-x509", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
    argv += ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    argv += ["-keyout", str(key), "-out", str(cert)]
    argv += ["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    subprocess.run(
        argv,
        check=True,
        capture_output=True,
        timeout=budget(30),
    )
    return cert, key


@pytest.fixture
def tls_proxy(
    redis_url: str, redis_client: object, certificate: tuple[Path, Path]
) -> Iterator[TlsProxy]:
    if not redis_url.startswith("redis://"):
        pytest.skip("the TLS proxy needs a redis://host:port server")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    with TlsProxy(redis_url, context) as proxy:
        yield proxy


def run_one_task(url: str) -> TaskState:
    with TaskQueue(FairQueueConfig.create_default(redis=url)) as queue:
        queue.push(Task.create("alice", task_id="over-tls"))
        taken = queue.pop()
        assert taken is not None and taken.task_id == "over-tls"
        return queue.finish(taken, "ok")


def test_tls_with_the_servers_ca(tls_proxy: TlsProxy, certificate: tuple[Path, Path]) -> None:
    ca = quote(str(certificate[0]), safe="")
    assert run_one_task(tls_proxy.tls_url(f"ssl_ca_certs={ca}")) == TaskState.FINISHED


def test_tls_without_verification(tls_proxy: TlsProxy) -> None:
    url = tls_proxy.tls_url("ssl_cert_reqs=none&ssl_check_hostname=false")
    assert run_one_task(url) == TaskState.FINISHED


def test_an_unknown_certificate_is_refused(tls_proxy: TlsProxy) -> None:
    with pytest.raises(RedisUnavailableError, match="certificate verify failed"):
        TaskQueue(FairQueueConfig.create_default(redis=tls_proxy.tls_url()))


def test_plain_redis_to_a_tls_port_fails_clearly(tls_proxy: TlsProxy) -> None:
    url = f"redis://127.0.0.1:{tls_proxy.port}/0?socket_timeout={budget(2.0)}"
    with pytest.raises(RedisUnavailableError, match="unreachable"):
        TaskQueue(FairQueueConfig.create_default(redis=url))


def test_a_client_certificate_from_the_url(
    redis_url: str, redis_client: object, certificate: tuple[Path, Path]
) -> None:
    if not redis_url.startswith("redis://"):
        pytest.skip("the TLS proxy needs a redis://host:port server")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    context.verify_mode = ssl.CERT_REQUIRED  # like tls-auth-clients yes
    context.load_verify_locations(certificate[0])
    cert, key = (quote(str(p), safe="") for p in certificate)
    with TlsProxy(redis_url, context) as proxy:
        url = proxy.tls_url(f"ssl_ca_certs={cert}&ssl_certfile={cert}&ssl_keyfile={key}")
        assert run_one_task(url) == TaskState.FINISHED
        with pytest.raises(RedisUnavailableError):  # no client certificate: refused
            TaskQueue(FairQueueConfig.create_default(redis=proxy.tls_url(f"ssl_ca_certs={cert}")))
