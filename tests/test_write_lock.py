"""storage.db.WriteLock: SQLite's writers in arrival order, the sender's claims and marks
first, the lock handed on past a cancelled waiter."""

from __future__ import annotations

import asyncio

from storage.db import WriteLock


async def test_writers_take_turns_in_order_and_the_first_ones_go_ahead() -> None:
    lock, order = WriteLock(), []
    await lock.acquire()

    async def writer(name: str, first: bool = False) -> None:
        await lock.acquire(first=first)
        order.append(name)
        await asyncio.sleep(0)
        lock.release()

    tasks = [asyncio.create_task(writer("turn 1")), asyncio.create_task(writer("turn 2")),
             asyncio.create_task(writer("claim", first=True))]
    await asyncio.sleep(0.01)  # all three wait
    lock.release()
    await asyncio.gather(*tasks)
    assert order == ["claim", "turn 1", "turn 2"]


async def test_a_cancelled_waiter_does_not_keep_the_lock() -> None:
    lock = WriteLock()
    await lock.acquire()
    gone = asyncio.create_task(lock.acquire())
    after = asyncio.create_task(lock.acquire())
    await asyncio.sleep(0.01)
    gone.cancel()
    lock.release()  # handed past the cancelled waiter
    await asyncio.wait_for(after, 1)
    lock.release()
    await asyncio.wait_for(lock.acquire(), 1)  # free again
    assert gone.cancelled()
