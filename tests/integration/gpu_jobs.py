"""A task module only some workers can import (as if it needed a GPU library): importing
it fails unless FAIRQUE_TEST_GPU is set, as a missing dependency would."""

from __future__ import annotations

import os

if not os.environ.get("FAIRQUE_TEST_GPU"):
    raise ImportError("no GPU library on this worker (FAIRQUE_TEST_GPU is not set)")


def render(n: int) -> int:
    return n * 2
