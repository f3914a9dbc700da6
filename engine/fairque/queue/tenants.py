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
    TenantPolicy,
    TenantPolicyError,
    check_fields,
    check_tenant,
    encode_policy,
    share_out,
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
    k = calls.keys
    users_all, with_policy, counters, default, (secs, micros) = yield PipelineCall(
        [
            ("SMEMBERS", k.all_users),
            ("SMEMBERS", k.tenants),
            ("HGETALL", k.stats),
            ("HGETALL", k.tenant_default),
            ("TIME",),
        ],
        list,
    )
    now_ms = int(secs) * 1000 + int(micros) / 1000
    users = sorted(set(users_all) | set(with_policy))
    rows = yield PipelineCall([("HMGET", k.tenant(u), *_READ_FIELDS) for u in users], list)
    figures = []
    for user, values in zip(users, rows, strict=True):
        fields = {n: v for n, v in zip(_READ_FIELDS, values, strict=True) if v is not None}
        counts = {
            state: int(counters.get(f"{state} {user}", 0))
            for state in (TaskState.QUEUED.value, TaskState.STARTED.value)
        }
        figures.append(tenant_figures(user, fields, default, counts, now_ms))
    by_time = any(f.work_last_minute > 0 for f in figures)  # recorded with fairness: time
    jain = share_out(figures, by_time)
    page = figures[offset : None if limit is None else offset + limit]
    return {
        "tenants": [f.as_dict() for f in page],
        "total": len(figures),
        "offset": offset,
        "limit": limit,
        "fairness": "time" if by_time else "count",
        "jain_index": None if jain is None else round(jain, 4),
        "default": TenantPolicy.resolve(DEFAULT_TENANT, {}, default).as_dict(),
        "with_policy": len(with_policy) + (1 if default else 0),
    }
