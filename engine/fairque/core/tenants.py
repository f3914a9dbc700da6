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
        fields["burst"] = _count("burst", burst, 1)
    return fields


def _unlimited(value: object) -> bool:
    return (isinstance(value, str) and value.strip().lower() in (UNLIMITED, "none", "inf")) or (
        isinstance(value, float) and math.isinf(value) and value > 0
    )


def _count(name: str, value: object, minimum: int) -> str:
    if _unlimited(value):
        return STORED_UNLIMITED
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TenantPolicyError(
            name, f"must be a whole number or {UNLIMITED}, not {shorten(value)}"
        )
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


def share_out(figures: Sequence[TenantFigures], by_time: bool) -> float | None:
    """Fill in each tenant's share of the last minute's service (claims, or worker
    seconds when fairness is by time) and its fair share (its weight over the weights
    of the tenants competing: queued, running or served lately); returns Jain's index
    over the weight-normalised shares of the competing tenants (1 = perfectly fair;
    None when no tenant was served)."""
    competing = [f for f in figures if f.competing]
    weights = sum(f.policy.weight for f in competing)

    def service(f: TenantFigures) -> float:
        return f.work_last_minute if by_time else f.served_last_minute

    total = sum(service(f) for f in competing)
    for f in figures:
        f.share = service(f) / total if total else 0.0
        f.fair_share = f.policy.weight / weights if f.competing and weights else 0.0
    ratios = [f.share / f.fair_share for f in competing if f.fair_share]
    return jain_index(ratios) if total and ratios else None


def jain_index(values: Sequence[float]) -> float:
    """Jain's fairness index: (sum x)^2 / (n * sum x^2), in (0, 1]; 1 when all equal."""
    squares = sum(v * v for v in values)
    if not values or squares == 0:
        return 1.0
    return sum(values) ** 2 / (len(values) * squares)
