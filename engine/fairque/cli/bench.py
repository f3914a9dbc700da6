"""``fairque bench``: the benchmark suite of a source checkout (tests/performance)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import typer

from fairque.cli.common import fail

SUITE = Path("tests") / "performance" / "run_benchmarks.py"


def bench(ctx: typer.Context) -> None:
    """Measure fairque and its peers side by side (options: see --quick, --peers, --reps
    in tests/performance/README.md); run from the repository root after
    `uv sync --group bench`."""
    script = Path.cwd() / SUITE
    if not script.is_file():
        fail(f"no {SUITE} here: run `fairque bench` from the root of a fairque checkout")
    spec = importlib.util.spec_from_file_location("fairque_run_benchmarks", script)
    if spec is None or spec.loader is None:
        fail(f"cannot load {script}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    raise typer.Exit(int(module.main(list(ctx.args))))
