"""Lazy public names of a package (PEP 562), so that importing the package is cheap.

A package lists its public names in a table (name -> module defining it) and imports
them under ``if TYPE_CHECKING:`` for mypy and IDEs; at run time a name's module is
imported on first access::

    _EXPORTS = {"TaskQueue": "fairque.queue.sync_queue"}
    if TYPE_CHECKING:
        from fairque.queue.sync_queue import TaskQueue
    else:
        __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package`` for ``exports``.

    ``__getattr__(name)`` imports ``exports[name]``, stores the attribute of that
    name in ``package`` (so later lookups are plain) and returns it; any other name
    raises AttributeError, which also lets ``from package import submodule`` import
    the submodule. ``__dir__()`` lists the package's globals and every export.
    """

    def __getattr__(name: str) -> object:
        try:
            module = exports[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
