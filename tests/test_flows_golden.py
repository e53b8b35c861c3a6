"""Flows tested with golden transcripts, as RapidPro's goflow does.

Each file in tests/golden/ is a conversation: lines starting with '> ' are what the person
sends, the rest is what the bot answered. The test replays the inputs through the real
router and database and compares the whole transcript. After it, the '# effects' block pins
what the conversation committed and sent to other people (tests/effects.py).
COSO_GOLDEN_UPDATE=1 rewrites the files, effects included, after a deliberate change; review
the diff.

Inputs: plain text; 'tap LABEL' taps a button of the latest message that has it;
'tap-old LABEL' taps it on the oldest message that has it (a stale button); 'photo' sends a
photo; 'file' a document; '{leader:KP1}' is replaced by a fresh invite code of that kind.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.flows import engine
from bot.flows.engine import Flow, Option, Step
from bot.handlers.commands import COMMANDS, Handlers, include
from bot.handlers.router import Router
from bot.messages import Outgoing
from bot.turn import Turn
from storage.db import Database
from tests.chat import Chat, transcript_lines
from tests.conftest import Seeded, make_settings, seed_ward
from tests.effects import EFFECTS, Effects

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


class Transcript:
    """The golden file's person, through the shared chat client, in the file's notation."""

    def __init__(self, router: Router, db: Database, seeded: Seeded) -> None:
        self.chat = Chat(router, db)
        self.seeded = seeded

    async def send(self, line: str) -> list[str]:
        try:
            if line.startswith("tap-old "):
                replies = await self.chat.tap_old(line.split(" ", 1)[1])
            elif line.startswith("tap "):
                replies = await self.chat.tap(line.split(" ", 1)[1])
            else:
                replies = await self._send(line)
        except LookupError:
            return [f"! no button {line.split(' ', 1)[1]!r} on screen"]
        return transcript_lines(replies)

    async def _send(self, line: str) -> list[Outgoing]:
        if line == "photo":
            return await self.chat.send(photo="photo-file-1")
        if line == "file":
            return await self.chat.send(document="doc-file-1")
        return await self.chat.send(self._codes(line))

    def _codes(self, line: str) -> str:
        for key, code in self.seeded.codes.items():
            line = line.replace("{" + key + "}", code)
        return line


@pytest.mark.parametrize("name", sorted(p.stem for p in GOLDEN.glob("*.txt")))
async def test_transcript(name: str, router: tuple[Router, Database, Seeded]) -> None:
    path = GOLDEN / f"{name}.txt"
    expected = path.read_text(encoding="utf-8")
    _, db, _ = router
    transcript = Transcript(*router)
    effects = await Effects.begin(db)
    produced: list[str] = []
    for line in expected.splitlines():
        if line == EFFECTS:
            break  # what follows is regenerated below
        if line.startswith("#"):
            produced.append(line)
        elif line.startswith("> "):
            produced.append(line)
            produced += await transcript.send(line[2:])
    produced += await effects.block([transcript.chat])
    actual = "\n".join(produced) + "\n"
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
    assert actual == expected
