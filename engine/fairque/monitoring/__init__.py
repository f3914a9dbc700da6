"""Statistics, worker liveness, health checks and alerts of a running system.

The names are imported on first use (see ``fairque.core.lazy``). Prometheus metrics
(``fairque.monitoring.metrics``) need the ``metrics`` extra and are not exported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fairque.core.lazy import lazy_exports

_EXPORTS = {
    "Alert": "fairque.monitoring.alerts",
    "AlertMonitor": "fairque.monitoring.alerts",
    "AlertThresholds": "fairque.monitoring.alerts",
    "HealthReport": "fairque.monitoring.health",
    "check_health": "fairque.monitoring.health",
    "collect": "fairque.monitoring.stats",
    "evaluate": "fairque.monitoring.alerts",
    "live_workers": "fairque.monitoring.health",
}

if TYPE_CHECKING:
    from fairque.monitoring.alerts import Alert, AlertMonitor, AlertThresholds, evaluate
    from fairque.monitoring.health import HealthReport, check_health, live_workers
    from fairque.monitoring.stats import collect
else:
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "Alert",
    "AlertMonitor",
    "AlertThresholds",
    "HealthReport",
    "check_health",
    "collect",
    "evaluate",
    "live_workers",
]
