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
    [menu] = await chat.send("/report")
    menu_ref = chat.refs[-1]
    # On Zalo the tap is the option's number, typed; elsewhere the button's payload.
    if channel == "zalo":
        [question] = await chat.tap("Add a new household")
        assert (chat.sent[-1].text, chat.sent[-1].payload) == ("2", None)
    else:
        # The answered question's keyboard is taken away first (an edit of that message).
        [dropped, question] = await chat.tap("Add a new household")
        assert dropped.edit_of == menu_ref
        assert dropped.keyboard_only and not dropped.buttons
        assert chat.sent[-1].payload is not None and chat.sent[-1].text is None
        assert chat.sent[-1].message_ref == menu_ref  # the tap names the message it was on
        assert chat.shown[chat.refs.index(menu_ref)].text == menu.text
        assert not chat.shown[chat.refs.index(menu_ref)].buttons
    assert question.text.startswith("Which unit is the household in?")
    assert [m.text for m in chat.shown].count(question.text) == 1
    assert await chat.inbox() == []  # nothing new since the last look
    if channel == "zalo":
        with pytest.raises(ValueError, match="Zalo shows numbered lists"):
            await chat.tap_old("Search")
    else:
        with pytest.raises(LookupError):  # the answered menu shows no buttons any more
            await chat.tap_old("Search")
        # A tap on it all the same (a client that missed the edit) finds the question gone.
        search = next(b for b in menu.buttons if b.label == "Search")
        [stale] = await chat.send(payload=search.payload, message_ref=menu_ref)
        assert stale.text == "This question is no longer open."
    with pytest.raises(LookupError):
        await chat.tap("No such button")
