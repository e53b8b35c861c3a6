"""The shared chat client (tests/chat.py) answers alike on Telegram, Zalo and the web chat."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.handlers.router import Router
from storage.db import Database
from tests.chat import CHANNELS, Chat
from tests.conftest import Seeded, make_settings, seed_ward


@pytest.fixture
async def ward(db_url: str) -> AsyncIterator[tuple[Router, Database, Seeded]]:
    database = Database(db_url)
    seeded = await seed_ward(database)
    yield Router(database, make_settings(db_url)), database, seeded
    await database.dispose()


@pytest.mark.parametrize("channel", CHANNELS)
async def test_send_tap_and_inbox_on_every_channel(
        channel: str, ward: tuple[Router, Database, Seeded]) -> None:
    router, db, seeded = ward
    chat = Chat(router, db, channel=channel, external_id=f"{channel}-1")
    [welcome, *_] = await chat.send(f"/start {seeded.codes['leader:KP1']}")
    assert "Welcome, Trần Thị Bình!" in welcome.text
    await chat.send("/report")
    # On Zalo the tap is the option's number, typed; elsewhere the button's payload.
    [question] = await chat.tap("Add a new household")
    assert question.text.startswith("Which unit is the household in?")
    if channel == "zalo":
        assert (chat.sent[-1].text, chat.sent[-1].payload) == ("2", None)
    else:
        assert chat.sent[-1].payload is not None and chat.sent[-1].text is None
    assert [m.text for m in chat.shown].count(question.text) == 1
    assert await chat.inbox() == []  # nothing new since the last look
    if channel == "zalo":
        with pytest.raises(ValueError, match="Zalo shows numbered lists"):
            await chat.tap_old("Search")
    else:
        [stale] = await chat.tap_old("Search")
        assert stale.text == "This question is no longer open."
    with pytest.raises(LookupError):
        await chat.tap("No such button")
