"""Run fairque's benchmark suite (and its peers): ``python tests/performance/run_benchmarks.py``.

See tests/performance/README.md. ``main(argv)`` is the entry point for ``fairque bench``.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if __name__ == "__main__":  # run as a script: import the suite from the repository root
    sys.path[0] = _ROOT
elif _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.performance.suite import main  # noqa: E402

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
