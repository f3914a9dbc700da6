"""Configuration: where Redis is, the workers and what they serve, queue-wide settings.

A :class:`FairQueueConfig` is what queues, workers and the scheduler are built from. Make
one with ``create_default(...)`` in code, ``from_yaml(path)`` for a ``fairque_config.yaml``
file (checked against ``schemas/config.schema.json``), ``from_dict`` or ``from_url``.
Every config object validates itself on construction and raises a
:class:`~fairque.core.errors.ConfigValueError` naming the field.

Where Redis is (:func:`redis_location`, applied when a queue, worker or scheduler
connects, not when the config is made): a server the config names (``redis=`` of
``create_default``, ``from_url``, a ``redis:`` section of a YAML file, any
:class:`RedisConfig` not left at its connection defaults) wins; else
``$FAIRQUE_REDIS_URL``; else the embedded server of the state folder
(``$FAIRQUE_STATE_DIR``, default ``./.fairque``), found if it runs and started if not.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from fairque.core.errors import (
    ConfigError,
    ConfigFileError,
    ConfigValueError,
    FairQueueError,
    shorten,
)
from fairque.core.imports import ALLOWED_MODULES_ENV as ALLOWED_MODULES_ENV
from fairque.core.imports import default_allowed_modules, module_allowed
from fairque.core.models import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_QUEUE,
    DEFAULT_RETRY_DELAY_SECONDS,
    validate_identifier,
    validate_queue_name,
)
from fairque.core.schemas import did_you_mean, line_of, read_yaml_file, schema_problems
from fairque.core.urls import parse_redis_url, redact

if TYPE_CHECKING:
    import yaml

REDIS_URL_ENV = "FAIRQUE_REDIS_URL"
DURABILITY_ENV = "FAIRQUE_DURABILITY"
DURABILITY_MODES = ("async", "replicated")
FAIRNESS_MODES = ("count", "time")
EMBEDDED = "embedded"
CONFIG_SCHEMA = "config.schema.json"
MAX_CONFIG_BYTES = 1024 * 1024
ALL_USERS = "*"

_Path = tuple[str | int, ...]


def redis_location(explicit: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The Redis URL to use, or None for the embedded server of the state folder.

    Precedence: ``explicit`` (a URL given in code, a config file or a command option),
    then ``FAIRQUE_REDIS_URL`` in ``environ`` (default ``os.environ``), then None. Blank
    values count as not given; the word ``embedded`` (either place) means None. A bad
    ``FAIRQUE_REDIS_URL`` raises :class:`ConfigValueError` naming the variable.
    """
    env = (os.environ if environ is None else environ).get(REDIS_URL_ENV, "")
    for source, value in (("explicit", explicit or ""), (REDIS_URL_ENV, env)):
        value = value.strip()
        if value.lower() == EMBEDDED:
            return None
        if value:
            if source == REDIS_URL_ENV:
                parse_redis_url(value, (REDIS_URL_ENV,))
            return value
    return None


def durability_mode(configured: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The durability to use: ``configured`` (QueueConfig.durability) when given, else
    ``FAIRQUE_DURABILITY`` in ``environ`` (default ``os.environ``), else ``async``.

    ``async``: a write is acknowledged once the master ran it (replicas copy it a moment
    later). ``replicated``: writes that must survive a failover (pushes, a task's end, a
    claim) are followed by ``WAIT 1 <replication_timeout_seconds>`` on the master. A bad
    ``FAIRQUE_DURABILITY`` raises :class:`ConfigValueError` naming the variable."""
    if configured is not None:
        return configured
    value = (os.environ if environ is None else environ).get(DURABILITY_ENV, "").strip()
    if not value:
        return "async"
    _choice(value.lower(), DURABILITY_ENV, DURABILITY_MODES)
    return value.lower()


@dataclass
class RedisConfig:
    """Where the Redis (or Valkey) server is and how to talk to it.

    Left at its connection defaults (no host, port, db, username, password, url or ssl
    given) it names no server: fairque then uses ``FAIRQUE_REDIS_URL``, else the
    embedded server (see :func:`redis_location`). Given only some of host and port, the
    other is ``localhost`` / ``6379``.
    """

    host: str | None = None
    port: int | None = None
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    url: str | None = field(default=None, repr=False)  # when set, host..ssl are ignored
    socket_timeout: float = 5.0
    socket_connect_timeout: float = 5.0
    ssl: bool = False

    def __post_init__(self) -> None:
        host = self.host
        if host is not None and (
            not isinstance(host, str) or not host or any(c.isspace() for c in host)
        ):
            raise ConfigValueError(
                ("host",), f"must be a host name or address, not {shorten(host)}"
            )
        if self.port is not None:
            _integer(self.port, "port", 1, 65535)
        _integer(self.db, "db", 0)
        _optional_text(self.username, "username")
        _optional_text(self.password, "password")
        if self.url is not None:
            parse_redis_url(self.url, ("url",))
        _number(self.socket_timeout, "socket_timeout")
        _number(self.socket_connect_timeout, "socket_connect_timeout")
        _flag(self.ssl, "ssl")

    @classmethod
    def from_url(cls, url: str) -> RedisConfig:
        """A config for ``url`` (any URL of :mod:`fairque.core.urls`); for a redis:// or
        rediss:// URL host, port, db, credentials and ssl are read from it too."""
        where = parse_redis_url(url, ("url",))
        if where.scheme not in ("redis", "rediss"):
            return cls(url=url)
        (host, port) = where.nodes[0]
        return cls(
            host=host,
            port=port,
            db=where.db,
            username=where.username,
            password=where.password,
            url=url,
            ssl=where.tls,
        )

    def explicit_url(self) -> str | None:
        """The URL of the server this config names: ``url``, else one built from host,
        port, db, credentials and ssl; None when all of them are left at their defaults."""
        if self.url:
            return self.url
        given = (self.host, self.port, self.username, self.password)
        if all(v is None for v in given) and self.db == 0 and not self.ssl:
            return None
        auth = ""
        if self.username or self.password:
            auth = quote(self.username or "", safe="")
            auth += f":{quote(self.password, safe='')}@" if self.password else "@"
        host = self.host or "localhost"
        host = f"[{host}]" if ":" in host else host
        scheme = "rediss" if self.ssl else "redis"
        return f"{scheme}://{auth}{host}:{self.port or 6379}/{self.db}"

    def resolved_url(self) -> str | None:
        """The URL to connect to (:func:`redis_location` of :meth:`explicit_url`): the
        named server, else ``FAIRQUE_REDIS_URL``; None means the embedded server."""
        return redis_location(self.explicit_url())

    def redacted_url(self) -> str:
        """:meth:`resolved_url` with the passwords replaced by ``***``, for logs and
        messages (``embedded`` for the embedded server)."""
        url = self.resolved_url()
        return EMBEDDED if url is None else redact(url)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``redis.Redis.from_url(url, **kwargs)`` (sync or asyncio)."""
        return {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_connect_timeout,
            "health_check_interval": 30,
            "retry_on_timeout": False,
        }


@dataclass
class WorkerConfig:
    """One worker process: which users it serves, how much at once, and its safety limits."""

    id: str = "worker-001"
    assigned_users: list[str] = field(default_factory=lambda: [ALL_USERS])
    steal_targets: list[str] = field(default_factory=list)
    queues: list[str] = field(default_factory=lambda: [DEFAULT_QUEUE])
    """The queues the worker claims from, in turn (round robin); tasks of other queues
    are never claimed by it."""
    poll_interval_seconds: float = 1.0
    max_concurrent_tasks: int = 10
    lease_seconds: float = 30.0
    allowed_modules: list[str] = field(default_factory=lambda: default_allowed_modules())
    shutdown_grace_seconds: float = 30.0
    max_recoveries: int = 3
    heartbeat_seconds: float = 5.0
    max_log_bytes: int = 1024 * 1024  # output kept per task attempt (``run logs``)
    prefetch_tasks: int | None = None
    """Tasks claimed ahead of free slots while this worker's recent tasks were short (see
    ``prefetch_below_seconds``): a slot that frees takes the next at once instead of
    waiting for the loop's next claim. None: half of ``max_concurrent_tasks`` (at least
    1: deeper costs the light tenants' waits more than it gains, see the README's
    Performance section); 0 claims only for free slots."""
    prefetch_below_seconds: float = 0.05
    """Claiming ahead is on while the worker's recent tasks ran shorter than this on
    average (an exponential mean) and none running now has run longer; a task claimed
    ahead that still waits a second for a slot goes back to its queue."""

    def __post_init__(self) -> None:
        _identifier(self.id, ("id",), "worker id")
        self.assigned_users = _user_list(self.assigned_users, "assigned_users")
        self.steal_targets = _user_list(self.steal_targets, "steal_targets")
        if not self.assigned_users and not self.steal_targets:
            raise ConfigValueError(
                ("assigned_users",),
                "and steal_targets are both empty, so the worker would never take a task; "
                "use ['*'] to serve every user",
            )
        self.queues = _queue_list(self.queues)
        _number(self.poll_interval_seconds, "poll_interval_seconds")
        _integer(self.max_concurrent_tasks, "max_concurrent_tasks", 1)
        _number(self.lease_seconds, "lease_seconds")
        self.allowed_modules = _module_list(self.allowed_modules)
        _number(self.shutdown_grace_seconds, "shutdown_grace_seconds", positive=False)
        _integer(self.max_recoveries, "max_recoveries", 0)
        _number(self.heartbeat_seconds, "heartbeat_seconds")
        _integer(self.max_log_bytes, "max_log_bytes", 1024)
        if self.prefetch_tasks is not None:
            _integer(self.prefetch_tasks, "prefetch_tasks", 0)
        _number(self.prefetch_below_seconds, "prefetch_below_seconds", positive=False)

    @property
    def claim_ahead(self) -> int:
        """How many tasks are claimed ahead of free slots while tasks are short."""
        if self.prefetch_tasks is None:
            return max(1, self.max_concurrent_tasks // 2)
        return self.prefetch_tasks

    def allows_module(self, module: str) -> bool:
        """True if the worker may import ``module``: "a.b" allows a.b and a.b.c, not a.bc."""
        return module_allowed(self.allowed_modules, module)


@dataclass
class QueueConfig:
    """Settings shared by every producer and worker of one queue."""

    stats_prefix: str = "fq"
    default_max_retries: int = DEFAULT_MAX_RETRIES
    default_retry_delay_seconds: float = DEFAULT_RETRY_DELAY_SECONDS
    retry_backoff_max_seconds: float = 3600.0
    enable_pipeline_optimization: bool = True
    xcom_ttl_seconds: int = 3600
    max_xcom_bytes: int = 1_048_576
    max_payload_bytes: int = 1_048_576
    priority_aging_seconds: float = 300.0  # waiting this long is worth one priority step
    result_ttl_seconds: int = 86_400  # how long finished/failed/canceled records are kept
    run_retention_seconds: float = 604_800.0  # how long a run is kept after it ended
    fairness: str = "count"  # what tenants share: claims ("count") or worker seconds ("time")
    durability: str | None = None  # async | replicated; None: $FAIRQUE_DURABILITY, else async
    replication_timeout_seconds: float = 1.0  # how long a replicated write waits for a replica
    step_size: int = 100  # most tasks one call writes; half of it, tells or opens (README)
    staging_timeout_seconds: float = 600.0  # a large batch's staged tasks wait this for commit

    def __post_init__(self) -> None:
        _identifier(self.stats_prefix, ("stats_prefix",), "stats_prefix")
        _integer(self.default_max_retries, "default_max_retries", 0)
        _number(self.default_retry_delay_seconds, "default_retry_delay_seconds", positive=False)
        _number(self.retry_backoff_max_seconds, "retry_backoff_max_seconds")
        _flag(self.enable_pipeline_optimization, "enable_pipeline_optimization")
        _number(self.priority_aging_seconds, "priority_aging_seconds")
        _number(self.run_retention_seconds, "run_retention_seconds")
        _choice(self.fairness, "fairness", FAIRNESS_MODES)
        if self.durability is not None:
            _choice(self.durability, "durability", DURABILITY_MODES)
        _number(self.replication_timeout_seconds, "replication_timeout_seconds")
        _integer(self.step_size, "step_size", 1)
        _number(self.staging_timeout_seconds, "staging_timeout_seconds")
        for name in (
            "xcom_ttl_seconds",
            "max_xcom_bytes",
            "max_payload_bytes",
            "result_ttl_seconds",
        ):
            _integer(getattr(self, name), name, 1)

    @property
    def prefix(self) -> str:
        """The prefix of every Redis key (``stats_prefix`` in the seed's YAML)."""
        return self.stats_prefix

    @property
    def half_step(self) -> int:
        """Tasks made ready per call (told of an upstream's end, opened, promoted,
        reclaimed): half ``step_size``, as each costs about two writes (the scripts'
        TELL_STEP, see "Large batches" in the README)."""
        return max(1, self.step_size // 2)


@dataclass
class FairQueueConfig:
    """The whole configuration: Redis, the workers, queue settings, and which worker this is."""

    redis: RedisConfig = field(default_factory=RedisConfig)
    workers: list[WorkerConfig] = field(default_factory=lambda: [WorkerConfig()])
    queue: QueueConfig = field(default_factory=QueueConfig)
    worker_id: str | None = None  # which of `workers` this process is; None = the first

    def __post_init__(self) -> None:
        _instance(self.redis, RedisConfig, ("redis",))
        _instance(self.queue, QueueConfig, ("queue",))
        if not isinstance(self.workers, (list, tuple)) or not self.workers:
            raise ConfigValueError(("workers",), "must be a non-empty list of WorkerConfig")
        self.workers = list(self.workers)
        seen: dict[str, int] = {}
        for i, worker in enumerate(self.workers):
            _instance(worker, WorkerConfig, ("workers", i))
            if worker.id in seen:
                raise ConfigValueError(
                    ("workers", i, "id"),
                    f"{shorten(worker.id)} is already used by workers[{seen[worker.id]}]; "
                    "worker ids must be unique",
                )
            seen[worker.id] = i
        if self.worker_id is not None:
            self._find(self.worker_id)

    @property
    def worker(self) -> WorkerConfig:
        """The worker this process is: the one named by ``worker_id``, else the first."""
        return self.workers[0] if self.worker_id is None else self._find(self.worker_id)

    def for_worker(self, worker_id: str) -> FairQueueConfig:
        """A copy of this config that selects the worker ``worker_id``."""
        self._find(worker_id)
        clone = copy.deepcopy(self)
        clone.worker_id = worker_id
        return clone

    def with_worker(self, **settings: Any) -> FairQueueConfig:
        """A copy whose selected worker has ``settings`` (WorkerConfig fields) changed."""
        _refuse_unknown(settings, _field_names(WorkerConfig))
        clone = copy.deepcopy(self)
        index = clone.workers.index(clone.worker)
        clone.workers[index] = replace(clone.worker, **settings)
        if "id" in settings:
            clone.worker_id = settings["id"]
        return clone

    def with_redis(self, url: str) -> FairQueueConfig:
        """A copy that connects to the Redis at ``url``."""
        clone = copy.deepcopy(self)
        clone.redis = RedisConfig.from_url(url)
        return clone

    def _find(self, worker_id: str) -> WorkerConfig:
        for worker in self.workers:
            if worker.id == worker_id:
                return worker
        known = ", ".join(w.id for w in self.workers)
        raise ConfigValueError(
            ("worker_id",),
            f"{shorten(worker_id)} is not a configured worker; known worker ids: {known}",
        )

    @classmethod
    def create_default(
        cls,
        worker_id: str = "worker-001",
        assigned_users: list[str] | None = None,
        steal_targets: list[str] | None = None,
        *,
        redis: RedisConfig | str | None = None,
        queue: QueueConfig | None = None,
        **settings: Any,
    ) -> FairQueueConfig:
        """A one-worker config; ``settings`` are WorkerConfig or QueueConfig fields.

        ``redis`` (a URL or a RedisConfig) names the server and wins over
        ``FAIRQUE_REDIS_URL``; without it the queue uses ``FAIRQUE_REDIS_URL``, else the
        embedded server of the state folder (see :func:`redis_location`).
        """
        worker_keys = _field_names(WorkerConfig) - {"id", "assigned_users", "steal_targets"}
        queue_keys = _field_names(QueueConfig)
        _refuse_unknown(settings, worker_keys | queue_keys)
        worker = WorkerConfig(
            id=worker_id,
            assigned_users=[ALL_USERS] if assigned_users is None else assigned_users,
            steal_targets=[] if steal_targets is None else steal_targets,
            **{k: v for k, v in settings.items() if k in worker_keys},
        )
        base_queue = QueueConfig() if queue is None else _instance(queue, QueueConfig, ("queue",))
        return cls(
            redis=RedisConfig.from_url(redis) if isinstance(redis, str) else redis or RedisConfig(),
            workers=[worker],
            queue=replace(base_queue, **{k: v for k, v in settings.items() if k in queue_keys}),
            worker_id=worker_id,
        )

    @classmethod
    def from_url(cls, url: str, **settings: Any) -> FairQueueConfig:
        """A one-worker config for the Redis at ``url`` (see :meth:`create_default`)."""
        return cls.create_default(redis=url, **settings)

    @classmethod
    def from_yaml(
        cls, path: str | os.PathLike[str], worker_id: str | None = None
    ) -> FairQueueConfig:
        """Load a YAML config file; problems raise ConfigFileError with field and line."""
        source = os.fspath(path)
        data, root = read_yaml_file(source, MAX_CONFIG_BYTES, ConfigFileError)
        config = cls._from_document(data, source, root)
        return config if worker_id is None else config.for_worker(worker_id)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> FairQueueConfig:
        """Build from parsed data shaped like the YAML file (the inverse of :meth:`to_dict`)."""
        return cls._from_document(data, source, None)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, shaped like the YAML file (it includes the password, if any)."""
        return asdict(self)

    @classmethod
    def _from_document(cls, data: object, source: str, root: yaml.Node | None) -> FairQueueConfig:
        if not isinstance(data, Mapping):
            shown = "the file is empty" if data is None else f"found {type(data).__name__}"
            raise ConfigFileError(
                source, [f"the document must be a mapping of redis, workers and queue ({shown})"]
            )
        problems = [ConfigValueError(p, m) for p, m in schema_problems(data, CONFIG_SCHEMA)]
        if not problems:
            try:
                return cls(
                    redis=_section(RedisConfig, data.get("redis", {}), "redis"),
                    workers=[
                        _section(WorkerConfig, values, "workers", i)
                        for i, values in enumerate(data.get("workers", [{}]))
                    ],
                    queue=_section(QueueConfig, data.get("queue", {}), "queue"),
                    worker_id=data.get("worker_id"),
                )
            except ConfigValueError as e:
                problems = [e]
        raise ConfigFileError(source, _located(problems, root))


# --- value checks (each raises ConfigValueError naming the field) ---------------------

_C = TypeVar("_C")


def _instance(value: object, kind: type[_C], path: _Path) -> _C:
    if not isinstance(value, kind):
        raise ConfigValueError(path, f"must be a {kind.__name__}, not {type(value).__name__}")
    return value


def _number(value: object, name: str, *, positive: bool = True) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigValueError((name,), f"must be a number, not {shorten(value)}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ConfigValueError(
            (name,), f"must be {'>' if positive else '>='} 0, not {shorten(value)}"
        )


def _integer(value: object, name: str, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigValueError((name,), f"must be an integer, not {shorten(value)}")
    if value < minimum:
        raise ConfigValueError((name,), f"must be >= {minimum}, not {shorten(value)}")
    if maximum is not None and value > maximum:
        raise ConfigValueError((name,), f"must be <= {maximum}, not {shorten(value)}")


def _flag(value: object, name: str) -> None:
    if not isinstance(value, bool):
        raise ConfigValueError((name,), f"must be true or false, not {shorten(value)}")


def _choice(value: object, name: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ConfigValueError(
            (name,), f"must be one of {', '.join(choices)}, not {shorten(value)}"
        )


def _optional_text(value: object, name: str) -> None:
    if value is not None and not isinstance(value, str):  # the value may be a secret: not shown
        raise ConfigValueError((name,), f"must be a string or None, not {type(value).__name__}")


def _identifier(value: object, path: _Path, what: str) -> None:
    try:
        validate_identifier(value, what)
    except FairQueueError as e:
        raise ConfigValueError(path, f"is invalid: {e}") from None


def _text_list(value: object, name: str) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigValueError((name,), f"must be a list of strings, not {shorten(value)}")
    return list(value)


def _user_list(value: object, name: str) -> list[str]:
    users = _text_list(value, name)
    for i, user in enumerate(users):
        if user != ALL_USERS:
            _identifier(user, (name, i), "user_id")
    return users


def _queue_list(value: object) -> list[str]:
    queues = _text_list(value, "queues")
    if not queues:
        raise ConfigValueError(("queues",), "is empty, so the worker would never take a task")
    for i, queue in enumerate(queues):
        try:
            validate_queue_name(queue)
        except FairQueueError as e:
            raise ConfigValueError(("queues", i), str(e)) from None
    if len(set(queues)) != len(queues):
        raise ConfigValueError(("queues",), f"names a queue twice: {', '.join(queues)}")
    return queues


def _module_list(value: object) -> list[str]:
    modules = _text_list(value, "allowed_modules")
    for i, module in enumerate(modules):
        if module != "*" and not all(part.isidentifier() for part in module.split(".")):
            raise ConfigValueError(
                ("allowed_modules", i),
                "must be a dotted module prefix such as 'myapp.tasks', or '*', "
                f"not {shorten(module)}",
            )
    return modules


def _field_names(kind: type[Any]) -> set[str]:
    return {f.name for f in fields(kind)}


def _refuse_unknown(settings: Mapping[str, Any], accepted: set[str]) -> None:
    unknown = sorted(set(settings) - accepted)
    if unknown:
        known = sorted(
            accepted | {"worker_id", "assigned_users", "steal_targets", "redis", "queue"}
        )
        shown = ", ".join(f"{shorten(name)}{did_you_mean(name, known)}" for name in unknown)
        noun = "setting" if len(unknown) == 1 else "settings"
        raise ConfigError(f"unknown {noun} {shown}; known settings: {', '.join(known)}")


def _section(kind: type[_C], values: Mapping[str, Any], *where: str | int) -> _C:
    try:
        return kind(**values)
    except ConfigValueError as e:
        raise e.under(*where) from None


def _located(problems: Sequence[ConfigValueError], root: yaml.Node | None) -> list[str]:
    found = sorted(((line_of(root, p.path), str(p)) for p in problems), key=lambda x: x[0] or 0)
    return [f"line {line}: {text}" if line else text for line, text in found]
