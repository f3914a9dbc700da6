"""Attempt-log capture without Redis: the cap, shipping without loss, and capture by
context (threads and asyncio tasks side by side)."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading

import pytest

from fairque import FairQueueConfig
from fairque.core.errors import ConfigValueError
from fairque.queue.calls import QueueCalls
from fairque.worker import capture
from fairque.worker.capture import AttemptLog, LogShipper, capturing, truncation_marker


@pytest.fixture
def installed() -> object:
    capture.install()
    yield None
    capture.uninstall()


def test_a_log_keeps_whole_characters_up_to_the_cap_then_one_marker() -> None:
    log = AttemptLog("t", 1, max_bytes=10)
    log.write("héllo! ")  # 8 bytes
    log.write("wörld")  # 2 bytes of room: "w" and half an "ö", which is dropped
    log.write("more")
    text, pieces = log.pending()
    assert text == "héllo! w" + truncation_marker(10)
    assert pieces == 2 and log.truncated


def test_shipped_text_is_dropped_and_text_written_meanwhile_kept() -> None:
    log = AttemptLog("t", 1)
    log.write("a")
    _, pieces = log.pending()
    log.write("b")  # while the flush is on its way
    log.shipped(pieces)
    assert log.pending() == ("b", 1)


def test_an_unshipped_batch_is_sent_again_and_ended_logs_go_once_shipped() -> None:
    shipper = LogShipper(QueueCalls(FairQueueConfig.create_default()))
    log = shipper.open("t1", 2)
    log.write("line\n")
    first = shipper.due({"t1"})
    assert first is not None
    assert [c[0] for c in first.call.commands] == ["APPEND", "EXPIRE"]
    assert first.call.commands[0][1:] == ("fq:log:t1:2", "line\n")
    assert shipper.due({"t1"}) is None  # not a second yet
    again = shipper.due(set(), force=True)  # first was lost (Redis down); t1 ended
    assert again is not None and again.call.commands[0][2] == "line\n"
    again.done()
    assert shipper.logs == {}


def test_writes_go_to_the_log_bound_in_their_own_thread_or_task(installed: object) -> None:
    logs = {name: AttemptLog(name, 1) for name in ("t1", "t2", "a1", "a2")}
    barrier = threading.Barrier(2)

    def thread_task(name: str) -> None:
        with capturing(logs[name]):
            for n in range(3):
                barrier.wait()
                print(f"{name} {n}")
            logging.getLogger("tests.capture").warning("%s logged", name)

    async def async_task(name: str) -> None:
        with capturing(logs[name]):
            for n in range(3):
                sys.stderr.write(f"{name} {n}\n")
                await asyncio.sleep(0)

    async def both() -> None:
        await asyncio.gather(async_task("a1"), async_task("a2"))

    threads = [threading.Thread(target=thread_task, args=(n,)) for n in ("t1", "t2")]
    for t in threads:
        t.start()
    asyncio.run(both())
    for t in threads:
        t.join()
    print("outside any attempt")
    for name, log in logs.items():
        lines = log.pending()[0].splitlines()
        assert lines[:3] == [f"{name} {n}" for n in range(3)]
        if name.startswith("t"):
            assert lines[3].endswith(f"WARNING tests.capture: {name} logged")


def test_uninstall_gives_back_the_streams() -> None:
    before = sys.stdout
    capture.install()
    capture.install()
    capture.uninstall()
    assert isinstance(sys.stdout, capture._Tee)
    capture.uninstall()
    assert sys.stdout is before


def test_max_log_bytes_is_checked() -> None:
    with pytest.raises(ConfigValueError, match="max_log_bytes"):
        FairQueueConfig.create_default(max_log_bytes=10)
