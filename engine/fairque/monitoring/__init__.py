"""Statistics, worker liveness and health checks of a running system."""
