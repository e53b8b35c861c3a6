"""What crosses the channel boundary, with no platform in it."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from wording import normalize


@dataclass(frozen=True)
class Incoming:
    """One update from a person, as every channel reports it."""

    channel: str
    external_id: str  # the person's chat id on that channel
    update_id: str  # unique per channel; the ledger key
    text: str | None = None
    payload: str | None = None  # the payload of a tapped button (Button.payload)
    photo: str | None = None  # the platform's reference to a photo (file id or URL)
    document: str | None = None
    display_name: str | None = None
    language: str | None = None  # the platform's language hint, e.g. "en-US"
    # Which of the channel's bots it came through (bot.settings.BotToken.key; "" the
    # default): the chat account follows it, and what is sent to them goes through it.
    bot: str = ""
    # The platform's id of the message whose button was tapped (Telegram's message_id, the
    # web chat's bubble): what an edit of that message names. None where taps do not exist.
    message_ref: str | None = None

    @property
    def command(self) -> tuple[str, str] | None:
        """('start', 'ABC123') for '/start ABC123'; '/Start@coso_bot' counts as 'start'."""
        text = normalize(self.text or "")
        if not text.startswith("/") or len(text) < 2:
            return None
        head, _, args = text[1:].partition(" ")
        name = head.split("@", 1)[0].casefold()
        return (name, args.strip()) if name.isascii() and name.replace("_", "").isalnum() else None


@dataclass(frozen=True)
class Button:
    label: str
    payload: str  # at most 64 bytes (Telegram's callback_data limit)
    # What a person types for it where there are no buttons (Zalo): None, the next number of
    # the list; "0" (Back) is listed last; TYPED_LABEL, no number at all: the label itself is
    # the word to type ("Hủy" under a text question, where a number would be an answer).
    key: str | None = None
    # Steering (Skip, Back, Cancel) rather than an answer: laid out in one row after them.
    steer: bool = False
    # Ticks an option of a multi-select ("on" or "off" now): the message changes in place,
    # nothing is answered yet.
    toggle: str = ""


TYPED_LABEL = "•"


# Outgoing.extra key: send with Telegram's allow_paid_broadcast (0.1 Star a message, up to
# 1,000 messages/s); the sender paces such rows at the channel's paid rate.
PAID_BROADCAST = "paid_broadcast"
# Outgoing.extra key: the person's commands as [[label, "/report"], ...], on the reply that
# leaves no question open; the web chat shows them as a menu under the thread.
MENU = "menu"
# Outgoing.extra key: an urgent report's alert to ward staff; the web chat styles it apart.
URGENT_ALERT = "urgent_alert"
# Outgoing.extra key: a flow's question; the web chat leaves only the newest one's buttons live.
QUESTION = "question"
# Outgoing.extra key: not a new message but an edit of the one with this Incoming.message_ref
# (a multi-select's ticks); a channel that cannot edit it sends the message anew.
EDIT = "edit"
# Outgoing.extra key, with EDIT: only the buttons change (none: the answered question's
# keyboard taken away); a channel that cannot edit drops it, nothing is lost.
KEYBOARD_ONLY = "keyboard_only"
# Outgoing.extra key: a sentence said in place of the photo by a channel that cannot get it
# when it delivers (a Telegram file id that cannot be fetched now, no link for Zalo).
PHOTO_NOTE = "photo_note"
# EDIT's value for "the chat's newest question", whichever message that was: a typed answer
# names no message, so the channel resolves it (Telegram remembers what it sent).
LAST_QUESTION = "question"


@dataclass(frozen=True)
class Outgoing:
    """One message to one person: buttons on Telegram and the web, a numbered list on Zalo."""

    text: str
    buttons: tuple[Button, ...] = ()
    photo: str | None = None  # a file path on this machine, a URL, or a platform file id
    document: str | None = None  # a file path on this machine
    filename: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"text": self.text}
        if self.buttons:
            payload["buttons"] = [_button_json(b) for b in self.buttons]
        for key in ("photo", "document", "filename"):
            if getattr(self, key):
                payload[key] = getattr(self, key)
        if self.extra:
            payload["extra"] = self.extra
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Outgoing:
        return cls(
            text=payload.get("text", ""),
            buttons=tuple(Button(*button) for button in payload.get("buttons", [])),
            photo=payload.get("photo"),
            document=payload.get("document"),
            filename=payload.get("filename"),
            extra=payload.get("extra", {}),
        )

    @property
    def paid_broadcast(self) -> bool:
        return bool(self.extra.get(PAID_BROADCAST))

    @property
    def edit_of(self) -> str | None:
        return self.extra.get(EDIT)

    @property
    def keyboard_only(self) -> bool:
        return bool(self.extra.get(KEYBOARD_ONLY))

    def keyed_buttons(self) -> list[tuple[str, Button]]:
        """Each button with what is typed for it where there are none, in the listed order:
        numbered ones first, then the typed labels, then "0"."""
        numbers = iter(range(1, len(self.buttons) + 1))
        keyed = [(b.key or str(next(numbers)), b) for b in self.buttons]
        return sorted(keyed, key=lambda pair: (pair[0] == TYPED_LABEL, pair[0] == "0"))

    def numbered_buttons(self) -> str:
        """The buttons as a numbered list, for channels without buttons ("" when none)."""
        return "\n".join(f"{key} {b.label}" if key == TYPED_LABEL else f"{key}. {b.label}"
                         for key, b in self.keyed_buttons())

    def numbered_text(self) -> str:
        return f"{self.text}\n\n{self.numbered_buttons()}" if self.buttons else self.text

    def numbered_parts(self, limit: int) -> list[str]:
        """numbered_text cut to the limit, the numbered buttons kept whole with the last part."""
        parts = split_text(self.text, limit)
        numbered = self.numbered_buttons()
        if not numbered:
            return parts
        if len(parts[-1]) + len(numbered) + 2 <= limit:
            parts[-1] = f"{parts[-1]}\n\n{numbered}" if parts[-1] else numbered
        else:
            parts += split_text(numbered, limit)
        return parts


def _button_json(button: Button) -> list[Any]:
    """[label, payload], then key, steer and toggle only as far as one is set: stored rows
    stay small, and Button(*row) reads any of them."""
    row = [button.label, button.payload, button.key, button.steer, button.toggle]
    while len(row) > 2 and not row[-1]:
        row.pop()
    return row


def split_text(text: str, limit: int) -> list[str]:
    """Cut a long text into parts of at most `limit` characters, at line breaks where it can,
    else at spaces, else hard, so no platform truncates a message."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit + 1)
        if cut <= 0:
            cut = rest.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n ")
    parts.append(rest)
    return [part for part in parts if part] or [""]


# Ids a person can send back to us (in a button's payload, a web chat route) are bound to the
# columns they look up: INTEGER ids are 32-bit on PostgreSQL, the outbox's BIGINT 64-bit. A
# larger number raises OverflowError in the driver, so it is refused here, before any query.
ID_MAX = 2**31 - 1
BIG_ID_MAX = 2**63 - 1


def parse_id(text: str | None, *, low: int = 1, high: int = ID_MAX) -> int | None:
    """The id in `text` (ASCII digits only) if it lies in low..high, else None: never an
    exception, whatever a forged payload holds ("-1", "١٢", "²", 10,000 digits)."""
    if not text or not text.isascii() or not text.isdigit() or len(text) > len(str(high)):
        return None
    value = int(text)
    return value if low <= value <= high else None


def id_and_action(payload: str, actions: Collection[str]) -> tuple[int, str] | None:
    """(12, "t") for the button payload "al:12:t" when "t" is one of `actions`; None for
    anything else a forged payload may hold (parts missing or extra, a bad id)."""
    parts = payload.split(":")
    if len(parts) != 3 or parts[2] not in actions:
        return None
    record = parse_id(parts[1])
    return None if record is None else (record, parts[2])
