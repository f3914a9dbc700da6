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
    "stage",
    "commit",
    "open",
    "unstage",
    "continue",
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

_LOCAL = re.compile(r"^local ([\w, ]+?)(?: = (.*))?$")

Line = tuple[str, str]
"""A line of Lua and where it comes from (``file.lua:N``, or ``library`` when made here)."""


def _lines(filename: str, seen: tuple[str, ...] = ()) -> list[Line]:
    """File ``filename`` with its includes inlined, each line with its origin."""
    if filename in seen:
        raise RuntimeError(f"include cycle in Lua scripts: {' -> '.join((*seen, filename))}")
    out: list[Line] = []
    for number, text in enumerate(_read(filename).splitlines(), start=1):
        match = _INCLUDE.match(text)
        if match is None:
            out.append((text, f"{filename}:{number}"))
        else:
            out += _lines(match.group(1), (*seen, filename))
    return out


def _split_per_call(lines: list[Line]) -> tuple[list[Line], list[Line]]:
    """The lines outside the ``--!per-call`` blocks, and those inside them."""
    kept: list[Line] = []
    per_call: list[Line] = []
    inside = False
    for line in lines:
        if line[0].startswith("--!per-call"):
            inside = True
        elif line[0].startswith("--!end-per-call"):
            inside = False
        else:
            (per_call if inside else kept).append(line)
    return kept, per_call


def _as_assignment(line: Line, declared: list[str]) -> Line:
    """A per-call ``local a, b = x, y`` as ``a, b = x, y`` (the names go to ``declared``)."""
    match = _LOCAL.match(line[0])
    if match is None:
        return line
    names = [name.strip() for name in match.group(1).split(",")]
    declared += names
    value = match.group(2) if match.group(2) is not None else "nil"
    return f"{', '.join(names)} = {value}", line[1]


def _made(text: str) -> Line:
    return text, "library"


@cache
def _library() -> tuple[tuple[Line, ...], str]:
    """The library's lines (with ``@@`` for the hash its names carry) and that hash."""
    declared: list[str] = ["KEYS", "ARGV"]
    inits: list[Line] = []
    helpers: list[Line] = []
    for filename in HELPERS:
        kept, per_call = _split_per_call(_lines(filename))
        helpers += kept
        inits.append(_made(f"local function {_init_name(filename)}()"))
        inits += [_as_assignment(line, declared) for line in per_call]
        inits.append(_made("end"))
    lines = [_made("#!lua name=fairque_@@"), _made(f"local {', '.join(declared)}")]
    lines += inits + helpers
    for name in SCRIPT_NAMES:
        lines += _function(name)
    digest = hashlib.sha1("\n".join(text for text, _ in lines).encode()).hexdigest()[:12]
    return tuple((text.replace("@@", digest), origin) for text, origin in lines), digest


def _init_name(filename: str) -> str:
    return "init" + filename.removesuffix(".lua")


def _function(name: str) -> list[Line]:
    """Script ``name`` as a registered function: its helpers' per-call setup, then its own
    code (helper includes dropped: the library holds them; other includes inlined)."""
    own = _read(f"{name}.lua").splitlines()
    included = [f for f in HELPERS if f"--!include {f}" in own]
    lines = [_made(f"redis.register_function('fq_{name}_@@', function(keys, args)")]
    lines.append(_made("KEYS, ARGV = keys, args"))
    lines += [_made(f"{_init_name(f)}()") for f in included]
    for number, text in enumerate(own, start=1):
        match = _INCLUDE.match(text)
        if match is None:
            lines.append((text, f"{name}.lua:{number}"))
        elif match.group(1) not in HELPERS:
            lines += _lines(match.group(1), (f"{name}.lua",))
    lines.append(_made("end)"))
    return lines


def library_source() -> str:
    """The text of the Functions library (``FUNCTION LOAD``) of every script."""
    return "\n".join(text for text, _ in _library()[0]) + "\n"


def function_name(script: str) -> str:
    """The name of script ``script``'s function in :func:`library_source`."""
    return f"fq_{script}_{_library()[1]}"


_LIBRARY_LINE = re.compile(r"user_function:(\d+):")


def locate_lua_error(message: str) -> str:
    """``message`` of a Lua error in the library with the ``.lua`` file and line it
    points to added (``user_function:2144:`` -> ``user_function:2144 (_common.lua:301):``)."""
    lines = _library()[0]

    def located(match: re.Match[str]) -> str:
        number = int(match.group(1))
        if 1 <= number <= len(lines):
            return f"user_function:{number} ({lines[number - 1][1]}):"
        return match.group(0)

    return _LIBRARY_LINE.sub(located, message, count=1)
