"""JSON Schemas shipped with fairque, and the YAML helpers that report problems by line.

An installed wheel carries the schemas as package data in ``fairque/schemas/``; a
source checkout keeps them in the repository's top-level ``schemas/`` folder. The
helpers here serve every YAML document fairque reads (config files, DAG files): parse
once keeping the node tree, validate against a schema with plain-English messages,
and find the line of a field such as ``workers[0].poll_interval_seconds``.

``yaml`` and ``jsonschema`` are imported by the functions that use them, so that
importing the configuration costs neither until a document is read.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from fairque.core.errors import ConfigError, shorten

if TYPE_CHECKING:
    import yaml
    from jsonschema import Draft202012Validator, ValidationError

# engine/fairque/core/schemas.py: parents[1] is the package, parents[3] the repository.
_HERE = Path(__file__).resolve()
SCHEMA_DIRS = (_HERE.parents[1] / "schemas", _HERE.parents[3] / "schemas")

FieldPath = tuple[str | int, ...]
"""Where a value sits in a document: ``("workers", 0, "poll_interval_seconds")``."""


def schema_path(name: str) -> Path:
    """The file of schema ``name`` (e.g. ``"config.schema.json"``): package data first."""
    for folder in SCHEMA_DIRS:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(folder) for folder in SCHEMA_DIRS)
    raise ConfigError(f"JSON Schema {name!r} not found (searched {searched}); reinstall fairque")


@lru_cache(maxsize=16)
def load_schema(name: str) -> dict[str, Any]:
    """The parsed schema ``name``, read once per process; callers must not mutate it."""
    schema: dict[str, Any] = json.loads(schema_path(name).read_text(encoding="utf-8"))
    return schema


@lru_cache(maxsize=16)
def schema_validator(name: str) -> Draft202012Validator:
    """A Draft 2020-12 validator for schema ``name``, built once per process."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema(name))


def schema_problems(data: Any, name: str) -> list[tuple[FieldPath, str]]:
    """Every way ``data`` breaks schema ``name``, as (field path, message) pairs.

    Messages read like ``must be > 0, not -3``; an unknown key gets its own path and a
    did-you-mean suggestion when a known key is close.
    """
    problems: list[tuple[FieldPath, str]] = []
    for error in schema_validator(name).iter_errors(data):
        path = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.schema, dict):
            known = sorted(error.schema.get("properties", {}))
            for key in (k for k in error.instance if k not in known):
                hint = did_you_mean(str(key), known)
                problems.append(
                    ((*path, key), f"is not a known key{hint}; known keys: {', '.join(known)}")
                )
        else:
            problems.append((path, _message(error)))
    return problems


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


_TYPE_NAMES = {
    "number": "a number",
    "integer": "an integer",
    "string": "a string",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
}
_BOUNDS = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
_SECRETS = frozenset({"password"})


def _message(error: ValidationError) -> str:
    rule, limit = str(error.validator), cast(Any, error.validator_value)
    shown = shorten(error.instance)
    if error.absolute_path and error.absolute_path[-1] in _SECRETS:
        shown = type(error.instance).__name__  # never echo a secret
    if rule == "type":
        kinds = [limit] if isinstance(limit, str) else list(limit)
        return f"must be {' or '.join(_TYPE_NAMES.get(k, k) for k in kinds)}, not {shown}"
    if rule in _BOUNDS:
        return f"must be {_BOUNDS[rule]} {limit}, not {shown}"
    if rule in ("minItems", "minLength") and limit == 1:
        return "must not be empty"
    return f"is invalid: {error.message}"


def read_yaml_file(
    path: str, max_bytes: int, error: Callable[[str, list[str]], Exception]
) -> tuple[Any, yaml.Node | None]:
    """Read and parse one YAML file: its data and node tree (see :func:`parse_yaml`).

    A missing, unreadable, oversized (over ``max_bytes``), non-UTF-8 or malformed
    file, or one whose aliases expand to more than ``MAX_NODES`` nodes (a YAML bomb,
    refused before it is built), raises ``error(path, [problem])``, e.g.
    ``ConfigFileError`` or ``DagFileError``: config and DAG files share this guard.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as e:
        raise error(path, [read_problem(e)]) from (None if isinstance(e, FileNotFoundError) else e)
    return parse_yaml_bytes(path, raw, max_bytes, error)


def read_problem(error: OSError) -> str:
    """What is wrong with a file that cannot be read."""
    if isinstance(error, FileNotFoundError):
        return "file not found"
    return f"cannot read the file: {error.strerror or error}"


def parse_yaml_bytes(
    path: str, raw: bytes, max_bytes: int, error: Callable[[str, list[str]], Exception]
) -> tuple[Any, yaml.Node | None]:
    """Parse the bytes of the YAML file ``path`` as :func:`read_yaml_file` does (for a
    caller that has read them already, e.g. to hash them)."""
    import yaml

    if len(raw) > max_bytes:
        raise error(path, [f"file is larger than the limit of {max_bytes} bytes"])
    try:
        return parse_yaml(raw.decode("utf-8-sig"), MAX_NODES)
    except UnicodeDecodeError as e:
        raise error(path, [f"not UTF-8 text (bad byte at offset {e.start})"]) from None
    except YamlBombError as e:
        raise error(path, [str(e)]) from None
    except yaml.YAMLError as e:
        raise error(path, [yaml_error_text(e)]) from None


MAX_NODES = 200_000
"""Most YAML nodes a config or DAG file may expand to (aliases counted each time they
are used)."""


class YamlBombError(ValueError):
    """A YAML document expands through its aliases to more than its node limit."""


def parse_yaml(text: str, max_nodes: int | None = None) -> tuple[Any, yaml.Node | None]:
    """The document's data (as ``yaml.safe_load``) and its node tree, from one parse.

    Raises ``yaml.YAMLError``; :func:`yaml_error_text` turns it into one line. With
    ``max_nodes``, a node tree expanding to more nodes raises :class:`YamlBombError`
    before any data is built. libyaml's ``CSafeLoader`` parses when PyYAML has it
    (about 10 times faster, the same safe_load semantics); a document it refuses is
    parsed again by the pure-Python ``SafeLoader``, whose error messages are the ones
    fairque has always shown.
    """
    import yaml

    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return _parse_with(fast, text, max_nodes)
        except yaml.YAMLError:
            pass  # the pure-Python loader raises it again, with its own words
    return _parse_with(yaml.SafeLoader, text, max_nodes)


def _parse_with(
    loader_class: Any, text: str, max_nodes: int | None
) -> tuple[Any, yaml.Node | None]:
    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        bomb = None if max_nodes is None else expansion_problem(root, max_nodes)
        if bomb:
            raise YamlBombError(bomb)
        return (None if root is None else loader.construct_document(root)), root
    finally:
        loader.dispose()


def expansion_problem(root: yaml.Node | None, limit: int = MAX_NODES) -> str | None:
    """A message when the node tree expands (through aliases) to more than ``limit``
    nodes, as a billion-laughs YAML bomb does; the walk stops at the limit."""
    import yaml

    stack = [] if root is None else [root]
    seen = 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > limit:
            return (
                f"the YAML expands to more than {limit} nodes through aliases (a 'YAML "
                "bomb'?); refused"
            )
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend((key, value))
    return None


def yaml_error_text(error: yaml.YAMLError) -> str:
    """``line 3, column 5: invalid YAML: <problem>`` for a parse error."""
    import yaml

    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        return f"{where}invalid YAML: {error.problem or error}"
    return f"invalid YAML: {error}"


def line_of(node: yaml.Node | None, path: Sequence[str | int]) -> int | None:
    """The 1-based line of ``path`` in a YAML node tree, else of its nearest enclosing entry."""
    import yaml

    line = _line(node)
    for part in path:
        if isinstance(node, yaml.MappingNode):
            pairs = [(k, v) for k, v in node.value if getattr(k, "value", None) == str(part)]
            if not pairs:
                return line
            line, node = _line(pairs[-1][0]), pairs[-1][1]  # the last duplicate key wins
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = _line(node)
        else:
            return line
    return line


def _line(node: yaml.Node | None) -> int | None:
    mark = None if node is None else node.start_mark
    return None if mark is None else mark.line + 1
