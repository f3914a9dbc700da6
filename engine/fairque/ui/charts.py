"""The overview's small charts: samples kept in memory (bounded) and drawn as SVG
polylines, with no chart service and no script."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SAMPLE_EVERY_SECONDS = 2.0
MAX_SAMPLES = 180
"""Six minutes at one sample every two seconds."""


@dataclass(frozen=True)
class Sample:
    """One reading of the overview: when, tasks ended per second, oldest wait."""

    at: float
    throughput: float
    oldest_wait: float


class Samples:
    """The latest :data:`MAX_SAMPLES` readings, at most one per
    :data:`SAMPLE_EVERY_SECONDS` (thread-safe: pages are served from a thread pool)."""

    def __init__(self, maxlen: int = MAX_SAMPLES, every: float = SAMPLE_EVERY_SECONDS) -> None:
        self._items: deque[Sample] = deque(maxlen=maxlen)
        self._every = every
        self._lock = threading.Lock()

    def record(self, overview: dict[str, Any]) -> None:
        """Keep a reading of an overview document if the last one is old enough."""
        sample = Sample(
            float(overview["server_time"]),
            float(overview["throughput_per_second"]),
            float(overview["oldest_queued_age"] or 0.0),
        )
        with self._lock:
            if not self._items or sample.at - self._items[-1].at >= self._every:
                self._items.append(sample)

    def snapshot(self) -> list[Sample]:
        with self._lock:
            return list(self._items)


@dataclass(frozen=True)
class Chart:
    """An SVG line chart's geometry: the polyline's points and the largest value."""

    points: str
    peak: float
    latest: float
    width: int
    height: int
    count: int = 0
    """How many samples it draws (a line needs two)."""


def line_chart(values: Sequence[float], width: int = 300, height: int = 60) -> Chart:
    """Points of a polyline scaling ``values`` into ``width`` x ``height`` (bottom = 0)."""
    if not values:
        return Chart("", 0.0, 0.0, width, height)
    peak = max(values) or 1.0
    step = width / max(1, len(values) - 1)
    pad = 2
    points = " ".join(
        f"{i * step:.1f},{pad + (height - 2 * pad) * (1 - v / peak):.1f}"
        for i, v in enumerate(values)
    )
    return Chart(points, max(values), values[-1], width, height, len(values))


def charts(samples: Sequence[Sample]) -> dict[str, Chart]:
    """The overview's charts: throughput and oldest wait."""
    return {
        "throughput": line_chart([s.throughput for s in samples]),
        "oldest_wait": line_chart([s.oldest_wait for s in samples]),
    }
