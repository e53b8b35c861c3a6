"""A ward's roster: the posts of its units, who holds each (and held it when), and invites
bound to a person or to a vacant post.

Access follows the post: holding a post creates the matching role grant in the same
transaction, and ending the holding ends that grant, so every scope check that reads
role_assignments keeps working unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from storage import invites, units
from storage.models import (
    ChatAccount,
    Conversation,
    DirectiveRecipient,
    Invite,
    Person,
    Post,
    PostHolding,
    RoleAssignment,
    Unit,
    UnitPost,
    utcnow,
)
from wording import N_, fold

MAX_NAME = 200
_PHONE_PUNCTUATION = re.compile(r"[\s.\-()]")
_PHONE = re.compile(r"^\+?\d{9,15}$")


def parse_phone(value: str) -> str | None:
    """A phone number as people type it (spaces, dots, dashes, brackets, Excel's leading ')
    in digits with an optional leading +; None when it is none (9 to 15 digits)."""
    phone = _PHONE_PUNCTUATION.sub("", value)
    if phone.startswith("'"):  # Excel's text marker, kept by some exports
        phone = phone[1:]
    return phone if _PHONE.match(phone) else None


async def new_person(session: AsyncSession, full_name: str, phone: str | None) -> Person:
    """Someone not on the roster yet, about to be handed a post (/handover)."""
    person = Person(full_name=full_name, phone=phone)
    session.add(person)
    await session.flush()
    return person


class RosterError(Exception):
    """A roster change refused; `msgid` and `values` let the caller translate it."""

    def __init__(self, msgid: str, **values: object) -> None:
        self.msgid, self.values = msgid, values
        super().__init__(msgid.format(**values))


# --- the catalogue ---------------------------------------------------------------------------

async def all_posts(session: AsyncSession) -> Sequence[Post]:
    query = select(Post).where(Post.active.is_(True)).order_by(Post.position, Post.key)
    return (await session.execute(query)).scalars().all()


def post_names(post: Post) -> set[str]:
    """What a spreadsheet may call the post: its key, its labels, each half of "A / B"."""
    names = {fold(post.key), fold(post.label_vi), fold(post.label_en)}
    for label in (post.label_vi, post.label_en):
        names |= {fold(part) for part in label.split("/") if part.strip()}
    return names


async def post_named(session: AsyncSession, name: str) -> Post | None:
    folded = fold(name)
    return next((post for post in await all_posts(session) if folded in post_names(post)),
                None)


def fits(post: Post, unit: Unit) -> bool:
    return not post.levels or unit.level in post.levels


# --- seats and holders -----------------------------------------------------------------------

@dataclass(frozen=True)
class Seat:
    """One post on one unit, with its current holder (None: vacant)."""

    unit_post: UnitPost
    holding: PostHolding | None

    @property
    def holder(self) -> Person | None:
        return self.holding.person if self.holding is not None else None


async def seat(session: AsyncSession, unit: Unit, post: Post, *, create: bool = False
               ) -> UnitPost | None:
    query = (select(UnitPost).where(UnitPost.unit_id == unit.id, UnitPost.post_key == post.key)
             .options(joinedload(UnitPost.unit), joinedload(UnitPost.post)))
    found = (await session.execute(query)).scalar_one_or_none()
    if found is None and create:
        if not fits(post, unit):
            raise RosterError(N_("post {post} does not exist on a unit of level {level}"),
                              post=post.key, level=unit.level)
        now = utcnow()
        found = UnitPost(unit_id=unit.id, post_key=post.key, created_at=now, vacant_since=now)
        found.unit, found.post = unit, post
        session.add(found)
        await session.flush()
    return found


async def _in_roster_order(session: AsyncSession, root: Unit, found: Sequence[UnitPost]
                           ) -> list[UnitPost]:
    order = await units.tree(session, root)
    return sorted(found, key=lambda s: (order.key(s.unit), s.post.position, s.post.key))


async def open_holding(session: AsyncSession, unit_post: UnitPost) -> PostHolding | None:
    query = (select(PostHolding).where(PostHolding.unit_post_id == unit_post.id,
                                       PostHolding.ended_at.is_(None))
             .options(joinedload(PostHolding.person)))
    return (await session.execute(query.limit(1))).scalar_one_or_none()


async def seats_in(session: AsyncSession, unit: Unit) -> list[Seat]:
    """Every post in the unit's subtree with its holder, in roster order: the units in the
    tree's order (siblings by name, Khu phố 2 before Khu phố 11), each unit's posts in the
    catalogue's order."""
    query = (select(UnitPost).join(Unit, Unit.id == UnitPost.unit_id)
             .where(Unit.path.startswith(unit.path))
             .options(joinedload(UnitPost.unit), joinedload(UnitPost.post)))
    found = await _in_roster_order(session, unit, (await session.execute(query)).scalars().all())
    holdings = {}
    if found:
        open_ones = (await session.execute(
            select(PostHolding).where(PostHolding.unit_post_id.in_([s.id for s in found]),
                                      PostHolding.ended_at.is_(None))
            .options(joinedload(PostHolding.person)))).scalars().all()
        holdings = {holding.unit_post_id: holding for holding in open_ones}
    return [Seat(unit_post, holdings.get(unit_post.id)) for unit_post in found]


@dataclass(frozen=True)
class Listed:
    """A post of the roster as a reader sees it: the unit as a place below the listed root
    ('Tổ dân phố 3 · Khu phố 1'), and the chats its holder has connected."""

    seat: Seat
    place: str
    channels: list[str]


async def listing(session: AsyncSession, root: Unit) -> list[Listed]:
    """The roster of the root's subtree in roster order (seats_in): what `coso people list`
    and /people show alike."""
    seats = await seats_in(session, root)
    order = await units.tree(session, root)
    connected = await channels_of(session, [s.holder.id for s in seats if s.holder])
    return [Listed(s, order.place(s.unit_post.unit),
                   connected.get(s.holder.id, []) if s.holder else []) for s in seats]


async def history(session: AsyncSession, unit_post: UnitPost) -> Sequence[PostHolding]:
    """Who held the post when, oldest first."""
    query = (select(PostHolding).where(PostHolding.unit_post_id == unit_post.id)
             .options(joinedload(PostHolding.person)).order_by(PostHolding.id))
    return (await session.execute(query)).scalars().all()


async def channels_of(session: AsyncSession, person_ids: Sequence[int]
                      ) -> dict[int, list[str]]:
    """person id -> the channels they have connected (sorted)."""
    if not person_ids:
        return {}
    rows = (await session.execute(
        select(ChatAccount.person_id, ChatAccount.channel)
        .where(ChatAccount.person_id.in_(person_ids)).distinct())).all()
    found: dict[int, list[str]] = {}
    for person_id, channel in rows:
        if person_id is not None:
            found.setdefault(person_id, []).append(channel)
    return {person_id: sorted(channels) for person_id, channels in found.items()}


@dataclass(frozen=True)
class Handover:
    holding: PostHolding
    previous: Person | None
    directives_moved: int


async def assign(session: AsyncSession, unit_post: UnitPost, person: Person,
                 now: datetime | None = None) -> Handover:
    """Make `person` the post's holder; the previous holder's grant and open conversation end
    at once and the unit's open directives pass to the new holder (one transaction)."""
    now = now or utcnow()
    current = await open_holding(session, unit_post)
    if current is not None and current.person_id == person.id:
        return Handover(current, None, 0)
    previous, moved = None, 0
    if current is not None:
        previous = current.person
        await _end(session, current, now)
        moved = await _move_directives(session, previous.id, person.id, unit_post.unit_id)
        await _close_conversations(session, previous.id)
    grant = RoleAssignment(person_id=person.id, unit_id=unit_post.unit_id,
                           role=unit_post.post.role, created_at=now)
    session.add(grant)
    await session.flush()
    holding = PostHolding(unit_post_id=unit_post.id, person_id=person.id,
                          role_assignment_id=grant.id, started_at=now)
    holding.person = person
    session.add(holding)
    unit_post.vacant_since = None
    await _revoke_open(session, Invite.unit_post_id == unit_post.id, now)
    await session.flush()
    return Handover(holding, previous, moved)


async def vacate(session: AsyncSession, unit_post: UnitPost, now: datetime | None = None
                 ) -> Person | None:
    """End the current holding, if any; the post is vacant from now."""
    now = now or utcnow()
    current = await open_holding(session, unit_post)
    if current is None:
        return None
    await _end(session, current, now)
    await _close_conversations(session, current.person_id)
    return current.person


async def _end(session: AsyncSession, holding: PostHolding, now: datetime) -> None:
    holding.ended_at = now
    grant = await session.get(RoleAssignment, holding.role_assignment_id)
    if grant is not None and grant.active:
        grant.active, grant.ended_at = False, now
    unit_post = await session.get(UnitPost, holding.unit_post_id)
    if unit_post is not None:
        unit_post.vacant_since = now


async def _move_directives(session: AsyncSession, old: int, new: int, unit_id: int) -> int:
    """The old holder's directives of this unit not yet done go to the new holder (unless the
    new holder already has that directive for the unit)."""
    rows = (await session.execute(select(DirectiveRecipient).where(
        DirectiveRecipient.person_id == old, DirectiveRecipient.unit_id == unit_id,
        DirectiveRecipient.done_at.is_(None)))).scalars().all()
    if not rows:
        return 0
    already = set((await session.execute(select(DirectiveRecipient.directive_id).where(
        DirectiveRecipient.person_id == new, DirectiveRecipient.unit_id == unit_id))).scalars())
    moved = 0
    for row in rows:
        if row.directive_id in already:
            continue
        row.person_id, row.acknowledged_at, row.reminders, row.reminded_at = new, None, 0, None
        moved += 1
    return moved


async def _close_conversations(session: AsyncSession, person_id: int) -> None:
    """A person whose post ended has no half-finished flow left to answer."""
    accounts = select(ChatAccount.id).where(ChatAccount.person_id == person_id)
    await session.execute(delete(Conversation).where(Conversation.chat_account_id.in_(accounts)))


async def _revoke_open(session: AsyncSession, condition: object, now: datetime) -> int:
    found = (await session.execute(select(Invite).where(
        condition,  # type: ignore[arg-type]
        Invite.used_at.is_(None), Invite.revoked_at.is_(None)))).scalars().all()
    for invite in found:
        invite.revoked_at = now
    return len(found)


# --- people ----------------------------------------------------------------------------------

async def person_by_id(session: AsyncSession, person_id: int) -> Person | None:
    person = await session.get(Person, person_id)
    return person if person is not None and person.active else None


async def holdings_of(session: AsyncSession, person: Person) -> Sequence[PostHolding]:
    query = (select(PostHolding).where(PostHolding.person_id == person.id,
                                       PostHolding.ended_at.is_(None))
             .options(joinedload(PostHolding.unit_post).joinedload(UnitPost.unit),
                      joinedload(PostHolding.unit_post).joinedload(UnitPost.post))
             .order_by(PostHolding.id))
    return (await session.execute(query)).scalars().all()


# --- invites bound to a person or a post -----------------------------------------------------

async def invite_person(session: AsyncSession, person: Person, expires_in: timedelta
                        ) -> invites.NewInvite:
    """A fresh invite for the person; their earlier unused invites are revoked (a lost card
    is re-issued, never two live codes for one person)."""
    held = await holdings_of(session, person)
    if held:
        unit, role = held[0].unit_post.unit, held[0].unit_post.post.role
    else:  # ward staff and monitors hold a role on the ward rather than a post
        grant = (await session.execute(
            select(RoleAssignment).where(RoleAssignment.person_id == person.id,
                                         RoleAssignment.active.is_(True))
            .options(joinedload(RoleAssignment.unit)).order_by(RoleAssignment.id).limit(1)
        )).scalar_one_or_none()
        if grant is None:
            raise RosterError(N_("person {id} holds no post"), id=person.id)
        unit, role = grant.unit, grant.role
    await _revoke_open(session, Invite.person_id == person.id, utcnow())
    [new] = await invites.create(session, unit, role, expires_in)
    new.invite.person_id = person.id
    await session.flush()
    return new


async def invite_post(session: AsyncSession, unit_post: UnitPost, expires_in: timedelta
                      ) -> invites.NewInvite:
    """An invite for a vacant post; whoever redeems it becomes its holder."""
    if await open_holding(session, unit_post) is not None:
        raise RosterError(N_("the post is held; invite its holder with --person"))
    await _revoke_open(session, Invite.unit_post_id == unit_post.id, utcnow())
    [new] = await invites.create(session, unit_post.unit, unit_post.post.role, expires_in)
    new.invite.unit_post_id = unit_post.id
    await session.flush()
    return new


async def claim(session: AsyncSession, invite: Invite, account: ChatAccount,
                person: Person | None, make_person: Person) -> Person | None:
    """Link the chat account through a roster invite; the person now behind the account, or
    None when the invite is a bare role invite (the caller's old path).

    `person` is who the account already is; `make_person` the new person to add when the
    invite is for a vacant post and the account has nobody yet. A person invite never
    creates a person: the account joins the one on the roster (Telegram and Zalo both may;
    a second account on one channel replaces the first, as for a lost phone).
    """
    if invite.person_id is not None:
        target = await person_by_id(session, invite.person_id)
        if target is None:
            raise RosterError(N_("This invite is for a person no longer on the ward's roster. "
                              "Ask your ward staff for a new one."))
        if person is not None and person.id != target.id:
            raise RosterError(N_("This chat is already connected to another person. Ask your "
                              "ward staff."))
        # One chat per channel: a card re-issued for a lost phone cuts the old account off.
        await session.execute(update(ChatAccount).where(
            ChatAccount.person_id == target.id, ChatAccount.channel == account.channel,
            ChatAccount.id != account.id).values(person_id=None))
        account.person_id = target.id
        return target
    if invite.unit_post_id is not None:
        unit_post = await session.get(UnitPost, invite.unit_post_id,
                                      options=[joinedload(UnitPost.unit),
                                               joinedload(UnitPost.post)])
        assert unit_post is not None
        invite.used_at = utcnow()  # so that filling the post does not revoke this very code
        if person is None:
            session.add(make_person)
            await session.flush()
            person = make_person
            account.person_id = person.id
        await assign(session, unit_post, person)
        return person
    return None


@dataclass(frozen=True)
class CardInvite:
    """A fresh invite for one person of the roster, with the post it is printed for."""

    person: Person
    unit_post: UnitPost
    code: str


async def invite_holders(session: AsyncSession, unit: Unit, expires_in: timedelta, *,
                         only_unconnected: bool = False) -> list[CardInvite]:
    """A fresh invite for each holder of a post in the unit's subtree (once per person, for
    their first post in roster order); each one's earlier unused invite is revoked."""
    seats = [s for s in await seats_in(session, unit) if s.holder is not None]
    connected = await channels_of(session, [s.holder.id for s in seats if s.holder])
    found: list[CardInvite] = []
    seen: set[int] = set()
    for entry in seats:
        person = entry.holder
        assert person is not None
        if person.id in seen or (only_unconnected and person.id in connected):
            continue
        seen.add(person.id)
        new = await invite_person(session, person, expires_in)
        found.append(CardInvite(person, entry.unit_post, new.code))
    return found


# --- picking a person of the roster in chat --------------------------------------------------

@dataclass(frozen=True)
class Holder:
    """A person holding a post under a unit, with their first post in roster order."""

    person: Person
    unit_post: UnitPost
    connected: bool


async def holders_in(session: AsyncSession, roots: Sequence[Unit], query: str = ""
                     ) -> list[Holder]:
    """Each person holding a post in the roots' subtrees, once, those who have not connected a
    chat first (then in roster order); with `query`, only those whose name holds it, compared
    without case or diacritics. Vacant posts have nobody to pick, so they are not here."""
    seats = [s for root in roots for s in await seats_in(session, root) if s.holder is not None]
    connected = await channels_of(session, [s.holder.id for s in seats if s.holder])
    wanted = fold(query)
    found: dict[int, Holder] = {}
    for entry in seats:
        person = entry.holder
        assert person is not None
        if person.id not in found and wanted in fold(person.full_name):
            found[person.id] = Holder(person, entry.unit_post, person.id in connected)
    return sorted(found.values(), key=lambda holder: holder.connected)  # stable: roster order


async def holder_in(session: AsyncSession, roots: Sequence[Unit], person_id: int
                    ) -> Holder | None:
    """The person, if they hold a post in the roots' subtrees (the scope check at write time)."""
    return next((h for h in await holders_in(session, roots) if h.person.id == person_id), None)


async def seats_matching(session: AsyncSession, roots: Sequence[Unit], query: str = ""
                         ) -> list[Seat]:
    """The posts in the roots' subtrees whose unit (name or code) or post holds `query`,
    compared without case or diacritics; vacant posts first, the longest vacant first."""
    wanted = fold(query)
    found = [s for root in roots for s in await seats_in(session, root)
             if wanted in fold(s.unit_post.unit.name) or wanted in fold(s.unit_post.unit.code)
             or any(wanted in name for name in post_names(s.unit_post.post))]
    return sorted(found, key=_vacant_first)  # stable: held posts stay in roster order


def _vacant_first(entry: Seat) -> tuple[int, float]:
    if entry.holder is not None:
        return 1, 0.0
    return 0, (entry.unit_post.vacant_since or entry.unit_post.created_at).timestamp()


async def seat_in(session: AsyncSession, roots: Sequence[Unit], unit_post_id: int
                  ) -> Seat | None:
    """The post with this id, if it lies in the roots' subtrees (checked at write time)."""
    return next((s for s in await seats_matching(session, roots)
                 if s.unit_post.id == unit_post_id), None)
