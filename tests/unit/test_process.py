"""Stop signals (core/process.py): graceful first, immediate after, handlers restored."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from fairque.core.process import STOP_SIGNALS, stop_on_signals


@pytest.fixture
def own_handler() -> Iterator[object]:
    """A handler of the test's own on SIGTERM/SIGINT, in place before and after."""

    def ignore(signum: int, frame: FrameType | None) -> None:
        pass

    previous = {sig: signal.signal(sig, ignore) for sig in STOP_SIGNALS}
    yield ignore
    for sig, old in previous.items():
        signal.signal(sig, old)


def test_first_signal_is_graceful_later_ones_immediate_then_handlers_restored(
    own_handler: object,
) -> None:
    requests: list[bool] = []
    with stop_on_signals(requests.append):
        assert signal.getsignal(signal.SIGTERM) is not own_handler
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGTERM)
    assert requests == [True, False, False]
    assert all(signal.getsignal(sig) is own_handler for sig in STOP_SIGNALS)


def test_on_an_event_loop_the_stop_runs_as_a_loop_callback(own_handler: object) -> None:
    async def scenario() -> list[tuple[bool, bool]]:
        loop = asyncio.get_running_loop()
        requests: list[tuple[bool, bool]] = []

        def stop(graceful: bool) -> None:  # records whether it ran on the loop
            requests.append((graceful, asyncio.get_running_loop() is loop))

        with stop_on_signals(stop, loop):
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGTERM)
            for _ in range(100):
                if len(requests) == 2:
                    break
                await asyncio.sleep(0.01)
        return requests

    assert asyncio.run(scenario()) == [(True, True), (False, True)]
    assert all(signal.getsignal(sig) is own_handler for sig in STOP_SIGNALS)


def test_outside_the_main_thread_nothing_is_installed(own_handler: object) -> None:
    seen: list[object] = []

    def other() -> None:
        with stop_on_signals(lambda graceful: None):
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen == [own_handler]
