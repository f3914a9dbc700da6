"""``fairque demo`` runs end to end and shows light users interleaved with a flood."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fairque.demo import FLOOD, LIGHT, run_demo
from tests.timing import budget


def test_run_demo_serves_light_users_among_the_flood(redis_url: str, redis_client: object) -> None:
    served = run_demo(redis_url, flood=30, light=4)
    assert len(served) == 30 + 2 * 4 + 1
    assert all(s.state.value == "finished" for s in served)
    for user in LIGHT:
        last = max(s.position for s in served if s.user_id == user)
        assert last <= 30  # a FIFO queue would serve them after position 30
    flood_positions = [s.position for s in served if s.user_id == FLOOD]
    assert flood_positions[-1] == len(served)


@pytest.mark.slow
def test_demo_command_as_a_new_user_runs_it(redis_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "FAIRQUE_REDIS_URL": redis_url, "FAIRQUE_STATE_DIR": str(tmp_path)}
    result = subprocess.run(
        [
            *(sys.executable, "-m", "fairque.cli.app", "demo", "--flood", "20", "--light", "3"),
            *("--out", str(tmp_path / "pictures")),
        ],
        capture_output=True,
        text=True,
        timeout=budget(60),
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Whole order:" in result.stdout
    assert "user:alice: its 3 tasks were served" in result.stdout
    assert "failure_cleanup" in result.stdout and "the orders API is down" in result.stdout
    pictures = sorted(p.stem for p in (tmp_path / "pictures").iterdir())
    assert pictures == ["failure_cleanup", "orders_etl"]
