"""/directive: admins and ward staff send a directive to a unit subtree, and each recipient
acknowledges it with one tap (a number on Zalo) and, with a deadline, reports the unit done.

Sending (a conversation): scope → role → text → attachment (optional photo or PDF) → deadline
(optional) → confirm. The directive, its recipients and every copy in the outbox commit
together. Card payloads are "dv:<directive>:<unit>:<a|d>": the directive and the unit the
recipient answers for; the person is the one pressing.

A PDF cannot go to Zalo (its bot API sends photos only): Zalo recipients get the text with a
note that the file is in the web chat or on Telegram.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot import files
from bot.flows import engine
from bot.flows.engine import BadAnswer, Flow, Option, Step, register
from bot.flows.support import scope_roots
from bot.handlers.access import LEADERS, STAFF, refuse
from bot.i18n import N_, Translator, pick_locale
from bot.messages import EDIT, KEYBOARD_ONLY, PAID_BROADCAST, PHOTO_NOTE, Button, Outgoing, parse_id
from bot.settings import Settings
from bot.turn import Turn
from storage import directives, outbox, people, units
from storage.directives import Draft, Press, Refusal
from storage.models import (
    ChatAccount,
    Directive,
    DirectiveRecipient,
    Person,
    Platform,
    Role,
    Unit,
)
from wording import when

log = logging.getLogger(__name__)

ROLES = STAFF
BUTTON = "dv"
EVERYONE = "all"
PAID_OFFERED = "paid_offered"  # set at the start: the person may choose paid broadcast

REFUSALS = {
    Refusal.EMPTY_SCOPE: N_("No one holds that role in that unit or below, so nothing was "
                            "sent."),
    Refusal.TOO_LONG: N_("The text is too long: at most {max} characters."),
    Refusal.EMPTY_TEXT: N_("The directive has no text."),
    Refusal.PAST_DEADLINE: N_("The deadline has already passed, so nothing was sent."),
    Refusal.ATTACHMENT_TYPE: N_("Only a photo (JPG, PNG) or a PDF can be attached."),
    Refusal.ATTACHMENT_TOO_BIG: N_("The attachment is larger than the chat platforms accept "
                                   "({limit}), so nothing was sent."),
}


def refusal_text(t: Translator, refusal: Refusal, filename: str = "") -> str:
    kind = directives.attachment_kind(filename) if filename else None
    limit = directives.upload_limit(kind)
    return t(REFUSALS[refusal], max=t.number(directives.MAX_TEXT),
             limit=f"{t.number(limit // directives.MB)} MB")


# --- the card each recipient sees -------------------------------------------------------------

def card(t: Translator, directive: Directive, unit: Unit, channel: str,
         reminder: bool = False, entry: DirectiveRecipient | None = None,
         attached: Attached | None = None) -> Outgoing:
    """`attached`: the directive's attachment (attached_of), worked out once for its cards."""
    head = t("Directive #{id} for {unit}", id=directive.id, unit=unit.name)
    if reminder:
        head = t("Reminder: {directive}", directive=head)
    lines = [head, directive.text]
    if directive.deadline is not None:
        lines.append(t("Deadline: {when}", when=t.datetime(directive.deadline)))
    buttons = card_buttons(t, directive, unit.id, entry)
    if attached is None:
        return Outgoing(text="\n".join(lines), buttons=tuple(buttons))
    if attached.kind == "photo":
        note = _photo_note(channel, attached)
        if note is None:
            return Outgoing(text="\n".join(lines), buttons=tuple(buttons), photo=attached.ref,
                            extra={} if channel == Platform.TELEGRAM else {
                                PHOTO_NOTE: t(_fallback(attached))})
        lines.append(t(note))
    elif attached.kind == "document" and channel != Platform.ZALO:
        return Outgoing(text="\n".join(lines), buttons=tuple(buttons), document=attached.ref,
                        filename=attached.name)
    elif attached.link is not None:  # Zalo sends no files: a link to it
        lines.append(t("The attached file ({name}), for 7 days: {link}", name=attached.name,
                       link=attached.link))
    else:
        lines.append(t(N_("A file ({name}) comes with this directive; open it in the web chat "
                          "or on Telegram."), name=attached.name))
    return Outgoing(text="\n".join(lines), buttons=tuple(buttons))


def card_buttons(t: Translator, directive: Directive, unit_id: int,
                 entry: DirectiveRecipient | None = None) -> list[Button]:
    """What is left to press: Received until acknowledged, Report done until done."""
    payload = f"{BUTTON}:{directive.id}:{unit_id}:"
    buttons: list[Button] = []
    if directive.requires_ack and (entry is None or entry.acknowledged_at is None):
        buttons.append(Button(t("Received"), payload + "a"))
    if directive.deadline is not None and (entry is None or entry.done_at is None):
        buttons.append(Button(t("Report done"), payload + "d"))
    return buttons


@dataclass(frozen=True)
class Attached:
    """A directive's attachment as its cards carry it, worked out once per directive."""

    ref: str  # what a channel is handed: the file on this machine, a URL, a platform's id
    name: str
    kind: str | None  # "photo", "document" or None (directives.attachment_kind)
    local: bool  # a file under COSO_DATA_DIR (sent in the web chat, or by `coso directive`)
    link: str | None  # a signed URL of that file, when COSO_PUBLIC_URL is set (for Zalo)
    public: bool  # COSO_PUBLIC_URL is set: Zalo, which takes photos by URL only, gets links
    relayed: bool  # a Telegram file id the other channels fetch through the Telegram bot


def attached_of(settings: Settings, directive: Directive) -> Attached | None:
    if directive.attachment is None:
        return None
    name = directive.attachment_name or "photo.jpg"
    local = files.own_file(settings, directive.attachment)
    return Attached(ref=str(local) if local else directive.attachment, name=name,
                    kind=directives.attachment_kind(name), local=local is not None,
                    link=files.signed_url(settings, local) if local else None,
                    public=bool(settings.public_url),
                    relayed=(bool(settings.telegram_bots)
                             and files.is_file_id(directive.attachment)))


def _photo_note(channel: str, attached: Attached) -> str | None:
    """None when the channel shows the photo itself, else the sentence (a msgid) saying where
    it is. Telegram sends its own file ids, URLs and files of this machine; the web chat shows
    a file of this machine, an HTTPS URL, and a Telegram photo fetched through the Telegram
    bot (the relay, bot/files.py); Zalo takes photos by URL only: a signed link to a file
    of this machine or to the relayed copy, which needs COSO_PUBLIC_URL."""
    ref = attached.ref
    is_url = ref.startswith(("http://", "https://"))
    if channel == Platform.TELEGRAM or (is_url and channel == Platform.ZALO):
        return None
    if channel == Platform.ZALO:
        if attached.public and (attached.local or attached.relayed):
            return None
        return (N_("A photo comes with this directive; open it in the web chat.")
                if attached.local else _fallback(attached))
    if attached.local or ref.startswith("https://") or attached.relayed:
        return None
    return _fallback(attached)


def _fallback(attached: Attached) -> str:
    """Where the photo is when a channel cannot get it (said instead, PHOTO_NOTE)."""
    if attached.local:
        return N_("A photo comes with this directive; open it in the web chat.")
    return N_("A photo comes with this directive; open it on Telegram.")


async def send_to(session: AsyncSession, settings: Settings, directive: Directive,
                  entries: Sequence[DirectiveRecipient], reminder: bool = False) -> int:
    """Each entry's card on every chat account of its person; returns messages queued."""
    return (await _queue(session, settings, directive, entries, reminder))[0]


async def catch_up(session: AsyncSession, settings: Settings, account: ChatAccount,
                   person_id: int, now: datetime) -> int:
    """The cards of the directives still owed to a person, on a chat they connect now (a
    leader who joins after the send, or adds Zalo to Telegram); returns cards queued."""
    owed: dict[int, tuple[Directive, list[DirectiveRecipient]]] = {}
    for directive, entry in await directives.owed_to(session, person_id, now):
        owed.setdefault(directive.id, (directive, []))[1].append(entry)
    queued = 0
    for directive, entries in owed.values():  # one _cards per directive: its reads once
        for to, entry, message in await _cards(session, settings, directive, entries):
            if to.id == account.id:  # after the turn's own replies: the welcome first
                outbox.reply(session, account, message.to_payload(), outbox.BULK,
                             directives.ref(directive.id, entry.unit_id))
                queued += 1
    return queued


def paid_calls(message: Outgoing) -> int:
    """Telegram API calls (paid broadcast: 0.1 Star each) the card takes: the media, then
    the text as its caption when it fits, else as messages of up to 4,096 characters."""
    text = len(message.text.strip())
    if message.photo or message.document:
        return 1 if text <= 1024 else 1 + -(-text // 4096)
    return max(1, -(-text // 4096))


def paid_stars(calls: int) -> str:
    """0.1 Star a paid message, as a plain decimal (Babel formats it for a person)."""
    return f"{calls // 10}.{calls % 10}"


async def _cards(session: AsyncSession, settings: Settings, directive: Directive,
                 entries: Sequence[DirectiveRecipient], reminder: bool = False
                 ) -> list[tuple[ChatAccount, DirectiveRecipient, Outgoing]]:
    """Each entry's card, in its person's language, for every chat account of the person."""
    accounts: dict[int, list[tuple[ChatAccount, Person]]] = {}
    for account, person in await people.active_accounts(
            session, {entry.person_id for entry in entries}):
        accounts.setdefault(person.id, []).append((account, person))
    unit_by_id = await units.by_ids(session, {entry.unit_id for entry in entries})
    attached = attached_of(settings, directive)
    cards = []
    for entry in entries:
        for account, person in accounts.get(entry.person_id, []):
            t = Translator(pick_locale(person.locale, account.locale,
                                       default=settings.default_locale), settings.tz)
            cards.append((account, entry, card(t, directive, unit_by_id[entry.unit_id],
                                               account.channel, reminder, entry, attached)))
    return cards


async def _queue(session: AsyncSession, settings: Settings, directive: Directive,
                 entries: Sequence[DirectiveRecipient], reminder: bool = False,
                 paid: bool = False) -> tuple[int, int]:
    """(messages queued, paid Telegram calls among them). paid: the Telegram cards go with
    allow_paid_broadcast; Zalo and the web chat have no such thing and go at their pace."""
    queued = calls = 0
    for account, entry, message in await _cards(session, settings, directive, entries,
                                                reminder):
        if paid and account.channel == Platform.TELEGRAM:
            message = replace(message, extra={**message.extra, PAID_BROADCAST: True})
            calls += paid_calls(message)
        outbox.enqueue(session, account, message.to_payload(), outbox.BULK,
                       directives.ref(directive.id, entry.unit_id))
        queued += 1
    return queued, calls


async def price(session: AsyncSession, settings: Settings, draft: Draft) -> int:
    """Paid Telegram calls the draft would take if sent now, counted card by card as `_queue`
    counts them. The directive has no id yet: a seven-digit one in each heading makes this
    an upper bound of what the sent cards take, so a price within the cap stays within it."""
    probe = Directive(id=9_999_999, text=draft.text, deadline=draft.deadline,
                      attachment=draft.attachment, attachment_name=draft.attachment_name,
                      requires_ack=draft.requires_ack)
    entries = [DirectiveRecipient(person_id=person_id, unit_id=unit_id)
               for person_id, unit_id in await directives.recipients(session, draft.scope,
                                                                      draft.role)]
    return sum(paid_calls(message)
               for account, _, message in await _cards(session, settings, probe, entries)
               if account.channel == Platform.TELEGRAM)


def within_cap(settings: Settings, calls: int) -> bool:
    """TELEGRAM_PAID_BROADCAST_MAX_STARS caps one directive's spend; unset: paid is off."""
    cap = settings.telegram_paid_broadcast_max_stars
    return cap is not None and calls <= round(cap * 10)


async def on_button(turn: Turn, payload: str) -> None:
    """A recipient's "Received" or "Done": recorded once, harmless when pressed again."""
    parts = payload.split(":")
    directive_id = parse_id(parts[1]) if len(parts) == 4 else None
    unit_id = parse_id(parts[2]) if len(parts) == 4 else None
    if directive_id is None or unit_id is None or turn.person is None:
        turn.say(turn.t("This question is no longer open."))
        return
    entry = await directives.recipient(turn.session, directive_id, unit_id, turn.person.id)
    if entry is None:
        refuse(turn, "a directive", LEADERS)
        return
    outcome = await directives.press(turn.session, entry, parts[3], turn.now)
    log.info("directive %s unit %s: %s %s", entry.directive_id, entry.unit_id, parts[3],
             outcome)
    directive = await turn.session.get(Directive, entry.directive_id)
    if turn.incoming.message_ref is not None and directive is not None:
        # The pressed card keeps only what is left to press, as an answered check-in does.
        turn.say("", tuple(card_buttons(turn.t, directive, entry.unit_id, entry)),
                 extra={EDIT: turn.incoming.message_ref, KEYBOARD_ONLY: True})
    if parts[3] == "d":
        turn.say(turn.t("Recorded: the unit has done directive #{id}.", id=entry.directive_id)
                 if outcome is Press.MOVED else
                 turn.t("Directive #{id} was already reported done.", id=entry.directive_id))
        if outcome is Press.MOVED and not await engine.current(turn):
            await engine.begin(turn, NOTE_FLOW)
    else:
        turn.say(turn.t("Thank you: directive #{id} is acknowledged.", id=entry.directive_id)
                 if outcome is Press.MOVED else
                 turn.t("You have already acknowledged directive #{id}.", id=entry.directive_id))


# --- sending from chat ------------------------------------------------------------------------

async def send(session: AsyncSession, settings: Settings, draft: Draft,
               person_id: int | None, now: datetime, paid: bool = False
               ) -> tuple[Directive, int, int, int] | Refusal:
    """Create and queue the directive: (directive, recipients, messages, paid Telegram calls)
    or why not. paid: an urgent directive with Telegram's paid broadcast; the caller checks
    the cost (paid_stars) against TELEGRAM_PAID_BROADCAST_MAX_STARS before committing."""
    created = await directives.create(session, draft, person_id, now)
    if isinstance(created, Refusal):
        return created
    directive, entries = created
    queued, calls = await _queue(session, settings, directive, entries, paid=paid)
    log.info("directive %s sent: %d recipients, %d messages, %d paid", directive.id,
             len(entries), queued, calls)
    return directive, len(entries), queued, calls


async def _scope_options(turn: Turn) -> Sequence[Option]:
    options: list[Option] = []
    for root in scope_roots(turn, ROLES):
        options.append(Option(str(root.id), root.name, literal=True, aliases=(root.code,)))
        children = [u for u in await units.subtree(turn.session, root) if u.parent_id == root.id]
        options.extend(Option(str(child.id), child.name, literal=True, aliases=(child.code,))
                       for child in children)
    return options


async def _role_options(turn: Turn) -> Sequence[Option]:
    return [Option(Role.LEADER, N_("Leaders")), Option(EVERYONE, N_("Everyone with a role"))]


async def _check_text(turn: Turn, text: str) -> str | None:
    return N_("The text is too long: at most {max} characters.") if len(
        text) > directives.MAX_TEXT else None


DEADLINE_EXAMPLE = N_("Write the deadline as you would say it, e.g. 17h, 17h30 5/12, "
                      "mai 17h, thứ 6, or 2026-12-31 17:00.")


async def _check_deadline(turn: Turn, text: str) -> str | None:
    try:
        parsed = when.moment(text, turn.now, turn.settings.tz)
    except when.WhenError as problem:
        if problem.msgid is None:
            raise BadAnswer(DEADLINE_EXAMPLE) from None
        raise BadAnswer(problem.msgid, **problem.values) from None
    return N_("The deadline has already passed.") if parsed <= turn.now else None


async def _record_deadline(turn: Turn, text: Any) -> None:
    """The moment meant, fixed when typed: "17h" must not move to tomorrow while the person
    reads the confirmation."""
    parsed = parse_deadline(str(text), turn.settings, turn.now) if text else None
    turn.data["deadline_at"] = _iso(parsed)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def parse_deadline(text: str, settings: Settings, now: datetime) -> datetime | None:
    """A deadline as typed ("17h 5/12", "mai 17h", "2026-12-31T17:00"), read in
    COSO_TIMEZONE, as a UTC time, as stored; None when it is unreadable."""
    try:
        return when.moment(text, now, settings.tz).astimezone(UTC)
    except when.WhenError:
        return None


def _draft(turn: Turn, scope: Unit) -> Draft:
    data = turn.data
    role = None if data.get("role") == EVERYONE else str(data.get("role") or Role.LEADER)
    deadline = data.get("deadline_at")
    if deadline is None and data.get("deadline"):  # a conversation saved before deadline_at
        deadline = _iso(parse_deadline(str(data["deadline"]), turn.settings, turn.now))
    photo = data.get("attachment")
    # A photo sent in chat is the platform's reference (a Telegram file id, a Zalo URL).
    return Draft(scope=scope, role=role, text=str(data["text"]),
                 attachment=str(photo) if photo else None,
                 attachment_name="photo.jpg" if photo else None,
                 deadline=datetime.fromisoformat(str(deadline)) if deadline else None)


async def _chosen_scope(turn: Turn) -> Unit | None:
    return await units.in_scope(turn.session, int(str(turn.data["scope"])),
                                scope_roots(turn, ROLES))


async def _summary(turn: Turn) -> str:
    scope = await _chosen_scope(turn)
    if scope is None:
        return "—"
    draft = _draft(turn, scope)
    people = await directives.recipients(turn.session, scope, draft.role)
    lines = [turn.t("To: {unit}", unit=scope.name),
             turn.t.plural("{n} recipient", "{n} recipients", len(people)),
             draft.text[:300]]
    missing = await directives.unconnected(turn.session, {person for person, _ in people})
    if missing:
        lines.insert(2, await _unconnected_summary(turn, people, missing))
    if draft.attachment is not None:  # the card carries it: say so before it goes
        lines.append(turn.t("Photo: {photo}", photo=turn.t("attached")))
    if draft.deadline is not None:
        lines.append(turn.t("Deadline: {when}",
                            when=turn.t.long_datetime(draft.deadline, now=turn.now)))
    if turn.data.get("urgency") == PAID:
        lines.append(paid_line(turn.t, await price(turn.session, turn.settings, draft)))
    return "\n".join(lines)


SHOWN_NAMES = 10


async def _unconnected_summary(turn: Turn, people: Sequence[tuple[int, int]],
                               missing: Sequence[tuple[int, str]]) -> str:
    """Whom no chat reaches yet, by name and unit (the first few), for staff to phone before
    they send: "2 of them have no chat connected yet; phone them: An (Tổ 1), Bình (Tổ 2)."""
    unit_of: dict[int, int] = {}
    for person_id, unit_id in people:  # by unit path: a person's first post names them
        unit_of.setdefault(person_id, unit_id)
    shown = missing[:SHOWN_NAMES]
    unit_ids = {unit_of[person_id] for person_id, _ in shown if person_id in unit_of}
    names = {unit_id: unit.name
             for unit_id, unit in (await units.by_ids(turn.session, unit_ids)).items()}
    who = first_names(turn.t, [
        turn.t("{name} ({unit})", name=name, unit=names[unit_of[person_id]])
        if unit_of.get(person_id) in names else name for person_id, name in shown],
        len(missing))
    return turn.t.plural("{n} of them has no chat connected yet; phone them: {names}.",
                         "{n} of them have no chat connected yet; phone them: {names}.",
                         len(missing), names=who)


def first_names(t: Translator, names: Sequence[str], total: int) -> str:
    """The first SHOWN_NAMES of `total` names, then how many more."""
    shown = ", ".join(names[:SHOWN_NAMES])
    if total > SHOWN_NAMES:
        shown = t("{names} and {n} more", names=shown, n=t.number(total - SHOWN_NAMES))
    return shown


def unconnected_line(t: Translator, names: Sequence[str]) -> str:
    """Who the directive could not reach: the first names, then how many more."""
    shown = first_names(t, names, len(names))
    return t.plural("{n} recipient has no chat connected yet, so it did not reach them: "
                    "{names}. They get it when they join; phone them meanwhile.",
                    "{n} recipients have no chat connected yet, so it did not reach them: "
                    "{names}. They get it when they join; phone them meanwhile.",
                    len(names), names=shown)


def paid_line(t: Translator, calls: int) -> str:
    return t("Paid broadcast: {n} Telegram messages for {stars} Stars from the bot's balance; "
             "Zalo and web chat recipients get it at the normal pace.",
             n=t.number(calls), stars=t.number(Decimal(paid_stars(calls))))


# --- urgent, by paid broadcast (admins, when the operator set a cap) ---------------------------

PAID, NORMAL = "paid", "normal"
OVER_CAP = N_("The paid broadcast would cost {stars} Stars for {n} Telegram messages, more "
              "than one directive may spend ({cap} Stars). Choose the normal pace, or ask "
              "the operator to raise TELEGRAM_PAID_BROADCAST_MAX_STARS.")


def offers_paid(turn: Turn) -> bool:
    return (turn.has_role(Role.ADMIN)
            and turn.settings.telegram_paid_broadcast_max_stars is not None)


def _after_deadline(answers: Mapping[str, Any]) -> str:
    return "urgency" if answers.get(PAID_OFFERED) else "confirm"


async def _urgency_options(turn: Turn) -> Sequence[Option]:
    return [Option(NORMAL, N_("Normal pace (free)")),
            Option(PAID, N_("Urgent: paid broadcast, every Telegram recipient within a "
                            "minute"))]


async def _check_price(turn: Turn, value: Any) -> str | None:
    if value != PAID:
        return None
    scope = await _chosen_scope(turn)
    calls = await price(turn.session, turn.settings, _draft(turn, scope)) if scope else 0
    if not within_cap(turn.settings, calls):
        raise BadAnswer(OVER_CAP, **_over_cap(turn, calls))
    return None


def _over_cap(turn: Turn, calls: int) -> dict[str, str]:
    cap = turn.settings.telegram_paid_broadcast_max_stars or 0.0
    return {"stars": turn.t.number(Decimal(paid_stars(calls))), "n": turn.t.number(calls),
            "cap": turn.t.number(Decimal(str(cap)))}


async def _finish(turn: Turn) -> None:
    scope = await _chosen_scope(turn)
    if scope is None:
        refuse(turn, "/directive", ROLES)
        return
    draft = _draft(turn, scope)
    paid = turn.data.get("urgency") == PAID
    calls = await price(turn.session, turn.settings, draft) if paid else 0
    if not within_cap(turn.settings, calls) and paid:
        # Recipients joined since the price was shown: nothing is sent.
        turn.say(turn.t(OVER_CAP, **_over_cap(turn, calls)))
        return
    sent = await send(turn.session, turn.settings, draft,
                      turn.person.id if turn.person else None, turn.now, paid=paid)
    if isinstance(sent, Refusal):
        turn.say(refusal_text(turn.t, sent))
        return
    directive, _, _, calls = sent
    # The recipients as written with the directive; those with no chat yet are named.
    entries = await directives.recipients(turn.session, scope, draft.role)
    missing = await directives.unconnected(turn.session, {person for person, _ in entries})
    away = {person for person, _ in missing}
    reached = sum(1 for person, _ in entries if person not in away)
    lines = [turn.t("Directive #{id} sent to {n} recipients. Send /directive status to "
                    "follow it.", id=directive.id, n=turn.t.number(reached))]
    if missing:
        lines.append(unconnected_line(turn.t, [name for _, name in missing]))
    if paid:
        lines.append(paid_line(turn.t, calls))
    turn.say("\n".join(lines))


FLOW = register(Flow(
    name="directive",
    title=N_("sending a directive"),
    steps=(
        Step("scope", "choice", N_("Which unit is it for (with everything under it)?"),
             options=_scope_options),
        Step("role", "choice", N_("Who receives it?"), options=_role_options),
        Step("text", "text", N_("Write the directive (at most {max_length} characters)."),
             max_length=directives.MAX_TEXT, validate=_check_text),
        Step("attachment", "photo", N_("Send a photo to attach, or skip."), optional=True),
        Step("deadline", "text", N_("A deadline for the units to report done (e.g. 17h "
                                    "5/12, mai 17h, thứ 6), or skip."),
             optional=True, validate=_check_deadline, on_answer=_record_deadline,
             next=_after_deadline, goes_to=("urgency", "confirm")),
        Step("urgency", "choice", N_("How should it go? A paid broadcast reaches every "
                                     "Telegram recipient within a minute, for 0.1 Star a "
                                     "message from the bot's balance."),
             options=_urgency_options, validate=_check_price),
        Step("confirm", "confirm", N_("Send this directive now?"), summary=_summary),
    ),
    finish=_finish,
))


async def start(turn: Turn) -> None:
    if not scope_roots(turn, ROLES):
        refuse(turn, "/directive", ROLES)
        return
    await engine.begin(turn, FLOW, data={PAID_OFFERED: True} if offers_paid(turn) else None)


# --- the optional note with "done" -----------------------------------------------------------

async def _save_note(turn: Turn) -> None:
    """The note goes with this person's latest "done" (the one just reported)."""
    note = turn.data.get("note")
    if not note or turn.person is None:
        turn.say(turn.t("Thank you."))
        return
    entry = await directives.latest_done(turn.session, turn.person.id)
    if entry is None:
        turn.say(turn.t("This question is no longer open."))
        return
    await directives.add_done_note(turn.session, entry, str(note))
    turn.say(turn.t("The note is added to directive #{id}.", id=entry.directive_id))


NOTE_FLOW = register(Flow(
    name="directive_note",
    title=N_("the note on a directive"),
    steps=(Step("note", "text", N_("A note for the ward on how it was done, if you want (at "
                                   "most {max_length} characters)."),
                max_length=directives.MAX_NOTE, optional=True),),
    finish=_save_note,
    quiet_lapse=True,  # leaving it unanswered is fine: "done" is already recorded
))
