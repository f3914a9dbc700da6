"""SlotQueue: at most ``limit`` items hold a thread, the rest wait, and a thread that ends
one takes the next itself; abandoning a held item frees its slot exactly once."""

from __future__ import annotations

import threading

from fairque.worker.threads import SlotQueue


class Item:
    """A distinct object per item (the queue tells items apart by identity)."""

    def __init__(self, name: str, owner: str = "") -> None:
        self.name = name
        self.owner = owner or name

    def __repr__(self) -> str:
        return self.name


def test_items_beyond_the_limit_wait_and_follow_in_order() -> None:
    slots: SlotQueue[Item] = SlotQueue(2)
    a, b, c, d = (Item(n) for n in "abcd")
    assert [slots.offer(i) for i in (a, b, c, d)] == [True, True, False, False]
    assert slots.next_after(a) is c  # a's thread runs c next
    assert slots.next_after(b) is d
    assert slots.next_after(c) is None and slots.next_after(d) is None  # threads end
    assert slots.offer(Item("e"))  # both slots are free again


def test_abandoning_a_held_item_passes_its_slot_on_once() -> None:
    slots: SlotQueue[Item] = SlotQueue(1)
    a, b, c = Item("a"), Item("b"), Item("c")
    assert slots.offer(a) and not slots.offer(b) and not slots.offer(c)
    assert slots.abandon(a) is b  # a timed out: start a thread for b
    assert slots.next_after(a) is None  # a's thread returns late: it takes nothing
    assert slots.next_after(b) is c


def test_abandoning_a_waiting_item_drops_it() -> None:
    slots: SlotQueue[Item] = SlotQueue(1)
    a, b, c = Item("a"), Item("b"), Item("c")
    slots.offer(a), slots.offer(b), slots.offer(c)
    assert slots.abandon(b) is None  # its lease was lost before it ran
    assert slots.next_after(a) is c


def test_take_waiting_removes_the_chosen_items_only() -> None:
    slots: SlotQueue[Item] = SlotQueue(1)
    a, b, c, d = (Item(n) for n in "abcd")
    for item in (a, b, c, d):
        slots.offer(item)
    assert slots.take_waiting(lambda i: i.name != "c") == [b, d]
    assert slots.next_after(a) is c
    assert slots.take_waiting() == []


def test_no_item_is_lost_or_run_twice_under_concurrent_threads() -> None:
    slots: SlotQueue[Item] = SlotQueue(4)
    items = [Item(str(n)) for n in range(2000)]
    ran: list[Item] = []
    lock = threading.Lock()
    threads: list[threading.Thread] = []

    def serve(item: Item | None) -> None:
        while item is not None:
            with lock:
                ran.append(item)
            item = slots.next_after(item)

    for item in items:
        if slots.offer(item):
            thread = threading.Thread(target=serve, args=(item,))
            threads.append(thread)
            thread.start()
    for thread in threads:
        thread.join(10)
    # an item offered just after every thread had ended would find a free slot (offer
    # says so): none is left waiting unseen
    assert sorted(i.name for i in ran) == sorted(i.name for i in items)
    assert len({id(i) for i in ran}) == len(items)


def _waiting_order(slots: SlotQueue[Item], first: Item) -> list[str]:
    order, item = [], slots.next_after(first)
    while item is not None:
        order.append(item.name)
        item = slots.next_after(item)
    return order


def test_waiting_items_take_turns_by_owner() -> None:
    slots: SlotQueue[Item] = SlotQueue(1, owner=lambda i: i.owner)
    running = Item("run", "H")
    slots.offer(running)
    for n in range(4):
        slots.offer(Item(f"H{n}", "H"))
    slots.offer(Item("L0", "L"))  # a light tenant's task claimed after H's batch
    slots.offer(Item("M0", "M"))
    slots.offer(Item("L1", "L"))
    assert _waiting_order(slots, running) == ["H0", "L0", "M0", "H1", "L1", "H2", "H3"]


def test_without_owners_waiting_items_keep_their_order() -> None:
    slots: SlotQueue[Item] = SlotQueue(1)
    running = Item("run")
    slots.offer(running)
    for name in ("c", "a", "b"):
        slots.offer(Item(name, "same"))  # the default owner is the item itself
    assert _waiting_order(slots, running) == ["c", "a", "b"]
