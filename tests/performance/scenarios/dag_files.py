"""DAG files at scale: ``fairque dag validate`` and ``fairque dag list --json`` over a
generated folder of N YAML DAGs (10 chained tasks each), cold and warm.

Each command runs as a user runs it: the real CLI in a subprocess (``python -m
fairque.cli.app``, bytecode cached as in an installed package), its wall time from
start to exit, start-up included. Cold: the state folder's DAG cache is removed first,
so every file is parsed, checked and recorded; warm: the folder is unchanged since the
previous run (its files aged past the cache's racy window, as a folder not edited in
the last seconds). Each figure is the best of :data:`TRIES` runs, as wall time and as
CPU time (user + system of the process: what a shared machine moves less).
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.performance.common import REPO_ROOT
from tests.performance.context import Bench
from tests.performance.dag_folder import write_dags

SCENARIO = "dag_files"
TRIES = 3
TIMEOUT = 600.0
ALLOWED = "tests.performance"  # the generated DAGs call tests.performance.jobs:noop


def figure_name(command: str, count: int, warmth: str) -> str:
    """``dag validate, 1,000 files, warm``."""
    return f"{command}, {count:,} files, {warmth}"


def run(bench: Bench) -> None:
    tries = 1 if bench.reps == 1 else TRIES
    with tempfile.TemporaryDirectory(prefix="fairque-dag-files-") as temporary:
        root = Path(temporary)
        for count in bench.sizes.dag_file_counts:
            folder = root / f"dags_{count}"
            write_dags(folder, count)
            _age(folder)
            commands = {
                "dag validate": ["validate", str(folder), "--allowed-modules", ALLOWED],
                "dag list --json": ["list", "--json", "--dags-folder", str(folder)],
            }
            for command, args in commands.items():
                state = root / "state"
                cold = min(_timed(bench, args, state, fresh=True) for _ in range(tries))
                warm = min(_timed(bench, args, state, fresh=False) for _ in range(tries))
                for warmth, (seconds, cpu) in (("cold", cold), ("warm", warm)):
                    name = figure_name(command, count, warmth)
                    for figure, value in ((name, seconds), (f"{name}, CPU", cpu)):
                        bench.figures.add(
                            "fairque",
                            SCENARIO,
                            figure,
                            value,
                            "s",
                            higher_is_better=False,
                            note=f"best of {tries}, CLI start-up included",
                        )
                bench.say(
                    f"{command}, {count:,} files: cold {cold[0]:.2f} s ({cold[1]:.2f} s CPU), "
                    f"warm {warm[0]:.2f} s ({warm[1]:.2f} s CPU)"
                )
            shutil.rmtree(folder)


def _timed(bench: Bench, args: list[str], state: Path, fresh: bool) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one ``fairque dag ...`` (it must
    succeed); ``fresh`` empties the DAG cache first. On a shared machine the CPU
    figure moves less than the wall time."""
    if fresh:
        shutil.rmtree(state / "dag-cache", ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(FAIRQUE_STATE_DIR=str(state), FAIRQUE_REDIS_URL=bench.redis_url)
    env.pop("FAIRQUE_DAG_CACHE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "fairque.cli.app", "dag", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    took = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"fairque dag {' '.join(args)} failed: {done.stderr[-2000:]!r}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return took, cpu


def _age(folder: Path, seconds: float = 10.0) -> None:
    """Move the files' mtimes into the past (a folder not being edited right now)."""
    back = int(seconds * 1e9)
    for file in folder.iterdir():
        stat = file.stat()
        os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns - back))
