"""The Lua scripts shipped in ``fairque/lua``, as one Redis Functions library.

Each operation is one ``.lua`` file. A line ``--!include NAME.lua`` is replaced by that
file's text, so shared helpers are written once: :func:`script_source` is a script as
a whole (what ``EVAL`` would run; the tests load it so).

fairque runs them as functions (``FCALL``, Redis 7+ / Valkey 7.2+): :func:`library_source`
puts the helper files (:data:`HELPERS`, with what they include) once at the top of one
library, loaded once per server, and registers each script's own code as a function
(:func:`function_name`). A script run with ``EVAL`` defines every helper again on each
call, about a third of a push's time on the server; a function does not. What a helper
file reads from KEYS and ARGV on each call stands between ``--!per-call`` and
``--!end-per-call``: in the library those variables are declared once and set by an
``init_<file>`` function that each registered function calls first, so the helpers see
the call's values as they do under ``EVAL``. The library's name and its functions' names
carry a hash of its text, so fairque versions with different scripts can share a server.
"""

from __future__ import annotations

import hashlib
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


HELPERS = ("_common.lua", "_claim.lua", "_outcomes.lua")
"""The helper files a script may include, in library order (with what each includes)."""

_PER_CALL = re.compile(r"^--!per-call\b.*?\n(.*?)^--!end-per-call\n", re.MULTILINE | re.DOTALL)
_LOCAL = re.compile(r"^local ([\w, ]+?)(?: = (.*))?$")


def _per_call(block: str) -> tuple[list[str], list[str]]:
    """The names a per-call block declares, and its statements as assignments."""
    names: list[str] = []
    statements: list[str] = []
    for line in block.splitlines():
        match = _LOCAL.match(line)
        if match is None:
            statements.append(line)
            continue
        declared = [name.strip() for name in match.group(1).split(",")]
        names += declared
        value = match.group(2)
        statements.append(f"{', '.join(declared)} = {value if value is not None else 'nil'}")
    return names, statements


@cache
def _library() -> tuple[str, str]:
    """The library's text and the hash its names carry."""
    declared: list[str] = ["KEYS", "ARGV"]
    inits: list[str] = []
    helpers: list[str] = []
    for filename in HELPERS:
        text = _expand(filename, seen=())
        statements: list[str] = []
        for block in _PER_CALL.findall(text):
            names, lines = _per_call(block)
            declared += names
            statements += lines
        helpers.append(_PER_CALL.sub("", text))
        body = "\n".join(f"  {line}" for line in statements)
        inits.append(f"local function {_init_name(filename)}()\n{body}\nend")
    functions = [_function(name) for name in SCRIPT_NAMES]
    text = "\n".join([f"local {', '.join(declared)}", *inits, *helpers, *functions])
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    return f"#!lua name=fairque_{digest}\n" + text.replace("@@", digest), digest


def _init_name(filename: str) -> str:
    return "init" + filename.removesuffix(".lua")


def _function(name: str) -> str:
    """Script ``name`` as a registered function: its helpers' per-call setup, then its own
    code (helper includes dropped: the library holds them; other includes inlined)."""
    text = _read(f"{name}.lua")
    included = [f for f in HELPERS if f"--!include {f}\n" in text + "\n"]
    for filename in HELPERS:
        text = text.replace(f"--!include {filename}\n", "")
    inits = "".join(f"  {_init_name(f)}()\n" for f in included)
    return (
        f"redis.register_function('fq_{name}_@@', function(keys, args)\n"
        f"  KEYS, ARGV = keys, args\n{inits}{expand_includes(text)}\nend)"
    )


def library_source() -> str:
    """The text of the Functions library (``FUNCTION LOAD``) of every script."""
    return _library()[0]


def function_name(script: str) -> str:
    """The name of script ``script``'s function in :func:`library_source`."""
    return f"fq_{script}_{_library()[1]}"
