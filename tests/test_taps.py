"""How many answers each daily flow takes, per channel, and the table that says so.

Golden transcripts (tests/golden/taps/<channel>.txt) replay a leader's everyday flows on each
channel through the shared chat client: a household added, a report in one message, the
guided report and a support delivery for a known household, and a found household's buttons
(report, record support, edit). Telegram and the web chat tap buttons; Zalo answers with the
numbers of its lists, and its transcript shows them. Each '# taps: <flow>' comment opens a
counted stretch, from the command to the saved confirmation; bench/taps.py counts them into
docs/taps.md, and the last test keeps that table what the goldens say.
COSO_GOLDEN_UPDATE=1 rewrites the transcripts; read the diff, then `python -m bench taps`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import taps
from bot.handlers.router import Router
from bot.messages import Outgoing
from storage.db import Database
from tests import transcripts
from tests.chat import Chat
from tests.conftest import Seeded, make_settings, seed_ward

GOLDEN = Path(__file__).parent / "golden" / "taps"
FROZEN = datetime(2026, 11, 3, 3, 0, tzinfo=UTC)  # 10:00 on 3 Nov 2026 in Ho Chi Minh City


@pytest.fixture
async def ward(db_url: str, monkeypatch: pytest.MonkeyPatch
               ) -> AsyncIterator[tuple[Router, Database, Seeded]]:
    monkeypatch.setattr("bot.handlers.router.utcnow", lambda: FROZEN)
    database = Database(db_url)
    seeded = await seed_ward(database)
    yield Router(database, make_settings(db_url)), database, seeded
    await database.dispose()


async def _send(chat: Chat, typed: str) -> list[Outgoing]:
    if typed == "photo":
        return await chat.send(photo="photo-file-1")
    return await transcripts.send(chat, typed)


@pytest.mark.parametrize("channel", ["telegram", "zalo", "web"])
async def test_transcript(channel: str, ward: tuple[Router, Database, Seeded]) -> None:
    router, db, seeded = ward
    chat = Chat(router, db, channel=channel, external_id=f"{channel}-kp1", language="vi")
    await transcripts.replay(GOLDEN / f"{channel}.txt", chat, seeded.codes, say=_send)


# --- the count -------------------------------------------------------------------------------

def test_docs_taps_is_what_the_goldens_say() -> None:
    """docs/taps.md cannot go stale: it is the script's output from today's transcripts."""
    written = (taps.ROOT / taps.DOC).read_text(encoding="utf-8")
    assert written == taps.render(taps.count(taps.ROOT / taps.GOLDEN)), (
        "docs/taps.md is stale: run `python -m bench taps`")


def test_a_stretch_counts_the_inputs_up_to_the_saved_reply(tmp_path: Path) -> None:
    (tmp_path / "zalo.txt").write_text(
        "# taps: report, guided\n> /report\n< Hộ nào?\n< \n< 1. 12 Lê Lợi\n< 2. Tìm\n> 1\n"
        "< Bao nhiêu người (1 đến 4)?\n> 2\n< Đã lưu: báo cáo #1.\n"
        "> /help\n< …\n# another comment ends nothing counted\n", encoding="utf-8")
    # "/report" and "2" people are typed; "1" is the listed option's number: Zalo's tap.
    assert taps.count(tmp_path) == {"report, guided": {"zalo": taps.Count(3, 2)}}


def test_a_stretch_without_a_saved_reply_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "telegram.txt").write_text(
        "# taps: support, guided\n> /support\n> tap Hủy\n< Đã hủy; chưa lưu gì.\n"
        "# effects\n", encoding="utf-8")
    with pytest.raises(taps.TapsError, match="telegram.txt:1: .* no saved confirmation"):
        taps.count(tmp_path)
