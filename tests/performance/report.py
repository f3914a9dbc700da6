"""The results: a rich table (fairque beside each peer), the targets, and the JSON file."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from tests.performance.common import Figure, Figures
from tests.performance.jobs import BODIES, body_name
from tests.performance.scenarios import (
    ceiling,
    dag,
    dashboard,
    enqueue,
    fairness,
    latency,
    memory,
    stalls,
    throughput,
)
from tests.performance.systems import FAIR

RATE_UNITS = ("tasks/s",)


# --- formatting -------------------------------------------------------------------------


def number(value: float, unit: str) -> str:
    """A value in a width that suits its unit."""
    if math.isnan(value):
        return "-"
    if unit in ("tasks/s", "ops/s", "bytes"):
        return f"{value:,.0f}"
    if unit == "index":
        return f"{value:.3f}"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value >= 1 else f"{value:.2g}"


def cell(figure: Figure) -> str:
    """Median, and min-max over the repetitions when there are several."""
    mark = ">" if figure.censored else ""
    text = mark + number(figure.median, figure.unit)
    if len(figure.reps) > 1:
        text += f" ({number(figure.low, figure.unit)}-{number(figure.high, figure.unit)})"
    return text


def advantage(fq: Figure, peer: Figure) -> str:
    """How many times better fairque is than the peer (>1: fairque is better)."""
    a, b = fq.median, peer.median
    if any(math.isnan(x) or x <= 0 for x in (a, b)):
        return ""
    ratio = a / b if fq.higher_is_better else b / a
    if fq.censored and peer.censored:
        return "x?"
    prefix = ">" if peer.censored else "<" if fq.censored else ""
    return f"{prefix}x{ratio:.2g}" if ratio < 10 else f"{prefix}x{ratio:,.0f}"


# --- the table --------------------------------------------------------------------------


def fairque_figure(figures: Figures, scenario: str, name: str) -> Figure | None:
    """fairque's figure for a row; a peer's "queue per user" row compares with the same
    figure of fairque, which has a single layout."""
    found = figures.get("fairque", scenario, name)
    if found is None and name.endswith(fairness.PER_USER_SUFFIX):
        found = figures.get("fairque", scenario, name.removesuffix(fairness.PER_USER_SUFFIX))
    return found


def ceiling_share(figures: Figures, figure: Figure) -> str:
    """A fairque rate as a share of the EVALSHA ceiling."""
    top = figures.get("fairque", ceiling.SCENARIO, ceiling.EVALSHA)
    if top is None or figure.unit not in RATE_UNITS or figure.system != "fairque":
        return ""
    return f"{figure.median / top.median:.0%}"


def table(figures: Figures, peers: Sequence[str]) -> Table:
    """One row per figure: fairque, its share of the Redis ceiling, then each peer with
    fairque's advantage over it."""
    out = Table(title="fairque benchmarks (median of repetitions, min-max in brackets)")
    out.add_column("scenario")
    out.add_column("figure")
    out.add_column("unit")
    out.add_column("fairque", justify="right")
    out.add_column("of ceiling", justify="right")
    for peer in peers:
        out.add_column(f"{peer} (fairque x)", justify="right")
    rows = list(dict.fromkeys(f.key for f in figures.items))
    for scenario, name in rows:
        fq = fairque_figure(figures, scenario, name)
        cells = [scenario, name, _unit(figures, scenario, name)]
        cells += [cell(fq), ceiling_share(figures, fq)] if fq else ["", ""]
        for peer in peers:
            theirs = figures.get(peer, scenario, name)
            if theirs is None:
                cells.append("")
            else:
                ratio = advantage(fq, theirs) if fq else ""
                cells.append(f"{cell(theirs)} [dim]{ratio}[/dim]" if ratio else cell(theirs))
        out.add_row(*cells)
    out.caption = (
        "fairque x: how many times better fairque is than that peer (>1: fairque better; "
        "for waits and latencies, lower is better). '>' marks a lower bound (some tasks "
        "had not started when the scenario's time ran out)."
    )
    return out


def _unit(figures: Figures, scenario: str, name: str) -> str:
    for figure in figures.items:
        if figure.key == (scenario, name):
            return figure.unit
    return ""


# --- targets ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A target of the issue, the figure that measures it, and whether it was met."""

    target: str
    measured: str
    result: str  # met | missed | n/a


def _median(figures: Figures, system: str, scenario: str, name: str) -> float | None:
    figure = figures.get(system, scenario, name)
    return None if figure is None or not figure.reps else figure.median


def _best_peer(
    figures: Figures, peers: Sequence[str], scenario: str, name: str
) -> tuple[str, float] | None:
    found = [(p, v) for p in peers if (v := _median(figures, p, scenario, name)) is not None]
    return max(found, key=lambda pv: pv[1]) if found else None


def _judge(ok: bool | None) -> str:
    return "n/a" if ok is None else "met" if ok else "missed"


def targets(
    figures: Figures, peers: Sequence[str], backlogs: Sequence[int], users: Sequence[int]
) -> list[Target]:
    """Every target of the issue that this run measured, met or missed."""
    out: list[Target] = []
    for body in BODIES:
        out.append(
            _versus_peers(
                figures,
                peers,
                throughput.SCENARIO,
                body_name(throughput.ONE_WORKER, body),
                2.0,
                f"1 worker process drains >= 2x the fastest peer ({body} body)",
            )
        )
    out += [_processes(figures, body) for body in BODIES]
    out.append(
        _versus_peers(
            figures,
            [p for p in peers if p == "huey"],
            enqueue.SCENARIO,
            enqueue.ONE,
            1.5,
            "one-at-a-time enqueue >= 1.5x Huey",
        )
    )
    out.append(
        _versus_peers(
            figures,
            [p for p in peers if p == "rq"],
            enqueue.SCENARIO,
            enqueue.batch_name(100),
            1.0,
            "batches of 100 >= RQ's enqueue_many (same ceiling: same run)",
        )
    )
    out.append(_latency(figures, peers))
    out.append(_flat_waits(figures, backlogs))
    gap = _median(figures, "fairque", dag.SCENARIO, dag.P50)
    out.append(
        Target(
            "DAG task-to-task p50 < 1 ms",
            "-" if gap is None else f"{gap:.2f} ms",
            _judge(None if gap is None else gap < 1.0),
        )
    )
    out.append(_pop_cost(figures, users))
    size = _median(figures, "fairque", memory.SCENARIO, memory.NO_PAYLOAD)
    out.append(
        Target(
            "<= 300 bytes of Redis memory per queued task (no payload)",
            "-" if size is None else f"{size:,.0f} bytes",
            _judge(None if size is None else size <= 300),
        )
    )
    out.append(_dashboard(figures))
    out.append(_stalls(figures))
    out.append(_clear_stall(figures))
    return out


def _stall_pings(figures: Figures, of_clear: bool) -> list[Figure]:
    """The stalls scenario's worst-PING figures: of clear_run, or of the others."""
    return [
        f
        for f in figures.items
        if f.system == "fairque"
        and f.scenario == stalls.SCENARIO
        and "PING" in f.name
        and ("clear_run" in f.name) == of_clear
    ]


def _stalls(figures: Figures) -> Target:
    """Item 5: no call keeps another client waiting 20 ms or more."""
    text = f"worst PING of another client < {stalls.TARGET_MS:.0f} ms during big writes/releases"
    timed = _stall_pings(figures, of_clear=False)
    if not timed:
        return Target(text, "-", "n/a")
    worst = max(timed, key=lambda f: f.median)  # medians of the repetitions, as elsewhere
    highest = max(max(f.reps) for f in timed)
    measured = f"worst median {worst.median:.1f} ms ({worst.name}); highest rep {highest:.1f} ms"
    return Target(text, measured, _judge(worst.median < stalls.TARGET_MS))


def _clear_stall(figures: Figures) -> Target:
    """The same bound for clear_run of a large failed run, apart: item 5 names the batch,
    the release and the DAG run, and clear_run is one call (not bounded yet)."""
    text = f"worst PING < {stalls.TARGET_MS:.0f} ms during clear_run of a large failed run"
    timed = _stall_pings(figures, of_clear=True)
    if not timed:
        return Target(text, "-", "n/a")
    worst = max(f.median for f in timed)
    return Target(text, f"{worst:.1f} ms", _judge(worst < stalls.TARGET_MS))


def _processes(figures: Figures, body: str) -> Target:
    count = throughput.processes_count()
    text = f"{count} worker processes >= 1.7x one process ({body} body)"
    one = _median(figures, "fairque", throughput.SCENARIO, body_name(throughput.ONE_WORKER, body))
    name = body_name(throughput.processes_name(count), body)
    many = _median(figures, "fairque", throughput.SCENARIO, name)
    if one is None or many is None:
        return Target(text, "-", "n/a")
    return Target(
        text, f"{many:,.0f}/s vs {one:,.0f}/s = x{many / one:.2f}", _judge(many >= 1.7 * one)
    )


def _latency(figures: Figures, peers: Sequence[str]) -> Target:
    text = "push-to-start p50 on an idle worker <= Huey's"
    mine = _median(figures, "fairque", latency.SCENARIO, latency.P50)
    theirs = _median(figures, "huey", latency.SCENARIO, latency.P50) if "huey" in peers else None
    if mine is None or theirs is None:
        return Target(text, "-" if mine is None else f"{mine:.2f} ms (Huey not measured)", "n/a")
    return Target(text, f"{mine:.2f} ms vs Huey {theirs:.2f} ms", _judge(mine <= theirs))


def _dashboard(figures: Figures) -> Target:
    """Issue 14: every dashboard page and API call under 200 ms."""
    text = f"every dashboard page and API call < {dashboard.TARGET_MS:.0f} ms (issue 14)"
    timed = [f for f in figures.items if f.system == "fairque" and f.scenario == dashboard.SCENARIO]
    if not timed:
        return Target(text, "-", "n/a")
    slowest = max(timed, key=lambda f: f.median)
    measured = f"slowest: {slowest.name} {slowest.median:.1f} ms ({len(timed)} calls timed)"
    return Target(text, measured, _judge(slowest.median < dashboard.TARGET_MS))


def _versus_peers(
    figures: Figures, peers: Sequence[str], scenario: str, name: str, factor: float, text: str
) -> Target:
    mine = _median(figures, "fairque", scenario, name)
    best = _best_peer(figures, peers, scenario, name)
    if mine is None or best is None:
        return Target(text, "-" if mine is None else f"{mine:,.0f}/s (no peer measured)", "n/a")
    peer, theirs = best
    measured = f"{mine:,.0f}/s vs {peer} {theirs:,.0f}/s = x{mine / theirs:.2f}"
    return Target(text, measured, _judge(mine >= factor * theirs))


def _flat_waits(figures: Figures, backlogs: Sequence[int]) -> Target:
    text = "light users' max wait flat as H's backlog grows (within 2x)"
    small, large = min(backlogs), max(backlogs)
    name = fairness.wait_name
    a = figures.get("fairque", fairness.NOISY, name("max", small, FAIR))
    b = figures.get("fairque", fairness.NOISY, name("max", large, FAIR))
    if a is None or b is None or small == large:
        return Target(text, "-", "n/a")
    ratio = b.median / a.median if a.median > 0 else math.inf
    measured = f"{a.median:.1f} ms at {small:,} -> {b.median:.1f} ms at {large:,} (x{ratio:.2f})"
    return Target(text, measured, _judge(ratio <= 2.0 and not b.censored))


def _pop_cost(figures: Figures, users: Sequence[int]) -> Target:
    text = f"throughput at {max(users):,} active users within 1.5x of 1 user"
    one = _median(figures, "fairque", throughput.SCENARIO, throughput.users_name(min(users)))
    many = _median(figures, "fairque", throughput.SCENARIO, throughput.users_name(max(users)))
    if one is None or many is None:
        return Target(text, "-", "n/a")
    measured = f"{one:,.0f}/s -> {many:,.0f}/s (cost x{one / many:.2f})"
    return Target(text, measured, _judge(one / many <= 1.5))


def targets_table(rows: Sequence[Target]) -> Table:
    out = Table(title="targets (issue 18)")
    out.add_column("target")
    out.add_column("measured")
    out.add_column("result")
    colour = {"met": "green", "missed": "red", "n/a": "dim"}
    for row in rows:
        out.add_row(row.target, row.measured, f"[{colour[row.result]}]{row.result}[/]")
    return out


# --- JSON -------------------------------------------------------------------------------


def write_json(
    path: Path, header: dict[str, Any], figures: Figures, rows: Sequence[Target]
) -> None:
    """The run's results: machine, versions, settings, every figure with its repetitions."""
    data = {
        **header,
        "figures": [f.to_dict() for f in figures.items],
        "targets": [asdict(t) for t in rows],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite(data), indent=2, allow_nan=False) + "\n")


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as null (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
