"""The web dashboard: ``fairque ui``, or ``create_app(config)`` to mount in an ASGI app.

Not imported by ``import fairque`` nor by the CLI's start-up (Starlette loads here).
"""

from __future__ import annotations

from fairque.ui.app import create_app

__all__ = ["create_app"]
