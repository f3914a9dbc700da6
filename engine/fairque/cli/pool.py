"""``fairque pool set|unset|list``: named pools of slots shared by all workers."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from fairque.cli.common import (
    JsonOption,
    PrefixOption,
    RedisUrlOption,
    StateDirOption,
    cli_errors,
    console,
    open_queue,
)

pool_app = typer.Typer(
    help=(
        "Pools: at most SLOTS tasks naming a pool (pool: in @task, YAML, default_args) run "
        "at once across all workers. A change applies at once."
    )
)
NameArgument = Annotated[str, typer.Argument(help="The pool's name.")]


@pool_app.command("set")
def set_pool(
    name: NameArgument,
    slots: Annotated[int, typer.Option("--slots", help="Tasks of the pool running at once.")],
    prefix: PrefixOption = "fq",
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Declare a pool with SLOTS slots, or change its slots (0 holds its tasks)."""
    with cli_errors(), open_queue(redis_url, state_dir, stats_prefix=prefix) as queue:
        queue.set_pool(name, slots)
        console.print(f"pool {name}: {slots} slots")


@pool_app.command("unset")
def unset_pool(
    name: NameArgument,
    prefix: PrefixOption = "fq",
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Remove a pool: its queued tasks run without a limit; pushes naming it are refused."""
    with cli_errors(), open_queue(redis_url, state_dir, stats_prefix=prefix) as queue:
        queue.unset_pool(name)
        console.print(f"pool {name} removed")


@pool_app.command("list")
def list_pools(
    as_json: JsonOption = False,
    prefix: PrefixOption = "fq",
    redis_url: RedisUrlOption = None,
    state_dir: StateDirOption = None,
) -> None:
    """Every pool: slots, running and queued tasks."""
    with cli_errors(), open_queue(redis_url, state_dir, stats_prefix=prefix) as queue:
        pools = queue.list_pools()
    if as_json:
        typer.echo(json.dumps(pools, indent=2))
        return
    if not pools:
        console.print("no pools")
        return
    table = Table("pool", "slots", "running", "queued", box=box.SIMPLE)
    for pool in pools:
        table.add_row(pool["pool"], str(pool["slots"]), str(pool["running"]), str(pool["queued"]))
    console.print(table)
