"""A task module that imports dangerous things, for the import-rule tests: no
``module:path`` may reach them through it (importable as tests.unit.bypass_tasks)."""

from __future__ import annotations

import builtins  # noqa: F401  (reached through by the tests)
import importlib  # noqa: F401
import os  # noqa: F401
import subprocess  # noqa: F401
import sys  # noqa: F401
from json import dumps  # noqa: F401  (a re-exported function of a disallowed module)
from subprocess import run  # noqa: F401

from fairque import task
from tests.unit import sample_tasks  # noqa: F401  (a module object outside the allowlist)

CALLS: list[str] = []


class Greeter:
    """A class: neither it nor anything inside it is a task function."""

    def __init__(self) -> None:
        CALLS.append("init")

    def hello(self) -> str:
        return "hello"

    @staticmethod
    def static() -> str:
        return "static"


def fine(value: str) -> str:
    """A plain module-level function: the only kind of thing the rule lets through."""
    CALLS.append(value)
    return value


@task
def wrapped(value: str) -> str:
    """An @task function: resolves to the function it wraps."""
    return value


class FakeWrapper:
    """Claims to wrap a function, but wraps a builtin."""

    __fairque_function__ = print


fake = FakeWrapper()
