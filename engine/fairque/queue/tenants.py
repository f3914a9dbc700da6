"""Tenant policy calls, shared by the sync and async queues.

``set_policy`` and ``unset_policy`` build script calls (``tenant_policy.lua``: the change
applies from the next claim, a parked tenant is let back at once when it may run);
``get_policy`` is a read; ``list_tenants`` is a multi-step read (see queue/steps.py).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from typing import Any

from fairque.core.models import TaskState
from fairque.core.tenants import (
    DEFAULT_TENANT,
    POLICY_FIELDS,
    STATE_FIELDS,
    ShareTotals,
    TenantPolicy,
    TenantPolicyError,
    check_fields,
    check_tenant,
    encode_policy,
    tenant_figures,
)
from fairque.queue.calls import Arg, PipelineCall, QueueCalls, ScriptCall

Steps = Generator[Any, Any, Any]
_READ_FIELDS = (*POLICY_FIELDS, *STATE_FIELDS)


def set_policy(
    calls: QueueCalls,
    user_id: str,
    *,
    weight: object = None,
    max_running: object = None,
    rate: object = None,
    burst: object = None,
) -> ScriptCall[None]:
    """Set the given fields of a tenant's policy (``"*"``: the default policy); None
    leaves a field as it is, ``"unlimited"`` lifts a limit (over the default's)."""
    user = check_tenant(user_id)
    fields = encode_policy(weight, max_running, rate, burst)
    if not fields:
        raise TenantPolicyError("fields", "give at least one of weight, max_running, rate, burst")
    return _change(calls, user, fields, [])


def unset_policy(calls: QueueCalls, user_id: str, names: Sequence[str] = ()) -> ScriptCall[None]:
    """Remove fields of a tenant's policy (all when ``names`` is empty): the default
    policy's apply again."""
    return _change(calls, check_tenant(user_id), {}, check_fields(names))


def _change(
    calls: QueueCalls, user: str, fields: Mapping[str, str], unset: Sequence[str]
) -> ScriptCall[None]:
    args: list[Arg] = [user, len(fields), *(x for pair in fields.items() for x in pair)]
    args += [len(unset), *unset]
    return calls.call("tenant_policy", args, lambda _: None, [calls.keys.tenants])


def get_policy(calls: QueueCalls, user_id: str) -> PipelineCall[TenantPolicy]:
    """The policy in effect for a tenant (``"*"``: the default policy)."""
    user = check_tenant(user_id)
    k = calls.keys
    own_key = k.tenant_default if user == DEFAULT_TENANT else k.tenant(user)
    return PipelineCall(
        [("HGETALL", own_key), ("HGETALL", k.tenant_default)],
        lambda r: TenantPolicy.resolve(user, _policy_only(r[0]), r[1]),
    )


def _policy_only(fields: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in fields.items() if name in POLICY_FIELDS}


def list_tenants(calls: QueueCalls, offset: int = 0, limit: int | None = None) -> Steps:
    """Every tenant (a user that ever had a task, or with a policy), by user id, with
    its policy and live figures; ``offset``/``limit`` select a page. Shares and Jain's
    index are over all tenants, whatever the page: of worker seconds when fairness is
    by time (seconds were recorded), else of claims."""
    if offset < 0 or (limit is not None and limit < 0):
        raise ValueError(f"offset and limit must be >= 0, not {offset} and {limit}")
    figures, default, with_policy = yield from _all_figures(calls)
    totals = ShareTotals.of(figures)
    totals.apply(figures)
    page = figures[offset : None if limit is None else offset + limit]
    return {
        "tenants": [f.as_dict() for f in page],
        "total": len(figures),
        "offset": offset,
        "limit": limit,
        "fairness": "time" if totals.by_time else "count",
        "jain_index": None if totals.jain is None else round(totals.jain, 4),
        "default": TenantPolicy.resolve(DEFAULT_TENANT, {}, default).as_dict(),
        "with_policy": with_policy,
    }


def share_totals(calls: QueueCalls) -> ScriptCall[ShareTotals]:
    """The :class:`ShareTotals` of every tenant (what a page of tenants' shares are
    measured against; see :func:`tenant_page`), summed by ``tenant_totals.lua`` on the
    server: a few numbers travel, whatever the number of tenants."""
    k = calls.keys
    keys = [k.all_users, k.tenants, k.stats, k.tenant_default]
    return ScriptCall("tenant_totals", keys, [k.tenant("")], ShareTotals.from_sums)


def tenant_page(calls: QueueCalls, users: Sequence[str], totals: ShareTotals) -> Steps:
    """The figures of a few tenants (as :func:`list_tenants` lists them), their shares
    measured against ``totals``: one round trip, whatever the number of tenants."""
    users = [check_tenant(user) for user in users]
    default, now = yield PipelineCall([("HGETALL", calls.keys.tenant_default), ("TIME",)], list)
    figures = yield from _figures(calls, users, default, _ms(now))
    totals.apply(figures)
    return [f.as_dict() for f in figures]


def _all_figures(calls: QueueCalls) -> Steps:
    """Every tenant's figures by user id, the default policy's fields, and how many
    policies there are (the default counts as one)."""
    k = calls.keys
    users_all, with_policy, default, now = yield PipelineCall(
        [
            ("SMEMBERS", k.all_users),
            ("SMEMBERS", k.tenants),
            ("HGETALL", k.tenant_default),
            ("TIME",),
        ],
        list,
    )
    users = sorted(set(users_all) | set(with_policy))
    figures = yield from _figures(calls, users, default, _ms(now))
    return figures, default, len(with_policy) + (1 if default else 0)


def _ms(time_reply: Sequence[Any]) -> float:
    seconds, micros = time_reply
    return int(seconds) * 1000 + int(micros) / 1000


def _figures(
    calls: QueueCalls, users: Sequence[str], default: Mapping[str, str], now_ms: float
) -> Steps:
    """The figures of these tenants (shares not filled in): their hashes and their
    queued and started counters, in one pipeline."""
    if not users:
        return []
    k = calls.keys
    counted = (TaskState.QUEUED.value, TaskState.STARTED.value)
    commands: list[tuple[Arg, ...]] = [("HMGET", k.tenant(u), *_READ_FIELDS) for u in users]
    commands.append(("HMGET", k.stats, *(f"{state} {u}" for u in users for state in counted)))
    *rows, counters = yield PipelineCall(commands, list)
    figures = []
    for i, (user, values) in enumerate(zip(users, rows, strict=True)):
        fields = {n: v for n, v in zip(_READ_FIELDS, values, strict=True) if v is not None}
        pair = counters[2 * i : 2 * i + 2]
        counts = {state: int(v or 0) for state, v in zip(counted, pair, strict=True)}
        figures.append(tenant_figures(user, fields, default, counts, now_ms))
    return figures
