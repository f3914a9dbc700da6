"""Redis connection URLs: which kinds fairque accepts and what each one says (pure, no I/O).

==================================================  =========================================
``redis://[user:pass@]host[:port][/db]``            one server
``rediss://[user:pass@]host[:port][/db][?tls...]``  one server over TLS
``unix://[user:pass@]/path/to.sock[?db=N]``         one server on a Unix socket
``redis+sentinel://[user:pass@]host[:port][,host[:port]...]/service[/db][?sentinel_...]``
                                                    the master of ``service``, found through
                                                    Sentinel (port 26379 by default)
``redis+cluster://[user:pass@]host:port[,host:port...]``  a Redis Cluster, found through
                                                    these seed nodes (fairque's keys
                                                    live in one hash slot)
==================================================  =========================================

The user name and password of a URL are the data server's (for Sentinel: the master's
and replicas'); the sentinels' own credentials are the query options
``sentinel_username`` and ``sentinel_password``. TLS options of ``rediss://``:
``ssl_cert_reqs`` (``none``, ``optional`` or ``required``, the default), ``ssl_ca_certs``
(a CA bundle file), ``ssl_ca_path``, ``ssl_certfile`` and ``ssl_keyfile`` (a client
certificate), ``ssl_check_hostname`` (``true``/``false``). Values in the query are
percent-decoded. :func:`parse_redis_url` checks a URL without echoing it (it may hold a
password); the clients are built from its answer by :mod:`fairque.queue.connection`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from fairque.core.errors import ConfigValueError

SENTINEL_SCHEME = "redis+sentinel"
CLUSTER_SCHEME = "redis+cluster"
DIRECT_SCHEMES = ("redis", "rediss", "unix")
SCHEMES = (*DIRECT_SCHEMES, SENTINEL_SCHEME, CLUSTER_SCHEME)
SENTINEL_PORT = 26379
REDIS_PORT = 6379

Kind = Literal["direct", "sentinel", "cluster"]

_NUMBER_OPTIONS = frozenset(
    {"socket_timeout", "socket_connect_timeout", "health_check_interval", "max_connections"}
)
_FLAG_OPTIONS = frozenset({"socket_keepalive", "retry_on_timeout", "ssl_check_hostname"})
_CERT_REQS = ("none", "optional", "required")
TLS_OPTIONS = frozenset(
    {"ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_path", "ssl_certfile", "ssl_keyfile"}
    | {"ssl_check_hostname"}
)
SENTINEL_OPTIONS = frozenset({"sentinel_username", "sentinel_password"})
_DIRECT_OPTIONS = frozenset({"db", "client_name"}) | _NUMBER_OPTIONS | (_FLAG_OPTIONS - TLS_OPTIONS)
_TRUE = ("1", "true", "yes")  # the words redis-py's URL parser reads the same way
_FALSE = ("0", "false", "no")

_Path = tuple[str | int, ...]


@dataclass(frozen=True)
class RedisLocation:
    """What a connection URL names.

    ``kind`` is ``direct`` (one server: ``url`` goes to redis-py's ``from_url`` as is),
    ``sentinel`` (``nodes`` are the sentinels, ``service`` the monitored master's name)
    or ``cluster`` (``nodes`` are seed nodes). ``options`` are the query's, decoded.
    """

    kind: Kind
    url: str = field(repr=False)
    scheme: str = "redis"
    nodes: tuple[tuple[str, int], ...] = ()
    service: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    options: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def tls(self) -> bool:
        return self.scheme == "rediss"


def parse_redis_url(url: object, path: _Path = ("url",)) -> RedisLocation:
    """Check a connection URL and say what it names; a bad one raises
    :class:`ConfigValueError` at ``path`` naming the problem (never the URL itself)."""
    if not isinstance(url, str):
        raise ConfigValueError(path, f"must be a string, not {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ConfigValueError(
            path,
            "must be a redis://, rediss://, unix://, redis+sentinel:// or redis+cluster:// "
            "URL, e.g. redis://localhost:6379/0",
        )
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    common: dict[str, Any] = {
        "url": url,
        "scheme": parts.scheme,
        "username": unquote(username) if username else None,
        "password": unquote(password) if ":" in userinfo else None,
        "options": _options(parts.query, parts.scheme, path),
    }
    if parts.scheme in DIRECT_SCHEMES:
        return _direct(hosts, parts.path, path, common)
    default_port = SENTINEL_PORT if parts.scheme == SENTINEL_SCHEME else REDIS_PORT
    nodes = _nodes(hosts, default_port, path)
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme == CLUSTER_SCHEME:
        if segments not in ([], ["0"]):
            raise ConfigValueError(path, "a cluster has only database 0: give no /db path")
        return RedisLocation("cluster", nodes=nodes, **common)
    if not segments or len(segments) > 2:
        raise ConfigValueError(
            path,
            "must name the Sentinel service (the monitored master) and optionally a db, "
            "e.g. redis+sentinel://host:26379,host2:26379/mymaster/0",
        )
    db = _db(segments[1] if len(segments) == 2 else "0", path)
    service = unquote(segments[0])
    return RedisLocation("sentinel", nodes=nodes, service=service, db=db, **common)


def _direct(hosts: str, url_path: str, path: _Path, common: dict[str, Any]) -> RedisLocation:
    options = common["options"]
    if common["scheme"] == "unix":
        if not url_path:
            raise ConfigValueError(path, "must name the socket file, e.g. unix:///tmp/redis.sock")
        db = _db(options.get("db", "0"), path)
        return RedisLocation("direct", db=db, **common)
    if "," in hosts:
        raise ConfigValueError(
            path, "names several hosts: use redis+sentinel:// for a Sentinel group"
        )
    nodes = _nodes(hosts or "localhost", REDIS_PORT, path)
    db = _db(options.get("db") or url_path.strip("/") or "0", path)  # as redis-py reads it
    return RedisLocation("direct", nodes=nodes, db=db, **common)


def _nodes(hosts: str, default_port: int, path: _Path) -> tuple[tuple[str, int], ...]:
    nodes = []
    for item in hosts.split(","):
        host, port = _host_port(item.strip(), default_port, path)
        nodes.append((host, port))
    return tuple(nodes)


def _host_port(item: str, default_port: int, path: _Path) -> tuple[str, int]:
    if item.startswith("["):  # [IPv6]:port
        host, _, rest = item[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else rest
    else:
        host, _, port_text = item.partition(":")
    if not host:
        raise ConfigValueError(path, "has an empty host name (host:port expected)")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigValueError(path, "has an invalid port number")
    return host, int(port_text)


def _db(text: str, path: _Path) -> int:
    if not text.isdigit():
        raise ConfigValueError(path, "must look like redis://host:port/db with a numeric db")
    return int(text)


def _options(query: str, scheme: str, path: _Path) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ConfigValueError(path, "has a malformed query string") from None
    accepted = _accepted_options(scheme)
    options: dict[str, str] = {}
    for name, value in pairs:
        if name not in accepted:
            hint = " (TLS options need rediss://)" if name in TLS_OPTIONS else ""
            raise ConfigValueError(
                path,
                f"has an unknown option {name!r}{hint}; accepted for {scheme}://: "
                + (", ".join(sorted(accepted)) or "none"),
            )
        _check_option(name, value, path)
        options[name] = value
    return options


def _accepted_options(scheme: str) -> frozenset[str]:
    if scheme == SENTINEL_SCHEME:
        return SENTINEL_OPTIONS
    if scheme == CLUSTER_SCHEME:
        return frozenset()
    return _DIRECT_OPTIONS | (TLS_OPTIONS if scheme == "rediss" else frozenset())


def _check_option(name: str, value: str, path: _Path) -> None:
    problem = None
    if name in _NUMBER_OPTIONS and not _is_number(value):
        problem = "must be a number"
    elif name in _FLAG_OPTIONS and value.lower() not in (*_TRUE, *_FALSE):
        problem = "must be true or false"
    elif name == "ssl_cert_reqs" and value not in _CERT_REQS:
        problem = "must be one of " + ", ".join(_CERT_REQS)
    elif name in ("db", "max_connections") and not value.isdigit():
        problem = "must be a whole number"
    elif not value and name not in ("sentinel_password", "client_name"):
        problem = "is empty"
    if problem:
        raise ConfigValueError(path, f"has option {name!r} that {problem}")


def _is_number(text: str) -> bool:
    try:
        return float(text) >= 0
    except ValueError:
        return False


def redact(url: str) -> str:
    """``url`` with its password and ``sentinel_password`` shown as ``***``, for logs
    and messages."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if ":" not in userinfo and "sentinel_password" not in parts.query:
        return url
    if ":" in userinfo:
        userinfo = userinfo.partition(":")[0] + ":***"
    query = "&".join(
        f"{name}=***" if name == "sentinel_password" else pair
        for pair in parts.query.split("&")
        if pair
        for name in [pair.partition("=")[0]]
    )
    return parts._replace(netloc=f"{userinfo}{at}{hosts}", query=query).geturl()
