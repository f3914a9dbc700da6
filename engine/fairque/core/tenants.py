"""Tenant policies: what they are, how they are written in Redis and read back.

A policy has four fields: ``weight`` (share of service, default 1), ``max_running``
(started tasks at once across all workers), ``rate`` (task starts per second) and
``burst`` (starts allowed at once within the rate, default 1); a missing limit is
unlimited. A tenant's own fields override the default policy's (user id ``"*"``).
Pure logic: the scripts that enforce policies are in ``lua/_tenants.lua``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fairque.core.errors import QueueError, shorten
from fairque.core.models import validate_identifier

POLICY_FIELDS = ("weight", "max_running", "rate", "burst")
DEFAULT_TENANT = "*"  # the user id that names the default policy
UNLIMITED = "unlimited"
STORED_UNLIMITED = "-1"
MAX_WEIGHT = 1_000_000.0
MIN_WEIGHT = 0.001
# What a tenant's hash holds besides its policy (lua/_tenants.lua), read for live figures.
STATE_FIELDS = (
    "capped",
    "limited",
    "tat",
    "win",
    "served",
    "served_prev",
    "work",
    "work_prev",
)
WINDOW_SECONDS = 60.0
_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(?:/\s*([smh]))?\s*$")
_PER = {"s": 1.0, "m": 60.0, "h": 3600.0}


class TenantPolicyError(QueueError, ValueError):
    """A tenant policy value is not valid (the message names the field and the rule)."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"tenant policy {name}: {problem}")
        self.field = name


def check_tenant(user_id: object) -> str:
    """A tenant's user id, or ``"*"`` for the default policy."""
    if user_id == DEFAULT_TENANT:
        return DEFAULT_TENANT
    return validate_identifier(user_id, "user_id")


def parse_rate(value: object) -> float | None:
    """Starts per second from ``20``, ``"20/s"``, ``"100/m"`` or ``"5/h"``; None for
    ``"unlimited"`` or infinity."""
    if _unlimited(value):
        return None
    if isinstance(value, str):
        match = _RATE.match(value)
        if not match:
            raise TenantPolicyError(
                "rate", f"{shorten(value)} is not a rate such as 20/s, 100/m, 5/h or {UNLIMITED}"
            )
        number = float(match.group(1)) / _PER[match.group(2) or "s"]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        raise TenantPolicyError(
            "rate", f"must be a number or a text such as 20/s, not {shorten(value)}"
        )
    if not math.isfinite(number) or number <= 0:
        raise TenantPolicyError("rate", f"must be > 0 starts per second, not {shorten(value)}")
    return number


def encode_policy(
    weight: object = None, max_running: object = None, rate: object = None, burst: object = None
) -> dict[str, str]:
    """The hash fields to set for the given values (None = leave as it is); raises
    TenantPolicyError naming the first bad one."""
    fields: dict[str, str] = {}
    if weight is not None:
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise TenantPolicyError("weight", f"must be a number, not {shorten(weight)}")
        if not (math.isfinite(weight) and MIN_WEIGHT <= weight <= MAX_WEIGHT):
            raise TenantPolicyError(
                "weight",
                f"must be between {MIN_WEIGHT} and {MAX_WEIGHT:.0f}, not {shorten(weight)}",
            )
        fields["weight"] = repr(float(weight))
    if max_running is not None:
        fields["max_running"] = _count("max_running", max_running, 0)
    if rate is not None:
        per_second = parse_rate(rate)
        fields["rate"] = STORED_UNLIMITED if per_second is None else repr(per_second)
    if burst is not None:
        if _unlimited(burst):
            raise TenantPolicyError("burst", "must be a whole number >= 1 (not unlimited)")
        fields["burst"] = _count("burst", burst, 1, unlimited=False)
    return fields


def _unlimited(value: object) -> bool:
    return (isinstance(value, str) and value.strip().lower() in (UNLIMITED, "none", "inf")) or (
        isinstance(value, float) and math.isinf(value) and value > 0
    )


def _count(name: str, value: object, minimum: int, *, unlimited: bool = True) -> str:
    if unlimited and _unlimited(value):
        return STORED_UNLIMITED
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        also = f" or {UNLIMITED}" if unlimited else f" >= {minimum}"
        raise TenantPolicyError(name, f"must be a whole number{also}, not {shorten(value)}")
    if value < minimum:
        raise TenantPolicyError(name, f"must be >= {minimum}, not {value}")
    return str(value)


def check_fields(names: Sequence[str]) -> list[str]:
    """Policy field names to unset (all four when none is given)."""
    for name in names:
        if name not in POLICY_FIELDS:
            raise TenantPolicyError(name, f"is not a policy field ({', '.join(POLICY_FIELDS)})")
    return list(names) or list(POLICY_FIELDS)


@dataclass(frozen=True)
class TenantPolicy:
    """A tenant's policy in effect: its own fields, else the default policy's.

    ``max_running`` and ``rate`` are None when unlimited; ``own`` lists the fields the
    tenant sets itself (the rest come from the default policy or the built-in one).
    """

    user_id: str
    weight: float = 1.0
    max_running: int | None = None
    rate: float | None = None
    burst: int = 1
    own: tuple[str, ...] = ()

    @classmethod
    def resolve(
        cls, user_id: str, own: Mapping[str, str], default: Mapping[str, str]
    ) -> TenantPolicy:
        """The policy from a tenant's hash fields and the default policy's."""

        def value(name: str) -> float | None:
            raw = own.get(name, default.get(name))
            if raw is None or float(raw) < 0:
                return None
            return float(raw)

        weight = value("weight")
        max_running, rate, burst = value("max_running"), value("rate"), value("burst")
        return cls(
            user_id=user_id,
            weight=weight if weight and weight > 0 else 1.0,
            max_running=None if max_running is None else int(max_running),
            rate=rate,
            burst=int(burst) if burst and burst >= 1 else 1,
            own=tuple(n for n in POLICY_FIELDS if n in own),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "weight": self.weight,
            "max_running": self.max_running,
            "rate": self.rate,
            "burst": self.burst,
            "own": list(self.own),
        }


@dataclass
class TenantFigures:
    """A tenant's policy and live figures (``fairque tenant list``)."""

    policy: TenantPolicy
    queued: int = 0
    running: int = 0
    served_last_minute: float = 0.0  # claims, over the sliding minute
    work_last_minute: float = 0.0  # worker seconds (recorded with fairness by time)
    tokens: float | None = None  # rate tokens available now (None: no rate)
    parked: list[str] = field(default_factory=list)  # 'capped', 'limited'
    share: float = 0.0  # of the service of the last minute
    fair_share: float = 0.0  # weight / sum of the weights of the tenants competing

    @property
    def competing(self) -> bool:
        return bool(self.queued or self.running or self.served_last_minute)

    def service(self, by_time: bool) -> float:
        """Its service of the last minute: worker seconds, or claims."""
        return self.work_last_minute if by_time else self.served_last_minute

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.policy.as_dict(),
            "queued": self.queued,
            "running": self.running,
            "served_last_minute": round(self.served_last_minute, 3),
            "work_last_minute": round(self.work_last_minute, 3),
            "tokens": None if self.tokens is None else round(self.tokens, 3),
            "parked": self.parked,
            "share": round(self.share, 4),
            "fair_share": round(self.fair_share, 4),
        }


def windowed(current: float, previous: float, now_ms: float, minute: float | None) -> float:
    """The sliding one-minute count from two fixed-minute buckets (the previous one
    weighted by how much of it the window still covers)."""
    if minute is None:
        return 0.0
    this_minute = math.floor(now_ms / (WINDOW_SECONDS * 1000))
    into = (now_ms / (WINDOW_SECONDS * 1000)) - this_minute
    if minute == this_minute:
        return current + previous * (1 - into)
    if minute == this_minute - 1:
        return current * (1 - into)
    return 0.0


def tenant_figures(
    user_id: str,
    hash_fields: Mapping[str, str],
    default: Mapping[str, str],
    counters: Mapping[str, int],
    now_ms: float,
) -> TenantFigures:
    """One tenant's figures from its hash, the default policy, its stats counters
    (``queued``, ``started``) and the server time."""
    policy = TenantPolicy.resolve(user_id, hash_fields, default)
    minute = float(hash_fields["win"]) if "win" in hash_fields else None

    def number(name: str) -> float:
        return float(hash_fields.get(name) or 0)

    figures = TenantFigures(
        policy,
        queued=int(counters.get("queued", 0)),
        running=int(counters.get("started", 0)),
        served_last_minute=windowed(number("served"), number("served_prev"), now_ms, minute),
        work_last_minute=windowed(number("work"), number("work_prev"), now_ms, minute),
        parked=[name for name in ("capped", "limited") if hash_fields.get(name) == "1"],
    )
    if policy.rate is not None:
        interval = 1000 / policy.rate
        tat = max(float(hash_fields.get("tat") or now_ms), now_ms)
        tolerance = (policy.burst - 1) * interval
        figures.tokens = max(
            0.0, min(float(policy.burst), (now_ms + tolerance - tat) / interval + 1)
        )
    return figures


@dataclass(frozen=True)
class ShareTotals:
    """What shares are measured against, over every tenant: whether service is worker
    seconds (``by_time``: seconds were recorded, fairness by time) or claims, the
    service of the last minute and the sum of the weights of the competing tenants
    (queued, running or served lately), and Jain's index over their weight-normalised
    shares (1 = perfectly fair; None when no tenant was served)."""

    by_time: bool = False
    service: float = 0.0
    weights: float = 0.0
    jain: float | None = None

    @classmethod
    def of(cls, figures: Sequence[TenantFigures], by_time: bool | None = None) -> ShareTotals:
        """The totals of all the tenants' figures (``by_time`` None: by time when
        seconds were recorded)."""
        if by_time is None:
            by_time = any(f.work_last_minute > 0 for f in figures)
        competing = [f for f in figures if f.competing]
        service = sum(f.service(by_time) for f in competing)
        totals = cls(by_time, service, sum(f.policy.weight for f in competing))
        shared = [totals.shared(f) for f in competing]
        ratios = [share / fair for share, fair in shared if fair]
        jain = jain_index(ratios) if service and ratios else None
        return cls(by_time, service, totals.weights, jain)

    @classmethod
    def from_sums(cls, reply: Sequence[Any]) -> ShareTotals:
        """From ``tenant_totals.lua``'s reply (the same totals as :meth:`of`, summed on
        the server): Jain's index is scale-free, so the sums of service / weight and of
        its square give it (the ratios share / fair share are those times W / S)."""
        _, any_work, n, weights, *sums = (float(x) for x in reply)
        by_time = any_work > 0
        service, total, squares = sums[3:6] if by_time else sums[0:3]
        jain = jain_of_sums(total, squares, int(n)) if service and n and weights else None
        return cls(by_time, service, weights, jain)

    def shared(self, f: TenantFigures) -> tuple[float, float]:
        """A tenant's share of the last minute's service and its fair share (its
        weight over the weights of the competing tenants; 0 when it is not competing)."""
        share = f.service(self.by_time) / self.service if self.service else 0.0
        fair = f.policy.weight / self.weights if f.competing and self.weights else 0.0
        return share, fair

    def apply(self, figures: Sequence[TenantFigures]) -> None:
        """Fill in the ``share`` and ``fair_share`` of these tenants (any of them, e.g.
        a page)."""
        for f in figures:
            f.share, f.fair_share = self.shared(f)


def share_out(figures: Sequence[TenantFigures], by_time: bool) -> float | None:
    """Fill in each tenant's share of the last minute's service (claims, or worker
    seconds when ``by_time``) and its fair share (see :class:`ShareTotals`); returns
    Jain's index over the weight-normalised shares of the competing tenants."""
    totals = ShareTotals.of(figures, by_time)
    totals.apply(figures)
    return totals.jain


def jain_index(values: Sequence[float]) -> float:
    """Jain's fairness index: (sum x)^2 / (n * sum x^2), in (0, 1]; 1 when all equal."""
    return jain_of_sums(sum(values), sum(v * v for v in values), len(values))


def jain_of_sums(total: float, squares: float, n: int) -> float:
    """Jain's index from the sum of the values, of their squares, and their number."""
    if not n or squares == 0:
        return 1.0
    return total**2 / (n * squares)
