"""/handover: ward staff (and admins) hand a post of their area over to another person of it.

post (vacant ones first, the longest vacant first, or found by unit or post name) → the new
holder (those on the roster, not yet connected first, or found by name; or someone new: their
name and phone typed, so that a vacant post is filled without the IT officer's import) →
confirm. The same
change as `coso people assign`: the old holder's role and open conversation end at once, the
unit's open directives pass to the new holder (reports belong to the unit, so they follow
the post), and who held the post when is kept. The old and the new holder are told, in the
same transaction.

Option values: 's:<unit post id>' for a post, 'p:<person id>' for a person, 'search',
'new' for someone new.
Both are checked against the asker's scope again at write time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from bot import notify
from bot.flows import engine
from bot.flows.engine import Flow, Option, Step, register
from bot.flows.invite_card import PICKED, SEARCH, labels, roots
from bot.handlers.access import STAFF, refuse
from bot.i18n import N_, Translator
from bot.messages import Outgoing
from bot.turn import Turn
from storage import roster, units
from storage.models import Person, Post
from storage.roster import Holder, Seat

log = logging.getLogger(__name__)

ROLES = STAFF
LISTED = 8
MATCHES = 10
MAX_QUERY = 60
SEAT = "s"
NEW = "new"
NEW_OPTION = Option(NEW, N_("Someone new (not on the roster)"))


def label(t: Translator, post: Post) -> str:
    return post.label_vi if t.locale == "vi" else post.label_en


def holder_name(turn: Turn, entry: Seat) -> str:
    return entry.holder.full_name if entry.holder else turn.t("vacant")


async def _seat_labels(turn: Turn, found: Sequence[Seat]) -> list[Option]:
    """'unit · post · holder (or vacant)', the unit as short as tells it from the others."""
    everyone = await roster.seats_matching(turn.session, roots(turn))
    short = await units.short_paths(turn.session, [s.unit_post.unit.path for s in everyone])
    return [Option(f"{SEAT}:{s.unit_post.id}",
                   f"{short[s.unit_post.unit.path]} · {label(turn.t, s.unit_post.post)} · "
                   f"{holder_name(turn, s)}", literal=True) for s in found]


async def _post_options(turn: Turn) -> Sequence[Option]:
    vacant = [s for s in await roster.seats_matching(turn.session, roots(turn))
              if s.holder is None]
    return (*await _seat_labels(turn, vacant[:LISTED]), Option(SEARCH, N_("Search by unit")))


async def _post_search(turn: Turn, query: Any) -> None:
    found = await roster.seats_matching(turn.session, roots(turn), str(query))
    turn.data["ho_seats"] = [s.unit_post.id for s in found[:MATCHES]]


async def _post_match_options(turn: Turn) -> Sequence[Option]:
    wanted = turn.data.get("ho_seats") or []
    by_id = {s.unit_post.id: s for s in await roster.seats_matching(turn.session, roots(turn))}
    found = [by_id[i] for i in wanted if i in by_id]
    return (*await _seat_labels(turn, found), Option(SEARCH, N_("Search again")))


async def _record_seat(turn: Turn, value: Any) -> None:
    kind, _, rest = str(value or "").partition(":")
    turn.data["ho_seat"] = int(rest) if kind == SEAT and rest.isdigit() else None


async def _others(turn: Turn, query: str = "") -> list[Holder]:
    """The people the post may go to: the roster's, but not the post's own holder."""
    seat = await _seat(turn)
    current = seat.holder.id if seat is not None and seat.holder is not None else None
    return [h for h in await roster.holders_in(turn.session, roots(turn), query)
            if h.person.id != current]


async def _person_options(turn: Turn) -> Sequence[Option]:
    everyone = await roster.holders_in(turn.session, roots(turn))
    return (*await labels(turn, (await _others(turn))[:LISTED], everyone),
            Option(SEARCH, N_("Search by name")), NEW_OPTION)


async def _person_search(turn: Turn, query: Any) -> None:
    turn.data["ho_people"] = [h.person.id for h in (await _others(turn, str(query)))[:MATCHES]]


async def _person_match_options(turn: Turn) -> Sequence[Option]:
    wanted = set(turn.data.get("ho_people") or [])
    everyone = await roster.holders_in(turn.session, roots(turn))
    found = [h for h in await _others(turn) if h.person.id in wanted]
    return (*await labels(turn, found, everyone), Option(SEARCH, N_("Search again")),
            NEW_OPTION)


async def _record_person(turn: Turn, value: Any) -> None:
    kind, _, rest = str(value or "").partition(":")
    turn.data["ho_person"] = int(rest) if kind == PICKED and rest.isdigit() else None
    if value != NEW:
        turn.data.pop("new_name", None)
        turn.data.pop("new_phone", None)


def _route(key: str, picked: str, search: str) -> engine.Branch:
    def route(data: Mapping[str, Any]) -> str:
        return search if data.get(key) == SEARCH else picked

    return route


def _person_route(key: str) -> engine.Branch:
    def route(data: Mapping[str, Any]) -> str:
        return {SEARCH: "person_query", NEW: "new_name"}.get(str(data.get(key)), "confirm")

    return route


async def _check_name(turn: Turn, name: Any) -> str | None:
    if not any(char.isalpha() for char in str(name)):
        return N_("Please type the person's name in letters, e.g. Nguyễn Thị Hoa.")
    return None


async def _check_phone(turn: Turn, phone: Any) -> str | None:
    if roster.parse_phone(str(phone)) is None:
        return N_("That is not a phone number: 9 to 15 digits, e.g. 0903 123 456.")
    return None


def _found(key: str, match: str, none: str) -> engine.Branch:
    def route(data: Mapping[str, Any]) -> str:
        return match if data.get(key) else none

    return route


async def _seat(turn: Turn) -> Seat | None:
    seat_id = turn.data.get("ho_seat")
    return None if seat_id is None else await roster.seat_in(turn.session, roots(turn),
                                                             int(seat_id))


async def _person(turn: Turn) -> Holder | None:
    person_id = turn.data.get("ho_person")
    return None if person_id is None else await roster.holder_in(turn.session, roots(turn),
                                                                 int(person_id))


def _new_name(turn: Turn) -> str | None:
    """The name typed for someone new, when that was the choice."""
    typed = " ".join(str(turn.data.get("new_name") or "").split())
    return typed or None


async def _summary(turn: Turn) -> str:
    seat, new = await _seat(turn), await _person(turn)
    name = _new_name(turn) or (new.person.full_name if new is not None else None)
    if seat is None or name is None:
        return "—"
    t = turn.t
    post, unit = label(t, seat.unit_post.post), seat.unit_post.unit.name
    if seat.holder is None:
        text = t("{name} becomes {post} of {unit} (vacant until now).", name=name, post=post,
                 unit=unit)
    else:
        text = t("{post} of {unit} passes from {old} to {name}. {old} loses access at once; "
                 "the unit's open directives pass to {name}.", post=post, unit=unit,
                 old=seat.holder.full_name, name=name)
    if _new_name(turn):
        phone = roster.parse_phone(str(turn.data.get("new_phone") or ""))
        text += "\n" + (t("New on the roster, phone {phone}.", phone=phone) if phone
                        else t("New on the roster, no phone number."))
    return text


async def _new_holder(turn: Turn) -> Person | None:
    """The person chosen, or someone new made now (in the handover's own transaction)."""
    name = _new_name(turn)
    if name is not None:
        phone = roster.parse_phone(str(turn.data.get("new_phone") or ""))
        return await roster.new_person(turn.session, name, phone)
    new = await _person(turn)
    return new.person if new is not None else None


async def _finish(turn: Turn) -> None:
    seat, person = await _seat(turn), await _new_holder(turn)
    if seat is None or person is None:
        refuse(turn, "/handover of this post", ROLES)
        return
    if seat.holder is not None and seat.holder.id == person.id:
        turn.say(turn.t("{name} already holds that post; nothing changed.",
                        name=person.full_name))
        return
    done = await roster.assign(turn.session, seat.unit_post, person, turn.now)
    log.info("post %s handed over to person %s by account %s", seat.unit_post.id,
             person.id, turn.account.id)
    unit_post = seat.unit_post
    await _tell(turn, done, unit_post, person.id)
    joined = await roster.channels_of(turn.session, [person.id])
    t = turn.t
    lines = [t("Done: {name} now holds {post} of {unit}.", name=person.full_name,
               post=label(t, unit_post.post), unit=unit_post.unit.name)]
    if done.previous is not None:
        lines.append(t.plural("{old} no longer has access; {n} open directive passed on.",
                              "{old} no longer has access; {n} open directives passed on.",
                              done.directives_moved, old=done.previous.full_name))
    if person.id not in joined:
        lines.append(t("{name} has not connected a chat yet: send their card with /invite.",
                       name=person.full_name))
    turn.say("\n".join(lines))


async def _tell(turn: Turn, done: roster.Handover, unit_post: Any, new_id: int) -> None:
    """The new holder learns what they now hold; the old one that they no longer do."""
    def to_new(t: Translator) -> Outgoing:
        text = t("The ward has made you {post} of {unit}. Send /help to see what you can "
                 "do.", post=label(t, unit_post.post), unit=unit_post.unit.name)
        if done.directives_moved:
            text += "\n" + t.plural("{n} open directive of the unit passed to you: /directive "
                                    "status.", "{n} open directives of the unit passed to "
                                    "you: /directive status.", done.directives_moved)
        return Outgoing(text=text)

    await notify.notify_people(turn.session, turn.settings, [new_id], to_new)
    if done.previous is None:
        return
    when = turn.now

    def to_old(t: Translator) -> Outgoing:
        return Outgoing(text=t("From {when} you no longer hold {post} of {unit}: the ward has "
                               "handed it over. Thank you for your work.",
                               when=t.date(when), post=label(t, unit_post.post),
                               unit=unit_post.unit.name))

    await notify.notify_people(turn.session, turn.settings, [done.previous.id], to_old)


FLOW = register(Flow(
    name="handover",
    title=N_("the handover"),
    steps=(
        Step("post", "choice", N_("Which post changes holder? Vacant posts come first, the "
                                  "longest vacant first; search for any other."),
             options=_post_options, on_answer=_record_seat,
             goes_to=("post_query", "person"), next=_route("post", "person", "post_query")),
        Step("post_query", "text", N_("Type part of the unit's or the post's name (without "
                                      "diacritics is fine, e.g. khu pho 3, to truong)."),
             max_length=MAX_QUERY, on_answer=_post_search,
             goes_to=("post_match", "post_none"), next=_found("ho_seats", "post_match",
                                                              "post_none")),
        Step("post_match", "choice", N_("Posts matching “{post_query}”:"),
             options=_post_match_options, on_answer=_record_seat,
             goes_to=("post_query", "person"),
             next=_route("post_match", "person", "post_query")),
        Step("post_none", "choice", N_("No post in your area matches “{post_query}”."),
             options=(Option(SEARCH, N_("Search again")),), goes_to=("post_query",)),
        Step("person", "choice", N_("Who holds it from now on? People of your roster not "
                                    "connected yet come first; search to find anyone else."),
             options=_person_options, on_answer=_record_person,
             goes_to=("person_query", "new_name", "confirm"), next=_person_route("person")),
        Step("person_query", "text", N_("Type part of the person's name (without diacritics "
                                        "is fine, e.g. nguyen van)."),
             max_length=MAX_QUERY, on_answer=_person_search,
             goes_to=("person_match", "person_none"),
             next=_found("ho_people", "person_match", "person_none")),
        Step("person_match", "choice", N_("People on your roster matching “{person_query}”:"),
             options=_person_match_options, on_answer=_record_person,
             goes_to=("person_query", "new_name", "confirm"),
             next=_person_route("person_match")),
        Step("person_none", "choice", N_("Nobody holding a post in your area matches "
                                         "“{person_query}”."),
             options=(Option(SEARCH, N_("Search again")), NEW_OPTION),
             on_answer=_record_person, goes_to=("person_query", "new_name"),
             next=_person_route("person_none")),
        Step("new_name", "text", N_("The new holder's full name, as on their ID card (e.g. "
                                    "Nguyễn Thị Hoa)?"),
             max_length=roster.MAX_NAME, validate=_check_name, goes_to=("new_phone",)),
        Step("new_phone", "text", N_("Their phone number, for the ward to reach them? Skip "
                                     "if you do not have it."),
             max_length=30, optional=True, validate=_check_phone, goes_to=("confirm",)),
        Step("confirm", "confirm", N_("Hand the post over?"), summary=_summary),
    ),
    finish=_finish,
))


async def start(turn: Turn) -> None:
    if not roots(turn):
        refuse(turn, "/handover", ROLES)
        return
    if not await roster.seats_matching(turn.session, roots(turn)):
        turn.say(turn.t("No posts in your area yet: the ward's roster is imported with `coso "
                        "people import`."))
        return
    await engine.begin(turn, FLOW)
