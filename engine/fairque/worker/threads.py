"""Daemon threads for task functions: a task given up on (timed out, lease lost, or
left behind by a stop) keeps its thread without blocking a slot or the exit."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from queue import Empty, SimpleQueue
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class DaemonPool:
    """Reusable daemon threads that grow when all are busy and retire when idle."""

    def __init__(self, name: str, idle_seconds: float = 30.0) -> None:
        self._name = name
        self._idle_seconds = idle_seconds
        self._jobs: SimpleQueue[Callable[[], object]] = SimpleQueue()
        self._idle = 0
        self._count = 0
        self._lock = threading.Lock()

    def submit(self, function: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``function(*args)`` on a pool thread; its result or error lands in a Future."""
        future: Future[T] = Future()

        def job() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(function(*args))
            except BaseException as e:  # the future carries it to whoever waits
                future.set_exception(e)

        self._start(job)
        return future

    def run(self, function: Callable[..., object], *args: Any) -> None:
        """Run ``function(*args)`` on a pool thread, with no Future to report to (the
        caller's function reports its own outcome and catches its own errors)."""
        self._start(functools.partial(function, *args))

    def _start(self, job: Callable[[], object]) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1
            else:
                self._count += 1
                thread = threading.Thread(target=self._serve, name=f"{self._name}-{self._count}")
                thread.daemon = True
                thread.start()
        self._jobs.put(job)

    def _serve(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self._idle_seconds)
            except Empty:
                with self._lock:
                    if self._idle:
                        self._idle -= 1
                        return
                continue
            job()
            with self._lock:
                self._idle += 1


class SlotQueue(Generic[T]):
    """Items for ``limit`` threads: an item gets a thread of its own while fewer than
    ``limit`` hold one, else it waits; a thread that ends its item takes the next
    waiting one itself (no hand-off through another thread). Thread-safe.

    Waiting items take turns by ``owner`` (round robin): an item waits behind its own
    owner's earlier items and behind one item of each other owner per turn, so an owner
    with one item is not held up by another's many (a light tenant's task claimed after a
    heavy tenant's batch starts next, not after the whole batch)."""

    def __init__(self, limit: int, owner: Callable[[T], object] = id) -> None:
        self._limit = limit
        self._owner = owner
        self._held: dict[int, T] = {}  # by id(): the items a thread runs
        self._waiting: deque[T] = deque()
        self._lock = threading.Lock()

    def offer(self, item: T) -> bool:
        """Add ``item``; True when the caller must start a thread for it now."""
        with self._lock:
            if len(self._held) < self._limit:
                self._held[id(item)] = item
                return True
            self._waiting.insert(self._turn_of(item), item)
            return False

    def _turn_of(self, item: T) -> int:
        """Where ``item`` waits: before the first item of a later turn than its own."""
        owner = self._owner
        mine = owner(item)
        turn = sum(1 for waiting in self._waiting if owner(waiting) == mine)
        seen: dict[object, int] = {}
        for position, waiting in enumerate(self._waiting):
            key = owner(waiting)  # ``mine`` never counts past ``turn``
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > turn + 1:
                return position
        return len(self._waiting)

    def next_after(self, item: T) -> T | None:
        """By the thread that ran ``item``: the item to run next on it, or None (the
        thread is done; also when ``item`` was abandoned meanwhile)."""
        with self._lock:
            if self._held.pop(id(item), None) is None:
                return None
            return self._promote()

    def abandon(self, item: T) -> T | None:
        """Give ``item`` up (its thread, if any, no longer counts; a waiting item is
        dropped). Returns the waiting item that takes the freed slot: start a thread for
        it."""
        with self._lock:
            if self._held.pop(id(item), None) is None:
                self._remove_waiting(lambda waiting: waiting is item)
                return None
            return self._promote()

    def _promote(self) -> T | None:
        """The first waiting item, now holding the slot just freed (None: none waits)."""
        if not self._waiting:
            return None
        following = self._waiting.popleft()
        self._held[id(following)] = following
        return following

    def take_waiting(self, which: Callable[[T], bool] | None = None) -> list[T]:
        """Remove and return the waiting items (those ``which`` accepts)."""
        with self._lock:
            return self._remove_waiting(which or (lambda _: True))

    def _remove_waiting(self, which: Callable[[T], bool]) -> list[T]:
        taken = [item for item in self._waiting if which(item)]
        if taken:
            self._waiting = deque(item for item in self._waiting if not which(item))
        return taken


_SHARED = DaemonPool("fairque-task")


async def in_daemon_thread(function: Callable[..., T], *args: Any) -> T:
    """Await ``function(*args)`` run on a daemon thread (unlike asyncio.to_thread, the
    event loop's shutdown does not wait for it)."""
    return await asyncio.wrap_future(_SHARED.submit(function, *args))


def in_background(function: Callable[..., T], *args: Any) -> Future[T]:
    """Run ``function(*args)`` on a daemon thread without waiting for it (run callbacks:
    a slow one must not hold up a worker's loop)."""
    return _SHARED.submit(function, *args)
