"""/support: record support handed (or not) to a household under a policy.

household (recent, search or new) → policy → [already received: record another?] → amount
(the policy's standard in one tap, or typed) → status → date → receipt photo → confirm.

Branching sees only the answers, so each policy option carries what the branch needs in its
value, 'key:measure:standard:repeat': whether the household already received it decides the
guard against paying twice, the measure and standard decide how the amount is asked. The
guard is checked again at write time, in case a delivery was recorded meanwhile.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.flows import engine
from bot.flows.engine import BadAnswer, Flow, Option, Step, register
from bot.flows.household_pick import (
    confirm_lines,
    pick_household_steps,
    resolve_household,
    scope,
    settled,
)
from bot.handlers.access import WRITERS, refuse
from bot.i18n import N_, Translator
from bot.turn import Turn
from storage import support
from storage.models import (
    DeliveryStatus,
    Household,
    SupportDelivery,
    SupportPolicy,
    Unit,
)
from storage.units import contains
from wording import fold, when

log = logging.getLogger(__name__)

ROLES = WRITERS
VND_MIN, VND_MAX = 1_000, 100_000_000
COUNT_MIN, COUNT_MAX = 1, 50
BACKDATE_DAYS = 90
OTHER = "other"

STATUS_NAMES = {
    DeliveryStatus.DELIVERED: N_("Delivered"),
    DeliveryStatus.REFUSED: N_("Refused"),
    DeliveryStatus.NOT_FOUND: N_("Household not found"),
    DeliveryStatus.MOVED_AWAY: N_("Moved away"),
}
STATUS_OPTIONS = tuple(Option(status.value, name) for status, name in STATUS_NAMES.items())


# --- words and numbers shared with the monitor's views ----------------------------------------

def amount_text(t: Translator, measure: str, amount: int) -> str:
    """1.500.000 ₫ for money; '2 bags' / '1 kit' for the rest, in the person's language."""
    if measure == "vnd":
        return t.money(amount)
    if measure == "bag":
        return t.plural("{n} bag", "{n} bags", amount)
    if measure == "kit":
        return t.plural("{n} kit", "{n} kits", amount)
    return t.number(amount)


def status_text(t: Translator, status: str) -> str:
    return t(STATUS_NAMES.get(DeliveryStatus(status), status))


def delivery_line(t: Translator, delivery: SupportDelivery) -> str:
    """'03/11/26 · 12 Lê Lợi · Túi an sinh · 1 túi · Delivered' (no names: a code is enough)."""
    policy = delivery.policy
    return " · ".join((t.date(delivery.delivered_on), delivery.household.code,
                       support.policy_label(policy, t.locale),
                       amount_text(t, policy.measure, delivery.amount),
                       status_text(t, delivery.status)))


def scope_roots(turn: Turn, roles: frozenset[str]) -> list[Unit]:
    """The units the person holds one of the roles on, without those inside another."""
    held = {grant.unit.id: grant.unit for grant in turn.grants if grant.role in roles}
    return [unit for unit in held.values()
            if not any(other.id != unit.id and contains(other, unit) for other in held.values())]


# --- amounts and dates as people type them --------------------------------------------------

_GROUPED = re.compile(r"^\d{1,3}([.,])\d{3}(\1\d{3})*$")
_SCALED = re.compile(r"^(\d+(?:[.,]\d+)?)(trieu|tr|m|k|nghin|ngan)$")
_TR_TAIL = re.compile(r"^(\d+)tr(\d{1,3})$")  # "1tr2" is 1,2 million, as said aloud
_SCALES = {"trieu": 1_000_000, "tr": 1_000_000, "m": 1_000_000,
           "k": 1_000, "nghin": 1_000, "ngan": 1_000}
_CURRENCY = ("₫", "vnd", "dong", "d")


def parse_vnd(text: str) -> int | None:
    """'1.500.000', '1,500,000', '1500000', '1,5tr', '1tr5', '500k' -> đồng; None if unreadable."""
    value = fold(text).replace(" ", "")
    for suffix in _CURRENCY:
        if value.endswith(suffix) and len(value) > len(suffix):
            value = value[: -len(suffix)]
            break
    if value.isdigit():
        return int(value)
    if _GROUPED.match(value):
        return int(value.replace(".", "").replace(",", ""))
    tail = _TR_TAIL.match(value)
    if tail:
        return _whole(f"{tail.group(1)}.{tail.group(2)}", 1_000_000)
    scaled = _SCALED.match(value)
    if scaled:
        return _whole(scaled.group(1).replace(",", "."), _SCALES[scaled.group(2)])
    return None


def _whole(number: str, scale: int) -> int | None:
    try:
        amount = Decimal(number) * scale
    except InvalidOperation:
        return None
    return int(amount) if amount == amount.to_integral_value() else None


def parse_date(text: str, today: date) -> date | None:
    """A delivery's day as typed ("3/11", "hôm qua", "thứ 6", "03/11/2026"): the latest such
    day not after today (wording.when); None when it is no day."""
    try:
        return when.day(text, today, past=True)
    except when.WhenError:
        return None


def local_today(turn: Turn) -> date:
    return turn.now.astimezone(turn.settings.tz).date()


# --- what each policy option carries -----------------------------------------------------

@dataclass(frozen=True)
class PolicyPick:
    key: str
    measure: str
    standard: int | None
    repeat: bool  # the household already has a delivered record of this policy

    @property
    def value(self) -> str:
        return f"{self.key}:{self.measure}:{self.standard or ''}:{int(self.repeat)}"

    @classmethod
    def parse(cls, value: str) -> PolicyPick:
        key, measure, standard, repeat = value.split(":")
        return cls(key, measure, int(standard) if standard else None, repeat == "1")

    @property
    def amount_step(self) -> str:
        if self.standard:
            return "amount"
        return "vnd" if self.measure == "vnd" else "count"


def picked(data: Mapping[str, Any]) -> PolicyPick:
    return PolicyPick.parse(str(data["policy"]))


async def _policy_options(turn: Turn) -> Sequence[Option]:
    household_id = turn.data.get("household_id")
    options = []
    for policy in await support.policies(turn.session, on=local_today(turn)):
        repeat = household_id is not None and bool(
            await support.earlier_deliveries(turn.session, int(household_id), policy.key))
        pick = PolicyPick(policy.key, policy.measure, policy.standard_amount, repeat)
        options.append(Option(pick.value, support.policy_label(policy, turn.locale),
                              literal=True))
    return options


def _after_policy(data: Mapping[str, Any]) -> str:
    pick = picked(data)
    return "repeat" if pick.repeat else pick.amount_step


async def _repeat_summary(turn: Turn) -> str:
    pick = picked(turn.data)
    policy = await support.policy(turn.session, pick.key)
    earlier = await support.earlier_deliveries(turn.session, int(turn.data["household_id"]),
                                               pick.key)
    if policy is None or not earlier:  # undone meanwhile: nothing to warn about
        return turn.t("Please check before going on.")
    last, t = earlier[0], turn.t
    text = t("⚠ This household already received {policy}: {amount} on {date}.",
             policy=support.policy_label(policy, turn.locale),
             amount=amount_text(t, policy.measure, last.amount), date=t.date(last.delivered_on))
    if len(earlier) > 1:
        text += "\n" + t.plural("({n} delivery recorded in all.)",
                                "({n} deliveries recorded in all.)", len(earlier))
    return text


async def _amount_options(turn: Turn) -> Sequence[Option]:
    pick = picked(turn.data)
    options = []
    if pick.standard:
        options.append(Option(str(pick.standard),
                              amount_text(turn.t, pick.measure, pick.standard), literal=True))
    options.append(Option(OTHER, N_("Another amount")))
    return options


def _after_amount(data: Mapping[str, Any]) -> str:
    if data.get("amount") != OTHER:
        return "status"
    return "vnd" if picked(data).measure == "vnd" else "count"


async def _check_vnd(turn: Turn, text: str) -> str | None:
    amount = parse_vnd(text)
    if amount is None or not VND_MIN <= amount <= VND_MAX:
        raise BadAnswer(N_("Please type an amount in đồng from {min} to {max}, e.g. 1.500.000."),
                      min=turn.t.money(VND_MIN), max=turn.t.money(VND_MAX))
    return None


def chosen_amount(data: dict[str, Any]) -> int:
    pick = picked(data)
    if pick.amount_step == "amount" and data.get("amount") != OTHER:
        return int(data["amount"])
    if pick.measure == "vnd":
        amount = parse_vnd(str(data["vnd"]))
        assert amount is not None  # validated when typed
        return amount
    return int(data["count"])


async def _date_options(turn: Turn) -> Sequence[Option]:
    # The values are the dates themselves, taken when the person answers.
    today = local_today(turn)
    return (Option(today.isoformat(), N_("Today")),
            Option((today - timedelta(days=1)).isoformat(), N_("Yesterday")),
            Option(OTHER, N_("Another date")))


DATE_EXAMPLE = N_("Please type the day it was handed over, e.g. {example}, 3/11, hôm qua "
                  "or thứ 6.")


async def _check_date(turn: Turn, text: str) -> str | None:
    today = local_today(turn)
    try:
        day = when.day(text, today, past=True)
    except when.WhenError as problem:
        if problem.msgid is None:
            raise BadAnswer(DATE_EXAMPLE, example=today.strftime("%d/%m/%Y")) from None
        raise BadAnswer(problem.msgid, **problem.values) from None
    if day > today:
        raise BadAnswer(N_("{date} is still ahead; a delivery is recorded on or after the day "
                           "it was handed over. Please type that day."),
                        date=turn.t.long_date(day))
    earliest = today - timedelta(days=BACKDATE_DAYS)
    ahead = when.day(text, today, past=False)
    if day < earliest and today < ahead < today + timedelta(days=BACKDATE_DAYS):
        # "5/12" typed on 3/12: read as last year it is too old, and the one this year is
        # ahead; most likely a slip of the day or the month, so say both readings.
        raise BadAnswer(N_("{typed} is {date}, still ahead, or {past}, more than {days} days "
                           "ago; neither can be recorded. Please check the day and the month."),
                        typed=text.strip(), date=turn.t.long_date(ahead),
                        past=turn.t.long_date(day), days=BACKDATE_DAYS)
    if day < earliest:
        raise BadAnswer(N_("That is more than {days} days ago; type a date from {earliest} on."),
                      days=BACKDATE_DAYS, earliest=turn.t.date(earliest))
    return None


async def _record_date(turn: Turn, text: Any) -> None:
    """The day meant, fixed when typed ("hôm qua" stays that day past midnight)."""
    day = parse_date(str(text), local_today(turn))
    turn.data["date_on"] = day.isoformat() if day else None
    if day is not None:  # read back in words with the year, so a wrong guess shows now
        turn.say(turn.t("Handed over on {date}.", date=turn.t.long_day(day, local_today(turn))))


def chosen_date(data: dict[str, Any]) -> date:
    if data.get("date") == OTHER:
        return date.fromisoformat(str(data["date_on"]))
    return date.fromisoformat(str(data["date"]))


# --- summary and finish ---------------------------------------------------------------------

async def _summary(turn: Turn) -> str:
    data, t = turn.data, turn.t
    pick = picked(data)
    policy = await support.policy(turn.session, pick.key)
    name = support.policy_label(policy, turn.locale) if policy else pick.key
    lines = [t("Please check the delivery:"), *await confirm_lines(turn),
             t("Policy: {policy}", policy=name),
             t("Amount: {amount}", amount=amount_text(t, pick.measure, chosen_amount(data))),
             t("Status: {status}", status=status_text(t, data["status"])),
             t("Date: {date}", date=t.long_day(chosen_date(data), local_today(turn))),
             t("Receipt photo: {photo}",
               photo=t("attached") if data.get("photo") else t("none"))]
    return "\n".join(lines)


async def _finish(turn: Turn) -> None:
    pick = picked(turn.data)
    policy = await support.policy(turn.session, pick.key)
    if policy is None or not support.policy_offered(policy, local_today(turn)):
        turn.say(turn.t("That policy is no longer offered; nothing was saved. "
                        "Please send /support again."))
        return
    household = await resolve_household(turn)
    if household is None:
        return  # refused, and the person was told why
    status = str(turn.data["status"])
    if await _paid_meanwhile(turn, household, policy, status):
        return
    delivery = await support.record_delivery(
        turn.session, household=household, policy_key=policy.key,
        amount=chosen_amount(turn.data), status=status, delivered_on=chosen_date(turn.data),
        photo=turn.data.get("photo"), person_id=turn.person.id if turn.person else None,
        now=turn.now)
    log.info("delivery %s (%s, %s) recorded on unit %s by account %s", delivery.id,
             policy.key, status, delivery.unit_id, turn.account.id)
    turn.say(turn.t("Saved: delivery #{id}, {policy} — {amount}, {status}, {date}.",
                    id=delivery.id, policy=support.policy_label(policy, turn.locale),
                    amount=amount_text(turn.t, policy.measure, delivery.amount),
                    status=status_text(turn.t, status), date=turn.t.date(delivery.delivered_on)))


async def _paid_meanwhile(turn: Turn, household: Household, policy: SupportPolicy,
                          status: str) -> bool:
    """The guard again at write time: a delivery recorded since the question was asked."""
    if status != DeliveryStatus.DELIVERED or turn.data.get("repeat") == "yes":
        return False
    earlier = await support.earlier_deliveries(turn.session, household.id, policy.key)
    if not earlier:
        return False
    log.info("delivery refused for account %s: policy %s already delivered on unit %s",
             turn.account.id, policy.key, household.unit_id)
    turn.say(turn.t("Meanwhile this household was recorded as having received {policy} on "
                    "{date}; nothing was saved. Send /support again to record another.",
                    policy=support.policy_label(policy, turn.locale),
                    date=turn.t.date(earlier[0].delivered_on)))
    return True


FLOW = register(Flow(
    name="support",
    title=N_("the support delivery"),
    steps=(
        *pick_household_steps(after="policy"),
        Step("policy", "choice", N_("Which support policy?"), options=_policy_options,
             goes_to=("repeat", "amount", "vnd", "count"), next=_after_policy),
        Step("repeat", "confirm", N_("Record another delivery to this household anyway?"),
             summary=_repeat_summary, goes_to=("amount", "vnd", "count"),
             next=lambda data: picked(data).amount_step),
        Step("amount", "choice", N_("How much was handed over? Choose the standard amount or "
                                    "another one."),
             options=_amount_options, goes_to=("status", "vnd", "count"), next=_after_amount,
             typed_to=OTHER),
        Step("vnd", "text", N_("Type the amount in đồng, e.g. 1.500.000."), max_length=30,
             validate=_check_vnd, goes_to=("status",)),
        Step("count", "number", N_("How many were handed over ({min} to {max})?"),
             minimum=COUNT_MIN, maximum=COUNT_MAX),
        Step("status", "choice", N_("What happened?"), options=STATUS_OPTIONS),
        Step("date", "choice", N_("When?"), options=_date_options, typed_to=OTHER,
             goes_to=("date_text", "photo"),
             next=lambda data: "date_text" if data.get("date") == OTHER else "photo"),
        Step("date_text", "text", N_("Type the day it was handed over, e.g. 3/11, hôm qua, "
                                        "thứ 6 or 03/11/2026."),
             max_length=40, validate=_check_date, on_answer=_record_date),
        Step("photo", "photo", N_("Send a photo of the signed receipt, if there is one."),
             optional=True),
        Step("confirm", "confirm", N_("Save this delivery?"), summary=_summary),
    ),
    finish=_finish,
))


async def start(turn: Turn, household: Household | None = None) -> None:
    """/support: leaders, ward staff and admins, each within their own units; with the
    household already picked from a search result (its Record support button)."""
    if not scope(turn):
        refuse(turn, "/support", ROLES)
        return
    if not await support.policies(turn.session, on=local_today(turn)):
        turn.say(turn.t("No support policy is set up yet; ask your administrator."))
        return
    if household is None:
        await engine.begin(turn, FLOW)
        return
    await engine.begin(turn, FLOW, at="policy", data=await settled(turn, household))
