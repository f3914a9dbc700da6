"""``fairque tenant set|unset|show|list``: tenant policies and their live figures."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Column, Table

from fairque.cli.common import (
    JsonOption,
    PrefixOption,
    RedisUrlOption,
    StateDirOption,
    cli_errors,
    console,
    open_queue,
)

tenant_app = typer.Typer(
    help=(
        "Tenant policies: weight (share of service), max running tasks, rate limit. "
        "USER '*' is the default policy of tenants without their own. Every worker obeys "
        "a change from its next claim."
    )
)
UserArgument = Annotated[str, typer.Argument(help="The tenant's user id ('*': the default).")]


@tenant_app.command("set")
def set_policy(
    user: UserArgument,
    weight: Annotated[
        float | None, typer.Option(help="Share of service relative to others (default 1).")
    ] = None,
    max_running: Annotated[
        str | None,
        typer.Option(help="Most tasks started at once across all workers, or 'unlimited'."),
    ] = None,
    rate: Annotated[
        str | None, typer.Option(help="Task starts per second: R/s, R/m, R/h, or 'unlimited'.")
    ] = None,
    burst: Annotated[
        int | None, typer.Option(help="Starts allowed at once within the rate.")
    ] = None,
    as_json: JsonOption = False,
    prefix: PrefixOption = "fq",
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Set fields of a tenant's policy (the others keep their value)."""
    with cli_errors(), open_queue(redis_url, state_dir, stats_prefix=prefix) as queue:
        policy = queue.set_tenant_policy(
            user, weight=weight, max_running=max_running, rate=rate, burst=burst
        )
        _print_policy(policy.as_dict(), as_json)


@tenant_app.command("unset")
def unset_policy(
    user: UserArgument,
    fields: Annotated[
        list[str] | None,
        typer.Argument(help="Fields to remove (weight, max_running, rate, burst); all if none."),
    ] = None,
    as_json: JsonOption = False,
    prefix: PrefixOption = "fq",
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Remove a tenant's own policy fields: the default policy applies to them again."""
    with cli_errors(), open_queue(redis_url, state_dir, stats_prefix=prefix) as queue:
        policy = queue.unset_tenant_policy(user, *(fields or ()))
        _print_policy(policy.as_dict(), as_json)


@tenant_app.command("show")
def show(
    user: UserArgument,
    as_json: JsonOption = False,
    prefix: PrefixOption = "fq",
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """A tenant's policy in effect and its live figures."""
    with cli_errors(), open_queue(redis_url, state_dir, stats_prefix=prefix) as queue:
        if user == "*":
            _print_policy(queue.get_tenant_policy(user).as_dict(), as_json)
            return
        # this tenant's figures against the totals summed on the server: O(1) in tenants
        entry = queue.tenant_page([user], queue.tenant_share_totals())[0]
    if as_json:
        console.print_json(json.dumps(entry))
        return
    for name, value in entry.items():
        console.print(f"{name}: {escape(_text(value))}")


@tenant_app.command("list")
def list_(
    limit: Annotated[int, typer.Option(min=0, help="Tenants shown (by user id).")] = 50,
    offset: Annotated[int, typer.Option(min=0, help="Tenants skipped first (paging).")] = 0,
    as_json: JsonOption = False,
    prefix: PrefixOption = "fq",
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Every tenant (by user id, a page of them) with its policy and live figures:
    queued, running vs cap, rate tokens, served in the last minute, share of service vs
    fair share; Jain's index over weight-normalised shares."""
    with cli_errors(), open_queue(redis_url, state_dir, stats_prefix=prefix) as queue:
        listing = queue.list_tenants(offset=offset, limit=limit)
    if as_json:
        console.print_json(json.dumps(listing))
        return
    console.print(tenants_table(listing))


def tenants_table(listing: dict[str, Any]) -> Table:
    """The table of ``fairque tenant list`` (and of ``queue stats``)."""
    headers = ["user", "weight", "running/cap", "rate", "tokens", "queued", "served/min"]
    headers += ["share", "fair share", "parked"]
    shown = len(listing["tenants"])
    jain = listing.get("jain_index")
    caption = (
        f"{listing['offset'] + 1}-{listing['offset'] + shown} of {listing['total']} tenants · "
        f"fairness by {listing['fairness']} · Jain's index "
        f"{'-' if jain is None else f'{jain:.3f}'}"
    )
    table = Table(
        *(Column(h, overflow="fold") for h in headers),
        box=box.SIMPLE_HEAD,
        padding=0,
        caption=caption if shown else f"no tenants on this page of {listing['total']}",
    )
    for t in listing["tenants"]:
        cap = "-" if t["max_running"] is None else str(t["max_running"])
        table.add_row(
            escape(t["user_id"]),
            f"{t['weight']:g}",
            f"{t['running']}/{cap}",
            "-" if t["rate"] is None else f"{t['rate']:g}/s (burst {t['burst']})",
            "-" if t["tokens"] is None else f"{t['tokens']:.1f}",
            str(t["queued"]),
            f"{t['served_last_minute']:.0f}",
            f"{t['share']:.1%}",
            f"{t['fair_share']:.1%}",
            ",".join(t["parked"]) or "-",
        )
    return table


def _print_policy(policy: dict[str, Any], as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(policy))
        return
    for name in ("user_id", "weight", "max_running", "rate", "burst"):
        console.print(f"{name}: {escape(_text(policy[name]))}")
    console.print(f"own fields: {', '.join(policy['own']) or '- (the default policy)'}")


def _text(value: object) -> str:
    if value is None:
        return "unlimited"
    if isinstance(value, list):
        return ",".join(map(str, value)) or "-"
    return str(value)
