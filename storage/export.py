"""What `coso export` and /export write: a unit's subtree over a period, one sheet per record
kind, as typed values (a date stays a date) with English msgids for the names and headers.

Personal data (Decree 13/2023/ND-CP): a sheet carries the head-of-household name and notes
only because the ward keeps them for its own work; the caller checks the asker's scope.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import N_
from storage import reports, support
from storage.households import FLAG_LABELS
from storage.models import (
    HOUSEHOLD_FLAGS,
    CheckIn,
    DeliveryDispute,
    Household,
    Report,
    SupportDelivery,
    Unit,
)

MAX_DAYS = 366  # a longer period is a different job (a database dump), not a spreadsheet


class Label(str):
    """A cell value that is a msgid, translated when the sheet is written."""


REPORT_STATUS = {"open": Label(N_("Open")), "resolved": Label(N_("Resolved"))}
CHECK_IN_ANSWER = {"no_change": Label(N_("No change today")),
                   "reported": Label(N_("Reported a household"))}
DELIVERY_STATUS = {"delivered": Label(N_("Delivered")), "refused": Label(N_("Refused")),
                   "not_found": Label(N_("Household not found")),
                   "moved_away": Label(N_("Moved away"))}
MEASURE = {"vnd": Label(N_("đồng")), "bag": Label(N_("bags")), "kit": Label(N_("kits")),
           "other": Label(N_("units"))}
YES, NO = Label(N_("yes")), None


Cell = str | int | date | datetime | None


@dataclass(frozen=True)
class Sheet:
    name: str  # msgid; Excel allows 31 characters
    headers: tuple[str, ...]  # msgids
    rows: Sequence[tuple[Cell, ...]]


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive
    tz: tzinfo

    @property
    def utc_bounds(self) -> tuple[datetime, datetime]:
        """[start of the first day, start of the day after the last) in UTC."""
        first = datetime.combine(self.start, time.min, self.tz)
        after = datetime.combine(self.end + timedelta(days=1), time.min, self.tz)
        return first.astimezone(UTC), after.astimezone(UTC)

    def local(self, moment: datetime | None) -> datetime | None:
        """Wall-clock time in the city, without a zone: Excel dates have none."""
        return None if moment is None else moment.astimezone(self.tz).replace(tzinfo=None)


async def sheets(session: AsyncSession, root: Unit, period: Period,
                 locale: str) -> list[Sheet]:
    names = await _unit_names(session, root)
    return [await _households(session, names),
            await _reports(session, names, period, locale),
            await _check_ins(session, names, period),
            await _deliveries(session, names, period, locale)]


async def _unit_names(session: AsyncSession, root: Unit) -> dict[int, tuple[str, str]]:
    query = select(Unit.id, Unit.code, Unit.name).where(Unit.path.startswith(root.path))
    return {row.id: (row.code, row.name) for row in await session.execute(query)}


async def _households(session: AsyncSession, names: dict[int, tuple[str, str]]) -> Sheet:
    found = (await session.execute(select(Household).where(Household.unit_id.in_(names))
                                   .order_by(Household.unit_id, Household.code))).scalars()
    rows = [(*names[h.unit_id], h.code, h.head_name, h.members,
             *(YES if getattr(h, flag) else NO for flag in HOUSEHOLD_FLAGS)) for h in found]
    return Sheet(N_("Households"), (N_("Unit code"), N_("Unit"), N_("Household code"),
                                    N_("Head of household"), N_("Members"),
                                    *(FLAG_LABELS[flag] for flag in HOUSEHOLD_FLAGS)), rows)


async def _reports(session: AsyncSession, names: dict[int, tuple[str, str]], period: Period,
                   locale: str) -> Sheet:
    start, end = period.utc_bounds
    query = (select(Report, Household.code).join(Household)
             .where(Report.unit_id.in_(names), Report.created_at >= start,
                    Report.created_at < end).order_by(Report.created_at, Report.id))
    labels = {c.key: reports.category_label(c, locale)
              for c in await reports.categories(session, active_only=False)}
    rows = [(r.id, period.local(r.created_at), *names[r.unit_id], code,
             labels.get(r.category_key, r.category_key), r.people_count,
             YES if r.urgent else NO, REPORT_STATUS.get(r.status, r.status),
             period.local(r.resolved_at), r.note)
            for r, code in await session.execute(query)]
    return Sheet(N_("Reports"), (N_("ID"), N_("Filed"), N_("Unit code"), N_("Unit"),
                                 N_("Household code"), N_("Category"), N_("People"),
                                 N_("Urgent"), N_("Status"), N_("Resolved"), N_("Note")), rows)


async def _check_ins(session: AsyncSession, names: dict[int, tuple[str, str]],
                     period: Period) -> Sheet:
    query = (select(CheckIn).where(CheckIn.unit_id.in_(names), CheckIn.day >= period.start,
                                   CheckIn.day <= period.end)
             .order_by(CheckIn.day, CheckIn.unit_id))
    rows = [(c.day, *names[c.unit_id], CHECK_IN_ANSWER.get(c.answer, c.answer),
             period.local(c.created_at)) for c in (await session.execute(query)).scalars()]
    return Sheet(N_("Daily check-ins"),
                 (N_("Date"), N_("Unit code"), N_("Unit"), N_("Answer"), N_("Answered at")),
                 rows)


async def _deliveries(session: AsyncSession, names: dict[int, tuple[str, str]],
                      period: Period, locale: str) -> Sheet:
    query = (select(SupportDelivery, Household.code).join(Household)
             .where(SupportDelivery.unit_id.in_(names),
                    SupportDelivery.delivered_on >= period.start,
                    SupportDelivery.delivered_on <= period.end)
             .order_by(SupportDelivery.delivered_on, SupportDelivery.id))
    found = list(await session.execute(query))
    disputed = await _disputed(session, [d.id for d, _ in found])
    policies = {p.key: p for p in await support.policies(session, active_only=False)}
    rows = []
    for delivery, code in found:
        policy = policies[delivery.policy_key]
        rows.append((delivery.id, delivery.delivered_on, *names[delivery.unit_id], code,
                     support.policy_label(policy, locale), delivery.amount,
                     MEASURE.get(policy.measure, policy.measure),
                     DELIVERY_STATUS.get(delivery.status, delivery.status),
                     YES if delivery.id in disputed else NO))
    return Sheet(N_("Support deliveries"),
                 (N_("ID"), N_("Date"), N_("Unit code"), N_("Unit"), N_("Household code"),
                  N_("Policy"), N_("Amount"), N_("Measure"), N_("Status"), N_("Disputed")),
                 rows)


async def _disputed(session: AsyncSession, delivery_ids: Sequence[int]) -> set[int]:
    if not delivery_ids:
        return set()
    query = select(DeliveryDispute.delivery_id).where(
        DeliveryDispute.delivery_id.in_(delivery_ids))
    return set((await session.execute(query)).scalars())
