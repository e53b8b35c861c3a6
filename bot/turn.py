"""One turn: everything a handler or flow step needs to answer one incoming update."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import Translator, pick_locale
from bot.messages import Button, Incoming, Outgoing
from bot.settings import Settings
from storage import outbox
from storage.models import ChatAccount, Person
from storage.people import Grant


@dataclass
class Turn:
    session: AsyncSession
    settings: Settings
    incoming: Incoming
    account: ChatAccount
    person: Person | None
    grants: list[Grant]
    now: datetime
    t: Translator = field(init=False)
    data: dict[str, Any] = field(default_factory=dict)  # the open flow's answers so far
    # What the turn looked up and may need again (a step's options: for its buttons, its
    # hint and the answer's check). Read in the turn's own transaction, so never stale.
    looked_up: dict[object, Any] = field(default_factory=dict)
    said: list[dict[str, Any]] = field(default_factory=list)  # the replies' payloads, in order

    def __post_init__(self) -> None:
        self.t = Translator(self.locale, self.settings.tz)

    @property
    def locale(self) -> str:
        person_locale = self.person.locale if self.person else None
        return pick_locale(person_locale, self.account.locale, self.incoming.language,
                           default=self.settings.default_locale)

    def set_locale(self, locale: str) -> None:
        self.account.locale = locale
        if self.person is not None:
            self.person.locale = locale
        self.t = Translator(self.locale, self.settings.tz)

    def has_role(self, *roles: str) -> bool:
        return any(grant.role in roles for grant in self.grants)

    def say(self, text: str, buttons: tuple[Button, ...] = (), **media: Any) -> None:
        """Queue a reply to this person, committed with the rest of the turn."""
        payload = Outgoing(text=text, buttons=buttons, **media).to_payload()
        self.said.append(payload)
        outbox.reply(self.session, self.account, payload)
