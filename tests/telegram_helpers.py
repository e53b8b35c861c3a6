"""Helpers for driving the bot through the Telegram double (tests/test_telegram_channel.py)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from bot.app import Runtime
from storage.db import Database
from storage.models import (
    ChatAccount,
    Conversation,
    Invite,
    OutboxMessage,
    Person,
    ProcessedUpdate,
    RoleAssignment,
)
from tests.conftest import Seeded, StartBot, seed_ward
from tests.doubles.telegram_api import SentMessage, TelegramDouble
from tests.doubles.zalo_api import ZaloDouble

UNIT_PATH = "Khu phố 1, Phường Bến Thành, Thành phố Hồ Chí Minh"
WARD_PATH = "Phường Bến Thành, Thành phố Hồ Chí Minh"
TABLES = {"people": Person, "roles": RoleAssignment, "accounts": ChatAccount,
          "conversations": Conversation, "ledger": ProcessedUpdate, "outbox": OutboxMessage}


async def start_telegram(start_bot: StartBot, tg: TelegramDouble, **extra: Any) -> Runtime:
    return await start_bot(TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_BASE=tg.base_url, **extra)


async def say(tg: TelegramDouble, user: int, text: str, count: int = 1) -> list[SentMessage]:
    """The user writes (in an English app, so replies are English); the replies."""
    await tg.send_text(user, text, language_code="en", first_name="Lê Văn Cường")
    return await replies(tg, user, count)


async def tap(tg: TelegramDouble, user: int, data: str, count: int = 1,
              message_id: int | None = None) -> list[SentMessage]:
    await tg.tap(user, data, message_id=message_id)
    return await replies(tg, user, count)


def dropped_keyboard(message: SentMessage) -> bool:
    """An answered question's keyboard taken away (the engine does it on every answer)."""
    return message.method == "editMessageReplyMarkup" and not message.buttons


async def replies(tg: TelegramDouble, user: int, count: int = 1) -> list[SentMessage]:
    """All unread messages to the user once `count` of them are replies: the keyboards taken
    away from answered questions are passed over (tests/test_keyboards.py pins them)."""
    found: list[SentMessage] = []
    while sum(not dropped_keyboard(m) for m in found) < count:
        found += await tg.wait_messages(user, 1)
    return [m for m in found if not dropped_keyboard(m)]


async def answered(tg: TelegramDouble, user: int, count: int = 1) -> list[SentMessage]:
    """The replies to an answer of a flow's question, after that question's keyboard is
    taken away (editMessageReplyMarkup, always first)."""
    dropped, *replies = await tg.wait_messages(user, count + 1)
    assert (dropped.method, dropped.buttons) == ("editMessageReplyMarkup", []), \
        dropped.describe()
    return replies


async def next_reply(tg: TelegramDouble, user: int) -> SentMessage:
    """The next message the bot sent, past the keyboards it took away from answered
    questions (editMessageReplyMarkup)."""
    while (message := await tg.next_message(user)).method == "editMessageReplyMarkup":
        assert message.buttons == [], message.describe()
    return message


def texts(messages: list[SentMessage]) -> str:
    return "\n".join(message.text or "" for message in messages)


def data_for(message: SentMessage, label: str) -> str:
    """The callback_data of the button with this label."""
    return next(b["callback_data"] for row in message.buttons for b in row
                if b["text"] == label)


async def register(tg: TelegramDouble, user: int, code: str, unit: str = UNIT_PATH) -> None:
    [welcome] = await say(tg, user, f"/start {code}")
    assert unit in (welcome.text or ""), welcome.describe()


@dataclass(frozen=True)
class WardTeam:
    """Who is registered by `ward_team`: Telegram user ids, and the Zalo user of Khu phố 2."""

    staff: int
    kp1: int
    t1: int
    other: int  # a leader in another ward (Phường Sài Gòn)
    zalo_kp2: str
    admin: int | None = None  # the city's admin, when wanted


async def ward_team(start_bot: StartBot, tg: TelegramDouble, zalo: ZaloDouble,
                    team: WardTeam) -> tuple[Runtime, Seeded]:
    """The bot on both doubles (English), the seeded ward, and its team registered: ward
    staff, the leaders of Khu phố 1 and Tổ dân phố 1, another ward's leader, and Khu phố 2's
    leader on Zalo."""
    runtime = await start_bot(TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_BASE=tg.base_url,
                              ZALO_BOT_TOKEN=zalo.token, ZALO_API_BASE=zalo.base_url,
                              COSO_DEFAULT_LOCALE="en")
    seeded = await seed_ward(runtime.db)
    if team.admin is not None:
        await register(tg, team.admin, seeded.codes["admin:CITY"], unit="Thành phố Hồ Chí Minh")
    await register(tg, team.staff, seeded.codes["ward_staff:WARD"], unit=WARD_PATH)
    await register(tg, team.kp1, seeded.codes["leader:KP1"])
    await register(tg, team.t1, seeded.codes["leader:T1"], unit="Tổ dân phố 1")
    await register(tg, team.other, seeded.codes["leader:OTHER"], unit="Phường Sài Gòn")
    await zalo.send_text(team.zalo_kp2, f"/start {seeded.codes['leader:KP2']}")
    await zalo.next_message(team.zalo_kp2)
    return runtime, seeded


async def counts(db: Database) -> dict[str, int]:
    """Rows per table, to show that an update wrote nothing."""
    result = {}
    async with db.read() as session:
        for name, model in TABLES.items():
            result[name] = await session.scalar(select(func.count()).select_from(model)) or 0
        result["invites used"] = await session.scalar(
            select(func.count()).select_from(Invite).where(Invite.used_at.is_not(None))) or 0
    return result


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> None:
    """Polls a database condition that the sender settles in the background."""
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {seconds}s")
        await asyncio.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def send_unsupported(tg: TelegramDouble, user: int, content: dict[str, Any]) -> int:
    """A message with content the double has no public method for (a sticker, a location).

    Goes through the double's own update path, so aiogram still parses real JSON.
    """
    message = tg._user_message(user, content)  # noqa: SLF001 - no public hook for stickers
    return await tg._new_update("message", message)  # noqa: SLF001
