"""The per-chat intake (bot/channels/intake.py): a chat with many updates waiting holds one
handling slot, so another chat is handled meanwhile; each chat's updates in the order they
came, one at a time. How much it helps under a real flood is `python -m bench flood`'s figure.
"""

from __future__ import annotations

import asyncio

from bot.channels.intake import Intake
from bot.messages import Incoming


def update(chat: str, number: int) -> Incoming:
    return Incoming(channel="telegram", external_id=chat, update_id=f"{chat}-{number}",
                    text=str(number))


async def test_a_chat_with_a_backlog_leaves_the_other_slots_to_other_chats() -> None:
    flood_may_go_on = asyncio.Event()
    handled: list[str] = []
    running: dict[str, int] = {}

    async def handle(incoming: Incoming) -> None:
        running[incoming.external_id] = running.get(incoming.external_id, 0) + 1
        assert running[incoming.external_id] == 1, "two updates of one chat at once"
        if incoming.external_id == "flooder":
            await flood_may_go_on.wait()
        handled.append(incoming.update_id)
        running[incoming.external_id] -= 1

    intake = Intake(handle, slots=2)
    flood = [asyncio.create_task(intake(update("flooder", n))) for n in range(100)]
    await asyncio.sleep(0)
    other = asyncio.create_task(intake(update("other", 1)))
    # With the slots taken in arrival order the flood's first two updates held both and this
    # waited until the whole flood was through; now it goes while the flood is stuck.
    await asyncio.wait_for(other, timeout=5)
    assert handled == ["other-1"]

    flood_may_go_on.set()
    await asyncio.wait_for(asyncio.gather(*flood), timeout=5)
    assert handled[1:] == [f"flooder-{n}" for n in range(100)]  # in the order they came


async def test_a_cancelled_waiting_update_raises_and_the_chat_goes_on() -> None:
    gate = asyncio.Event()
    handled: list[str] = []

    async def handle(incoming: Incoming) -> None:
        await gate.wait()
        handled.append(incoming.update_id)

    intake = Intake(handle, slots=1)
    first = asyncio.create_task(intake(update("a", 1)))
    waiting = asyncio.create_task(intake(update("a", 2)))
    third = asyncio.create_task(intake(update("a", 3)))
    await asyncio.sleep(0)
    waiting.cancel()  # a stop: the spool in front keeps what raises CancelledError
    gate.set()
    await asyncio.gather(first, third)
    assert waiting.cancelled()
    assert handled == ["a-1", "a-3"]
