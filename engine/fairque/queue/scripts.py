"""Loading of the Lua scripts shipped in ``fairque/lua``.

Each operation is one ``.lua`` file. A line ``--!include NAME.lua`` is replaced by that
file's text, so shared helpers are written once. Scripts are registered with redis-py's
``register_script``, which runs EVALSHA and reloads the script on NOSCRIPT (after a
server restart or SCRIPT FLUSH).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

SCRIPT_NAMES = (
    "push",
    "pop",
    "finish",
    "fail",
    "requeue",
    "extend",
    "cancel",
    "delete",
    "promote",
    "reclaim",
    "trim",
    "settle",
    "xcom_push",
    "xcom_pull",
    "lock",
    "unlock",
    "advance",
    "claim_due",
    "fire",
    "watch",
    "clear",
    "tenant_policy",
    "pool",
    "tenants",
    "tenant_totals",
)

_INCLUDE = re.compile(r"^--!include (\S+)$", re.MULTILINE)


@cache
def script_source(name: str) -> str:
    """The full text of script ``name`` with its includes inlined."""
    return _expand(f"{name}.lua", seen=())


def _read(filename: str) -> str:
    return resources.files("fairque.lua").joinpath(filename).read_text(encoding="utf-8")


def expand_includes(text: str, seen: tuple[str, ...] = ()) -> str:
    """``text`` with every ``--!include NAME.lua`` line replaced by that file of
    ``fairque/lua``, itself expanded (how the scripts are built; tests use it too)."""

    def inline(match: re.Match[str]) -> str:
        return _expand(match.group(1), seen)

    return _INCLUDE.sub(inline, text)


def _expand(filename: str, seen: tuple[str, ...]) -> str:
    if filename in seen:
        raise RuntimeError(f"include cycle in Lua scripts: {' -> '.join((*seen, filename))}")
    return expand_includes(_read(filename), (*seen, filename))
