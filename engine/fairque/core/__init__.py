"""Core building blocks: models, configuration, Redis key names and errors."""
