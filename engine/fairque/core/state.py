"""The state folder: where the embedded server and the DAG cache keep their files.

``$FAIRQUE_STATE_DIR``, else ``./.fairque``. A module of its own so that finding the
folder imports nothing (the embedded server's module imports the Redis client).
"""

from __future__ import annotations

import os
from pathlib import Path

STATE_DIR_ENV = "FAIRQUE_STATE_DIR"
DEFAULT_STATE_DIR = ".fairque"


def state_folder() -> Path:
    """``$FAIRQUE_STATE_DIR``, else ``./.fairque``, as an absolute path."""
    found = os.environ.get(STATE_DIR_ENV) or Path.cwd() / DEFAULT_STATE_DIR
    return Path(found).expanduser().absolute()


__all__ = ["DEFAULT_STATE_DIR", "STATE_DIR_ENV", "state_folder"]
