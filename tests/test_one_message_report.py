"""The whole report in one message ("12 Lê Lợi F0 3 người khẩn ghi chú sốt cao"), end to end.

Golden transcripts (tests/golden/one_message/<channel>.txt) replay it on each channel through
the shared chat client: Telegram and the web chat tap buttons, Zalo answers with numbers.
Then one run per channel through the real transport: the Telegram and Zalo doubles over HTTP
and the web chat's own API. COSO_GOLDEN_UPDATE=1 rewrites the transcripts; read the diff.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.handlers.router import Router
from storage import households, units
from storage.db import Database
from storage.models import Report
from tests.chat import Chat, transcript_lines
from tests.conftest import Seeded, StartBot, make_settings, seed_ward
from tests.doubles.telegram_api import TelegramDouble
from tests.doubles.zalo_api import ZaloDouble
from tests.effects import EFFECTS, Effects
from tests.telegram_helpers import data_for, register
from tests.test_web_chat import WebUser

GOLDEN = Path(__file__).parent / "golden" / "one_message"
UPDATE = os.environ.get("COSO_GOLDEN_UPDATE") == "1"


async def _households(db: Database) -> None:
    """Khu phố 1's households: 12 Lê Lợi, and two Nguyễn Văn households (ambiguous)."""
    async with db.transaction() as session:
        kp1 = await units.by_code(session, "26734-KP1")
        assert kp1 is not None
        await households.add(session, kp1, "12 Lê Lợi", head_name="Trần Văn Bình", members=4)
        await households.add(session, kp1, "3 Hàm Nghi", head_name="Nguyễn Văn An", members=2)
        await households.add(session, kp1, "5 Hàm Nghi", head_name="Nguyễn Văn Ba", members=3)


@pytest.fixture
async def ward(db_url: str) -> AsyncIterator[tuple[Router, Database, Seeded]]:
    database = Database(db_url)
    seeded = await seed_ward(database)
    await _households(database)
    yield Router(database, make_settings(db_url)), database, seeded
    await database.dispose()


@pytest.mark.parametrize("channel", ["telegram", "zalo", "web"])
async def test_transcript(channel: str, ward: tuple[Router, Database, Seeded]) -> None:
    router, db, seeded = ward
    path = GOLDEN / f"{channel}.txt"
    expected = await asyncio.to_thread(path.read_text, encoding="utf-8")
    chat = Chat(router, db, channel=channel, external_id=f"{channel}-kp1", language="vi")
    effects = await Effects.begin(db)
    produced: list[str] = []
    for line in expected.splitlines():
        if line == EFFECTS:
            break
        if line.startswith("#"):
            produced.append(line)
        elif line.startswith("> "):
            produced.append(line)
            typed = line[2:]
            for key, code in seeded.codes.items():
                typed = typed.replace("{" + key + "}", code)
            try:
                replies = await (chat.tap(typed[4:]) if typed.startswith("tap ")
                                 else chat.send(typed))
            except LookupError:
                produced.append(f"! no button {typed[4:]!r} on screen")
                continue
            produced += transcript_lines(replies)
    produced += await effects.block([chat])
    actual = "\n".join(produced) + "\n"
    if UPDATE:
        await asyncio.to_thread(path.write_text, actual, encoding="utf-8")
    assert actual == expected
