"""Commands as Vietnamese words ("báo cáo", "diemdanh") on every channel, /help without
/start for the registered, and the web chat's menu of the role's commands.

Golden transcripts (tests/golden/commands/<channel>.txt) replay one leader on each channel
through the shared chat client; the web chat's transcript also shows the menu that comes with
a reply leaving no question open ('  menu: [...]'). COSO_GOLDEN_UPDATE=1 rewrites them; read
the diff.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.handlers import words
from bot.handlers.commands import COMMANDS, listed
from bot.handlers.router import Router
from bot.i18n import Translator
from bot.messages import MENU, Outgoing
from storage.db import Database
from tests import transcripts
from tests.chat import Chat
from tests.conftest import Seeded, make_settings, seed_ward
from wording import fold

GOLDEN = Path(__file__).parent / "golden" / "commands"


@pytest.fixture
async def ward(db_url: str) -> AsyncIterator[tuple[Router, Database, Seeded]]:
    database = Database(db_url)
    seeded = await seed_ward(database)
    yield Router(database, make_settings(db_url)), database, seeded
    await database.dispose()


def _shown(channel: str, replies: list[Outgoing]) -> list[str]:
    """What the person reads: Zalo's numbered lists; the web chat's menu under a reply."""
    if channel == "zalo":
        return transcripts.shown(channel, replies)
    lines = []
    for message in replies:
        lines += transcripts.shown(channel, [message])
        if MENU in message.extra:
            lines.append("  menu: " + " ".join(f"[{label}]" for label, _ in message.extra[MENU]))
    return lines


@pytest.mark.parametrize("channel", ["telegram", "zalo", "web"])
async def test_transcript(channel: str, ward: tuple[Router, Database, Seeded]) -> None:
    router, db, seeded = ward
    chat = Chat(router, db, channel=channel, external_id=f"{channel}-kp1", language="vi")
    await transcripts.replay(GOLDEN / f"{channel}.txt", chat, seeded.codes, show=_shown)


def test_every_listed_command_has_its_words_and_a_label() -> None:
    assert {c.name for c in listed()} == set(words.TABLE)
    assert set(words.TABLE) <= set(COMMANDS)
    vi = Translator("vi", "Asia/Ho_Chi_Minh")
    for name, entry in words.TABLE.items():
        assert entry.words and entry.label, name
        assert words.named(entry.words[0].upper()) == name
        assert vi(entry.label) != entry.label or entry.label == "Dashboard", name


@pytest.mark.parametrize(("typed", "command"), [
    ("báo cáo", "report"), ("BAO CAO", "report"), ("baocao", "report"), ("Báo cáo.", "report"),
    ("hộ", "household"), ("ho", "household"), ("hỗ trợ", "support"), ("hotro", "support"),
    ("điểm danh", "checkin"), ("diemdanh", "checkin"), ("Báo cáo ngày", "checkin"),
    ("  tro   giup ", "help"), ("ngon ngu", "lang"), ("dang ky", "start"),
    ("báo cáo 12 Lê Lợi F0", None), ("hộ 12", None), ("chào", None), ("", None), (None, None),
])
def test_a_whole_message_names_a_command(typed: str | None, command: str | None) -> None:
    assert words.named(typed) == command


@pytest.mark.parametrize(("typed", "found"), [
    ("báo cáo 12 Lê Lợi F0 3 người", ("report", "12 Lê Lợi F0 3 người")),
    ("BAO CAO 12 le loi thieu an", ("report", "12 le loi thieu an")),
    ("baocao  5 Hàm Nghi khẩn", ("report", "5 Hàm Nghi khẩn")),
    ("Báo cáo ngày hôm nay", None), ("báo cáo mở 3", None), ("hộ 12", None),
    ("báo cáo", None), ("chỉ đạo họp tổ", None), ("", None), (None, None),
])
def test_the_report_word_leads_a_one_message_report(
        typed: str | None, found: tuple[str, str] | None) -> None:
    assert words.leading(typed) == found


def test_no_word_is_a_steering_word_of_another_meaning() -> None:
    """'hủy' outside a question is /cancel, inside it cancels: the same meaning."""
    from bot.flows.engine import STEERING
    for meaning, steering in STEERING.items():
        for word in steering:
            named = words.BY_WORD.get(fold(word))
            assert named in (None, meaning), (word, named)
