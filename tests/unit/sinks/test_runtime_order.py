"""The runtime's turn per (target, aggregate) (connectors.sinks.runtime.admit.Order): one
holder at a time, the others in arrival order, a cancelled waiter out of the line, and no
entry left once nobody holds or waits."""

from __future__ import annotations

import asyncio

from connectors.sinks.runtime.admit import Order


async def test_a_free_key_is_taken_at_once_and_dropped_when_released() -> None:
    order = Order()
    await order.acquire("k")
    assert len(order) == 1
    order.release("k")
    assert len(order) == 0


async def test_waiters_get_the_turn_in_arrival_order() -> None:
    order, turns = Order(), []
    await order.acquire("k")

    async def take(name: str) -> None:
        await order.acquire("k")
        turns.append(name)
        order.release("k")

    waiting = [asyncio.create_task(take(n)) for n in ("first", "second", "third")]
    await asyncio.sleep(0)  # each is in line now
    order.release("k")
    await asyncio.gather(*waiting)
    assert turns == ["first", "second", "third"]
    assert len(order) == 0


async def test_other_keys_do_not_wait() -> None:
    order = Order()
    await order.acquire(("t", "a1"))
    await asyncio.wait_for(order.acquire(("t", "a2")), timeout=1)
    assert len(order) == 2


async def test_a_cancelled_waiter_leaves_the_line() -> None:
    order, turns = Order(), []
    await order.acquire("k")
    cancelled = asyncio.create_task(order.acquire("k"))

    async def take() -> None:
        await order.acquire("k")
        turns.append("next")
        order.release("k")

    after = asyncio.create_task(take())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    order.release("k")
    await after
    assert turns == ["next"]
    assert len(order) == 0


async def test_a_waiter_cancelled_just_as_it_got_the_turn_passes_it_on() -> None:
    order, turns = Order(), []
    await order.acquire("k")
    unlucky = asyncio.create_task(order.acquire("k"))

    async def take() -> None:
        await order.acquire("k")
        turns.append("next")
        order.release("k")

    after = asyncio.create_task(take())
    await asyncio.sleep(0)
    order.release("k")  # hands the turn to `unlucky` ...
    unlucky.cancel()  # ... which is cancelled before it runs
    await asyncio.gather(unlucky, return_exceptions=True)
    await asyncio.wait_for(after, timeout=1)
    assert turns == ["next"]
    assert len(order) == 0
