"""Run the fairque CLI from a source checkout: ``python cli.py ...`` == ``fairque ...``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _main() -> None:
    """Make ``engine/`` importable when fairque is not installed, then run the CLI."""
    if importlib.util.find_spec("fairque") is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent / "engine"))
    from fairque.cli.app import main

    main()


if __name__ == "__main__":
    _main()
