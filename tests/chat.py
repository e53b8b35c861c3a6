"""One chat client for tests: a person talking to the real router, on Telegram, Zalo or the
web chat alike.

    chat = Chat(router, db, channel="zalo", external_id="vi-leader", language=None)
    await chat.send("/report")        # an update from the person; returns what came back
    await chat.tap("Search")          # the button of the newest message that has it
    await chat.tap_old("Confirm")     # the same button on the oldest such message (stale)
    await chat.send(photo="file-1")   # a photo (document="..." for a file)
    await chat.inbox()                # what was queued to them since the last look

Telegram and the web chat send a tapped button's payload, naming the message it was on (its
outbox row stands for the platform's message id); Zalo has no buttons, so there tap sends
what the numbered list shows for it, as a person would, and tap_old is refused. Replies are
read from the outbox, the way every channel receives them; an edit (a multi-select's ticks,
an answered question's keyboard taken away) changes the message it names in `shown`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count
from typing import Any

from sqlalchemy import select

from bot.handlers.router import Router
from bot.messages import LAST_QUESTION, QUESTION, TYPED_LABEL, Incoming, Outgoing
from storage.db import Database
from storage.models import ChatAccount, OutboxMessage

_updates = count(1)  # update ids unique across every chat of a test run
CHANNELS = ("telegram", "zalo", "web")


@dataclass
class Chat:
    router: Router
    db: Database
    channel: str = "telegram"
    external_id: str = "1001"
    display_name: str | None = "Trần Thị Bình"
    language: str | None = "en"
    seen: int = 0  # the last outbox row read
    shown: list[Outgoing] = field(default_factory=list)  # every message received, in order
    refs: list[str] = field(default_factory=list)  # each shown message's outbox row id
    sent: list[Incoming] = field(default_factory=list)

    def __post_init__(self) -> None:
        assert self.channel in CHANNELS, self.channel

    def incoming(self, **content: Any) -> Incoming:
        return Incoming(channel=self.channel, external_id=self.external_id,
                        update_id=f"chat{next(_updates)}", display_name=self.display_name,
                        language=self.language, **content)

    async def send(self, text: str | None = None, **content: Any) -> list[Outgoing]:
        """Send a text (or photo=..., document=..., payload=...); returns the replies."""
        if text is not None:
            content["text"] = text
        return await self.deliver(self.incoming(**content))

    async def deliver(self, incoming: Incoming) -> list[Outgoing]:
        """Hand an update (perhaps a replayed one) to the router; returns the replies."""
        self.sent.append(incoming)
        await self.router.handle(incoming)
        return await self.inbox()

    async def tap(self, label: str) -> list[Outgoing]:
        """Tap the button labelled so on the newest message that has one."""
        return await self._tap(label, newest=True)

    async def tap_old(self, label: str) -> list[Outgoing]:
        """Tap it on the oldest message that has it: a button left from an older question."""
        if self.channel == "zalo":
            raise ValueError("Zalo shows numbered lists, not buttons: nothing old to tap")
        return await self._tap(label, newest=False)

    async def _tap(self, label: str, newest: bool) -> list[Outgoing]:
        order = range(len(self.shown) - 1, -1, -1) if newest else range(len(self.shown))
        for index in order:
            message = self.shown[index]
            for key, button in message.keyed_buttons():
                if button.label == label:
                    if self.channel == "zalo":
                        return await self.send(button.label if key == TYPED_LABEL else key)
                    return await self.send(payload=button.payload,
                                           message_ref=self.refs[index])
        raise LookupError(f"no button {label!r} was shown")

    async def inbox(self) -> list[Outgoing]:
        """The messages queued to this person since the last look, oldest first."""
        async with self.db.read() as session:
            rows = (await session.execute(
                select(OutboxMessage).join(ChatAccount)
                .where(ChatAccount.channel == self.channel,
                       ChatAccount.external_id == self.external_id,
                       OutboxMessage.id > self.seen).order_by(OutboxMessage.id))).scalars().all()
        if rows:
            self.seen = rows[-1].id
        messages = [Outgoing.from_payload(row.payload) for row in rows]
        for row, message in zip(rows, messages, strict=True):
            if message.edit_of is None:
                self.shown.append(message)
                self.refs.append(str(row.id))
            elif message.edit_of in self.refs:
                self._edit(self.refs.index(message.edit_of), message)
            elif message.edit_of == LAST_QUESTION:
                asked = [i for i, m in enumerate(self.shown) if m.extra.get(QUESTION)]
                if asked:
                    self._edit(asked[-1], message)
        return messages

    def _edit(self, index: int, edit: Outgoing) -> None:
        old = self.shown[index]
        text = old.text if edit.keyboard_only else edit.text
        self.shown[index] = Outgoing(text=text, buttons=edit.buttons, photo=old.photo,
                                     document=old.document, filename=old.filename,
                                     extra=old.extra)


def transcript_lines(messages: list[Outgoing]) -> list[str]:
    """Messages in the golden transcripts' notation: '< ' a line of text, then the buttons;
    a message changed in place, its new buttons after '~ '. An answered question's keyboard
    taken away is not shown: every tap does it."""
    lines = []
    for message in messages:
        if message.edit_of is not None:
            if message.buttons:
                lines.append("~ " + _keyboard(message))
            continue
        lines += [f"< {part}" for part in message.text.split("\n")]
        if message.buttons:
            lines.append("  " + _keyboard(message))
    return lines


def _keyboard(message: Outgoing) -> str:
    """The buttons as the phone lays them out: the answers, then the steering row."""
    ordered = [b for b in message.buttons if not b.steer] + [b for b in message.buttons
                                                             if b.steer]
    return " ".join(f"[{b.label}]" for b in ordered)
