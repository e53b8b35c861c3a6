"""One person's golden transcript replayed through the shared chat client.

A file is a conversation: '> ' lines are what the person sends ('tap LABEL' taps the newest
button so labelled; '{leader:KP1}' is a fresh invite code of that kind), '#' lines are kept
as they are, and the rest is what the bot answered, as `shown` prints it. After the
conversation, the '# effects' block pins what it committed and sent to other people.
COSO_GOLDEN_UPDATE=1 rewrites the file; read the diff.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from bot.channels.zalo import TEXT_LIMIT as ZALO_TEXT_LIMIT
from bot.messages import Outgoing
from tests.chat import Chat, transcript_lines
from tests.effects import EFFECTS, Effects

UPDATE = os.environ.get("COSO_GOLDEN_UPDATE") == "1"
Shown = Callable[[str, list[Outgoing]], list[str]]
Send = Callable[[Chat, str], Awaitable[list[Outgoing]]]


def shown(channel: str, replies: list[Outgoing]) -> list[str]:
    """What the person reads: buttons on Telegram and the web chat, Zalo's numbered list."""
    if channel != "zalo":
        return transcript_lines(replies)
    return [f"< {line}" for message in replies
            for part in message.numbered_parts(ZALO_TEXT_LIMIT) for line in part.split("\n")]


async def send(chat: Chat, typed: str) -> list[Outgoing]:
    return await (chat.tap(typed[4:]) if typed.startswith("tap ") else chat.send(typed))


async def replay(path: Path, chat: Chat, codes: Mapping[str, str], *,
                 show: Shown = shown, say: Send = send) -> None:
    """Replay the file's inputs and assert the whole transcript, effects included."""
    expected = await asyncio.to_thread(path.read_text, encoding="utf-8")
    effects = await Effects.begin(chat.db)
    produced: list[str] = []
    for line in expected.splitlines():
        if line == EFFECTS:
            break
        if line.startswith("#"):
            produced.append(line)
        elif line.startswith("> "):
            produced.append(line)
            typed = line[2:]
            for key, code in codes.items():
                typed = typed.replace("{" + key + "}", code)
            try:
                replies = await say(chat, typed)
            except LookupError:
                produced.append(f"! no button {typed[4:]!r} on screen")
                continue
            produced += show(chat.channel, replies)
    produced += await effects.block([chat])
    actual = "\n".join(produced) + "\n"
    if UPDATE:
        await asyncio.to_thread(path.write_text, actual, encoding="utf-8")
    assert actual == expected
