"""The peers fairque is measured against, each loaded only when asked for and installed
(``uv sync --group bench``): importing this package imports none of them."""

from __future__ import annotations

import importlib
import importlib.util

from tests.performance.systems import System

PEERS: dict[str, tuple[str, tuple[str, ...]]] = {
    # name: (module:class of its System, the distributions it needs)
    "rq": ("tests.performance.peers.rq_peer:RqSystem", ("rq",)),
    "celery": ("tests.performance.peers.celery_peer:CelerySystem", ("celery", "kombu")),
    "dramatiq": ("tests.performance.peers.dramatiq_peer:DramatiqSystem", ("dramatiq",)),
    "arq": ("tests.performance.peers.arq_peer:ArqSystem", ("arq",)),
    "huey": ("tests.performance.peers.huey_peer:HueySystem", ("huey",)),
}


def installed(name: str) -> bool:
    """True when every module the peer needs can be imported."""
    return all(importlib.util.find_spec(m) is not None for m in PEERS[name][1])


def load(name: str) -> type[System]:
    """The System class of a peer (imports the peer's library)."""
    module_name, _, attribute = PEERS[name][0].partition(":")
    system: type[System] = getattr(importlib.import_module(module_name), attribute)
    return system
