"""Statistics, worker liveness, health checks and alerts of a running system.

Prometheus metrics (``fairque.monitoring.metrics``) need the ``metrics`` extra and are
not imported here.
"""

from fairque.monitoring.alerts import Alert, AlertMonitor, AlertThresholds, evaluate
from fairque.monitoring.health import HealthReport, check_health, live_workers
from fairque.monitoring.stats import collect

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
