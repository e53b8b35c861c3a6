"""Flows tested with golden transcripts, as RapidPro's goflow does.

Each file in tests/golden/ is a conversation: lines starting with '> ' are what the person
sends, the rest is what the bot answered. The test replays the inputs through the real
router and database and compares the whole transcript. COSO_GOLDEN_UPDATE=1 rewrites the
files after a deliberate change; review the diff.

Inputs: plain text; 'tap LABEL' taps a button of the latest message that has it;
'tap-old LABEL' taps it on the oldest message that has it (a stale button); 'photo' sends a
photo; 'file' a document; '{leader:KP1}' is replaced by a fresh invite code of that kind.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from itertools import count
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.flows import engine
from bot.flows.engine import Flow, Option, Step
from bot.handlers.commands import COMMANDS, Handlers, include
from bot.handlers.router import Router
from bot.messages import Incoming, Outgoing
from bot.turn import Turn
from storage.db import Database
from storage.models import ChatAccount, OutboxMessage
from tests.conftest import Seeded, make_settings, seed_ward

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("COSO_GOLDEN_UPDATE") == "1"


async def _finish_survey(turn: Turn) -> None:
    answers = ", ".join(f"{key}={turn.data.get(key)}" for key in
                        ("topic", "people", "note", "photo"))
    turn.say(f"saved: {answers}")


async def _summary(turn: Turn) -> str:
    return f"topic={turn.data['topic']} people={turn.data['people']}"


# A flow with every kind of step, so the engine's rules are pinned by a transcript.
SURVEY = Flow(
    name="survey", title="survey",
    steps=(
        Step("topic", "choice", "Topic?", options=(
            Option("food", "Short of food", literal=True),
            Option("medicine", "Không có thuốc", literal=True))),
        Step("people", "number", "How many people ({min}-{max})?", minimum=1, maximum=5),
        Step("note", "text", "A note?", max_length=20, optional=True,
             goes_to=("confirm", "photo"),
             next=lambda data: "confirm" if data.get("note") == "no photo" else "photo"),
        Step("photo", "photo", "A photo?", optional=True),
        Step("confirm", "confirm", "Save it?", summary=_summary),
    ),
    finish=_finish_survey,
)


@pytest.fixture
async def router(db_url: str) -> AsyncIterator[tuple[Router, Database, Seeded]]:
    engine.register(SURVEY)

    extra = Handlers()

    @extra.command("survey", "survey", roles=frozenset({"leader"}), in_menu=False)
    async def survey(turn: Turn, args: str) -> None:
        await engine.begin(turn, SURVEY)

    include(extra)

    database = Database(db_url)
    seeded = await seed_ward(database)
    yield Router(database, make_settings(db_url)), database, seeded
    COMMANDS.pop("survey", None)
    engine.FLOWS.pop("survey", None)
    await database.dispose()


class Conversation:
    def __init__(self, router: Router, db: Database, seeded: Seeded) -> None:
        self.router, self.db, self.seeded = router, db, seeded
        self.updates = count(1)
        self.seen = 0
        self.shown: list[Outgoing] = []
        self.used_codes: dict[str, str] = {}

    async def send(self, line: str) -> list[str]:
        incoming = self._incoming(line)
        await self.router.handle(incoming)
        return await self._replies()

    def _incoming(self, line: str) -> Incoming:
        base = {"channel": "telegram", "external_id": "1001",
                "update_id": str(next(self.updates)), "display_name": "Trần Thị Bình",
                "language": "en"}
        if line.startswith(("tap ", "tap-old ")):
            label = line.split(" ", 1)[1]
            messages = self.shown if line.startswith("tap-old") else self.shown[::-1]
            payload = next(b.payload for m in messages for b in m.buttons if b.label == label)
            return Incoming(**base, choice=payload)
        if line == "photo":
            return Incoming(**base, photo="photo-file-1")
        if line == "file":
            return Incoming(**base, document="doc-file-1")
        return Incoming(**base, text=self._codes(line))

    def _codes(self, line: str) -> str:
        for key, code in self.seeded.codes.items():
            line = line.replace("{" + key + "}", code)
        return line

    async def _replies(self) -> list[str]:
        async with self.db.read() as session:
            query = (select(OutboxMessage).join(ChatAccount)
                     .where(ChatAccount.external_id == "1001", OutboxMessage.id > self.seen)
                     .order_by(OutboxMessage.id))
            rows = (await session.execute(query)).scalars().all()
        lines = []
        for row in rows:
            self.seen = row.id
            message = Outgoing.from_payload(row.payload)
            self.shown.append(message)
            lines += [f"< {part}" for part in message.text.split("\n")]
            if message.buttons:
                lines.append("  " + " ".join(f"[{b.label}]" for b in message.buttons))
        return lines


@pytest.mark.parametrize("name", sorted(p.stem for p in GOLDEN.glob("*.txt")))
async def test_transcript(name: str, router: tuple[Router, Database, Seeded]) -> None:
    path = GOLDEN / f"{name}.txt"
    expected = path.read_text(encoding="utf-8")
    conversation = Conversation(*router)
    produced: list[str] = []
    for line in expected.splitlines():
        if line.startswith("#"):
            produced.append(line)
        elif line.startswith("> "):
            produced.append(line)
            produced += await conversation.send(line[2:])
    actual = "\n".join(produced) + "\n"
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
    assert actual == expected
