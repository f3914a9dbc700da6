"""Runnable examples, one per feature of the README (run them from the repository root:
``uv run python -m examples.<name>``). Each uses FAIRQUE_REDIS_URL when set, else the
embedded server of ./.fairque."""
