"""The ``fairque`` command line (typer).

``app.py`` holds the root app and registers one sub-app per command group
(``server.py``, ...); ``common.py`` holds the shared options and error handling.
This package does not import ``app`` itself, so ``python -m fairque.cli.app`` runs cleanly.
"""
