"""The benchmark scenarios. Shared ones run for fairque and every peer through the
:class:`~tests.performance.systems.System` interface; the others measure fairque only."""
