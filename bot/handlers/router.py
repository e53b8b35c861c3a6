"""Every update enters here: once only, for one person at a time, in one transaction.

The ledger entry, the conversation's new state, the domain writes and the replies in the
outbox commit together; if anything fails, none of it happened and a redelivery of the
update is handled anew.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from bot.flows import engine, registration, report
from bot.handlers import flood, words
from bot.handlers.access import permits, refuse
from bot.handlers.commands import BUTTONS, COMMANDS, include, offered
from bot.handlers.included import INCLUDED
from bot.i18n import pick_locale
from bot.messages import MENU, Incoming
from bot.ops import metrics
from bot.settings import Settings
from bot.turn import Turn
from storage import conversations, ledger, people
from storage.db import Database
from storage.invites import ALPHABET, CODE_LENGTH, normalize_code
from storage.models import Conversation, Platform, utcnow
from wording import fold, normalize, typed_answer, within

log = logging.getLogger(__name__)

include(*INCLUDED)

# Where the role's commands come as buttons with the reply that leaves no question open:
# Telegram has its own command menu (setMyCommands) and Zalo shows no buttons.
MENU_CHANNELS = frozenset({Platform.WEB.value})


class Router:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary())

    async def handle(self, incoming: Incoming) -> None:
        """Handle one update; raises if it could not be committed (the platform retries)."""
        lock = self._locks.setdefault((incoming.channel, incoming.external_id), asyncio.Lock())
        async with lock, self.db.transaction(inline=True) as session:
            # The ledger entry, and on PostgreSQL the chat's turn lock in the same statement.
            if not await ledger.claim_turn(session, incoming.channel, incoming.update_id,
                                           incoming.external_id):
                log.info("update %s/%s already handled", incoming.channel, incoming.update_id)
                metrics.duplicate_update()
                return
            now = utcnow()
            # Account (locked), person, grants and open conversation in one statement; on
            # PostgreSQL the update counted on the account's flood window in it too.
            sender = await people.sender_of(session, incoming.channel, incoming.external_id,
                                            locked=True, count_at=now)
            account = sender.account
            if account.blocked_at is not None:
                account.blocked_at = None  # they wrote to us, so they unblocked the bot
            if (account.bot or "") != (incoming.bot or ""):  # a person's messages go
                account.bot = incoming.bot or None  # through the bot they talk to
            if account.locale is None and incoming.language:
                # Kept so that what we send unasked (check-ins, notices) is in their language.
                account.locale = pick_locale(incoming.language, default="") or None
            verdict = flood.judge(account, now, self.settings.flood_per_minute,
                                  counted=sender.counted)
            # Core, before any read autoflushes it; nothing to write when the read counted
            # the update and nothing else changed (the usual turn on PostgreSQL).
            await people.save_account(session, account)
            if verdict is flood.Verdict.IGNORE:
                return  # ledgered and counted, nothing more: no query, no reply
            turn = Turn(session=session, settings=self.settings, incoming=incoming,
                        account=account, person=sender.person, grants=sender.grants, now=now)
            if verdict is flood.Verdict.WARN:
                flood.warn(turn)
                return
            await dispatch(turn)
            if account.channel in MENU_CHANNELS:
                await _offer_menu(turn)


async def dispatch(turn: Turn) -> None:
    conversation = await engine.current(turn)
    incoming = turn.incoming
    parsed = incoming.command
    if parsed is not None:
        name, args = parsed
        if conversation is not None and name in engine.STEERING:
            await engine.resume(turn, conversation)
            return
        await _command(turn, conversation, name, args)
        return
    if incoming.payload is not None and not incoming.payload.startswith(engine.BUTTON_PREFIX):
        await _button(turn, incoming.payload)
        return
    if conversation is not None:
        await engine.resume(turn, conversation)
        return
    tapped = _typed_tap(turn)
    if tapped is not None:
        await _button(turn, tapped)
        return
    named = words.named(incoming.text)  # "báo cáo", "diemdanh": only with no question open
    if named is not None and named in COMMANDS:
        await _command(turn, None, named, "")
        return
    leading = words.leading(incoming.text)  # "báo cáo 12 Lê Lợi F0": /report with its text
    if leading is not None and leading[0] in COMMANDS:
        await _command(turn, None, *leading)
        return
    await _outside_flow(turn)


async def _offer_menu(turn: Turn) -> None:
    """The role's commands on the turn's last reply, when it leaves no question open."""
    if not turn.said or turn.person is None or not turn.grants:
        return
    if await conversations.of_account(turn.session, turn.account.id) is not None:
        return
    menu = [[turn.t(words.TABLE[c.name].label), f"/{c.name}"] for c in offered(turn)
            if c.name in words.TABLE and c.name not in words.NOT_IN_MENU]
    # The reply is inserted at the commit (storage/outbox.reply), so it still takes the menu.
    turn.said[-1].setdefault("extra", {})[MENU] = menu


def _typed_tap(turn: Turn) -> str | None:
    """A typed "1" or "Đã nhận" answering the latest buttons shown outside a flow."""
    buttons = turn.account.latest_buttons or []
    text = turn.incoming.text
    if not buttons or text is None:
        return None
    wanted = typed_answer(text)
    for number, (label, payload) in enumerate(buttons, start=1):
        if wanted in (str(number), fold(str(label))):
            return str(payload)
    # Words of one label, without diacritics: "khong thay doi" for "Hôm nay không có gì thay
    # đổi" (a lone word is too likely to be a message of its own); several labels: none.
    found = [str(payload) for label, payload in buttons
             if within(wanted, fold(str(label)), stretch=False)]
    return found[0] if len(found) == 1 else None


async def _command(turn: Turn, conversation: Conversation | None, name: str, args: str
                   ) -> None:
    command = COMMANDS.get(name)
    if command is None:
        turn.say(turn.t("I do not know the command /{name}. Send /help to see what you can do.",
                        name=name[:32]))
        return
    if not permits(turn, command.roles):
        refuse(turn, f"/{name}", command.roles)
        return
    if conversation is not None:
        await engine.abandon(turn, conversation)
    await command.run(turn, args)


async def _button(turn: Turn, payload: str) -> None:
    prefix = payload.split(":", 1)[0]
    handler = BUTTONS.get(prefix)
    if handler is None:
        turn.say(turn.t("This question is no longer open."))
        return
    await handler(turn, payload)


async def _outside_flow(turn: Turn) -> None:
    incoming = turn.incoming
    if incoming.payload is not None:
        turn.say(turn.t("This question is no longer open."))
        return
    text = normalize(incoming.text or "")
    if turn.person is None or not turn.grants:  # no post left (a handover): a stranger again
        if _looks_like_code(text):  # people on Zalo often send the bare code
            await engine.begin(turn, registration.FLOW, first_answer=text)
            return
        if flood.invite_hint_due(turn):
            turn.say(turn.t("Hello! I am Coso. To use me, ask your ward staff for an invite "
                            "code, then send /start followed by the code."))
        return
    if text and await report.quick(turn, text, asked=False):  # "12 Lê Lợi F0 3 người khẩn"
        return
    turn.say(turn.t("I did not understand that. Send /help to see what you can do."))


def _looks_like_code(text: str) -> bool:
    code = normalize_code(text)
    return len(code) == CODE_LENGTH and len(text) <= CODE_LENGTH + 4 and all(
        ch in ALPHABET for ch in code)
