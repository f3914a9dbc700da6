"""The state one benchmark run hands to every scenario."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis
from rich.console import Console

from tests.performance.common import Figures, Sizes
from tests.performance.jobs import BODIES, SINK, parse_entry
from tests.performance.procs import Launcher


@dataclass
class Bench:
    """The server, the sizes and repetitions, and where figures go."""

    redis_url: str
    client: redis.Redis
    sizes: Sizes
    reps: int
    peer_fairness_reps: int  # repetitions of the (slow) fairness scenarios for peers
    figures: Figures
    launcher: Launcher
    console: Console
    bodies: tuple[str, ...] = BODIES  # the task bodies the body-aware scenarios run
    notes: list[str] = field(default_factory=list)

    def flush(self) -> None:
        """Empty the benchmark database (between scenarios and repetitions).

        SYNC: with lazy freeing (Valkey's default) a plain FLUSHDB frees memory in the
        background, which would skew the memory figures and load the next scenario.
        """
        self.client.execute_command("FLUSHDB", "SYNC")

    def say(self, text: str) -> None:
        self.console.print(f"  [dim]{text}[/dim]")

    def sink_size(self) -> int:
        return int(self.client.llen(SINK))

    def sink(self) -> list[tuple[str, float]]:
        """Every (token, start time) stamped so far, in the order the tasks started."""
        return [parse_entry(e) for e in self.client.lrange(SINK, 0, -1)]

    def fairness_reps(self, system: str) -> int:
        return self.reps if system == "fairque" else min(self.reps, self.peer_fairness_reps)
