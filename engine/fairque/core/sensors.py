"""The ``sensor`` option of a task: how often it pokes and how long it may wait.

A sensor task's function is called once per poke; a result of False (or None) means
"not yet": the task goes back to SCHEDULED for its next poke instead of holding a
worker's slot (lua/_dynamic.lua). This module only checks and normalises the option, a
JSON mapping ``{poke_interval_seconds, timeout_seconds, soft_fail}``.
"""

from __future__ import annotations

import math
from typing import Any

from fairque.core.errors import TaskError, shorten

DEFAULT_POKE_INTERVAL_SECONDS = 60.0
DEFAULT_SENSOR_TIMEOUT_SECONDS = 7 * 24 * 3600.0
"""As in Airflow: poke every minute, give up after seven days."""

SENSOR_KEYS = ("poke_interval_seconds", "timeout_seconds", "soft_fail")


def sensor_spec(
    poke_interval_seconds: float = DEFAULT_POKE_INTERVAL_SECONDS,
    timeout_seconds: float = DEFAULT_SENSOR_TIMEOUT_SECONDS,
    soft_fail: bool = False,
) -> dict[str, Any]:
    """The checked ``sensor`` option (TaskError naming a bad value)."""
    spec: dict[str, Any] = check_sensor(
        {
            "poke_interval_seconds": poke_interval_seconds,
            "timeout_seconds": timeout_seconds,
            "soft_fail": soft_fail,
        },
        "sensor",
    )
    return spec


def check_sensor(value: Any, name: str) -> Any:
    """None (not a sensor), or the mapping with every key, defaults filled in."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TaskError(
            f"{name} must be a mapping such as {{poke_interval_seconds: 5, "
            f"timeout_seconds: 3600, soft_fail: false}}, not {shorten(value)}"
        )
    unknown = sorted(set(value) - set(SENSOR_KEYS))
    if unknown:
        raise TaskError(f"unknown {name} key(s) {unknown}; use {', '.join(SENSOR_KEYS)}")
    spec = {
        "poke_interval_seconds": value.get("poke_interval_seconds", DEFAULT_POKE_INTERVAL_SECONDS),
        "timeout_seconds": value.get("timeout_seconds", DEFAULT_SENSOR_TIMEOUT_SECONDS),
        "soft_fail": value.get("soft_fail", False),
    }
    for key in ("poke_interval_seconds", "timeout_seconds"):
        number = spec[key]
        if (
            isinstance(number, bool)
            or not isinstance(number, (int, float))
            or not math.isfinite(number)
            or number <= 0
        ):
            raise TaskError(
                f"{name} {key} must be a positive number of seconds, not {shorten(number)}"
            )
    if not isinstance(spec["soft_fail"], bool):
        raise TaskError(f"{name} soft_fail must be true or false, not {shorten(spec['soft_fail'])}")
    return value if spec == value else spec
