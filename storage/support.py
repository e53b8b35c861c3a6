"""Support policies, deliveries to households, eligibility, coverage and monitors' disputes.

Every query that lists or counts takes a unit and stays inside its subtree (the materialised
path of the household's unit), so scope is one prefix match and never forgotten.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, distinct, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import (
    DeliveryDispute,
    DeliveryStatus,
    Household,
    SupportDelivery,
    SupportEligibility,
    SupportPolicy,
    Unit,
    utcnow,
)

DISPUTE_OPEN = "open"
DISPUTE_CLOSED = "closed"
# The closing note is kept with the monitor's note (the table has one note column).


# --- policies ------------------------------------------------------------------------------

async def policies(session: AsyncSession, *, active_only: bool = True,
                   on: date | None = None) -> Sequence[SupportPolicy]:
    """The catalogue (the active part unless asked); `on` a day, only the policies valid
    then (valid_from and valid_to both included; none given: always)."""
    query = select(SupportPolicy).order_by(SupportPolicy.position, SupportPolicy.key)
    if active_only:
        query = query.where(SupportPolicy.active.is_(True))
    if on is not None:
        query = query.where(or_(SupportPolicy.valid_from.is_(None),
                                SupportPolicy.valid_from <= on),
                            or_(SupportPolicy.valid_to.is_(None), SupportPolicy.valid_to >= on))
    return (await session.execute(query)).scalars().all()


def policy_offered(policy: SupportPolicy, on: date) -> bool:
    return (policy.active and (policy.valid_from is None or policy.valid_from <= on)
            and (policy.valid_to is None or on <= policy.valid_to))


async def policy(session: AsyncSession, key: str) -> SupportPolicy | None:
    return await session.get(SupportPolicy, key)


def policy_label(policy: SupportPolicy, locale: str) -> str:
    return policy.label_vi if locale == "vi" else policy.label_en


# --- deliveries ----------------------------------------------------------------------------

async def record_delivery(session: AsyncSession, *, household: Household, policy_key: str,
                          amount: int, status: str, delivered_on: date, photo: str | None,
                          person_id: int | None, now: datetime) -> SupportDelivery:
    delivery = SupportDelivery(household_id=household.id, unit_id=household.unit_id,
                               policy_key=policy_key, amount=amount,
                               status=DeliveryStatus(status).value, delivered_on=delivered_on,
                               photo=photo, created_by_person_id=person_id, created_at=now)
    session.add(delivery)
    await session.flush()
    return delivery


async def earlier_deliveries(session: AsyncSession, household_id: int, policy_key: str
                             ) -> Sequence[SupportDelivery]:
    """What this household already received under this policy, latest first."""
    query = (select(SupportDelivery)
             .where(SupportDelivery.household_id == household_id,
                    SupportDelivery.policy_key == policy_key,
                    SupportDelivery.status == DeliveryStatus.DELIVERED)
             .order_by(SupportDelivery.delivered_on.desc(), SupportDelivery.id.desc()))
    return (await session.execute(query)).scalars().all()


def _within(roots: Sequence[Unit]) -> ColumnElement[bool]:
    """Deliveries whose household's unit lies in one of the subtrees; none for no roots."""
    if not roots:
        return false()
    inside = or_(*(Unit.path.startswith(root.path) for root in roots))
    return SupportDelivery.unit_id.in_(select(Unit.id).where(inside))


async def deliveries(session: AsyncSession, roots: Sequence[Unit], *,
                     policy_key: str | None = None, limit: int | None = None
                     ) -> Sequence[SupportDelivery]:
    """Deliveries in the units' subtrees, latest first, with household, policy and unit."""
    query = (select(SupportDelivery).where(_within(roots))
             .options(selectinload(SupportDelivery.household).selectinload(Household.unit),
                      selectinload(SupportDelivery.policy))
             .order_by(SupportDelivery.delivered_on.desc(), SupportDelivery.id.desc()))
    if policy_key is not None:
        query = query.where(SupportDelivery.policy_key == policy_key)
    if limit is not None:
        query = query.limit(limit)
    return (await session.execute(query)).scalars().all()


async def delivery(session: AsyncSession, delivery_id: int) -> SupportDelivery | None:
    query = (select(SupportDelivery).where(SupportDelivery.id == delivery_id)
             .options(selectinload(SupportDelivery.household).selectinload(Household.unit),
                      selectinload(SupportDelivery.policy)))
    return (await session.execute(query)).scalar_one_or_none()


# --- eligibility and coverage ---------------------------------------------------------------

async def is_eligible(session: AsyncSession, household_id: int, policy_key: str) -> bool:
    return await session.get(SupportEligibility, (household_id, policy_key)) is not None


async def mark_eligible(session: AsyncSession, household: Household, policy_key: str,
                        now: datetime | None = None) -> bool:
    """Mark the household eligible; False when it already was (nothing changes)."""
    if await is_eligible(session, household.id, policy_key):
        return False
    session.add(SupportEligibility(household_id=household.id, unit_id=household.unit_id,
                                   policy_key=policy_key, created_at=now or utcnow()))
    await session.flush()
    return True


@dataclass(frozen=True)
class Coverage:
    policy: SupportPolicy
    eligible: int  # households marked eligible in the subtree
    delivered: int  # distinct households with a "delivered" record in the subtree
    amount: int  # VND, or bags / kits, delivered in the subtree

    @property
    def ratio(self) -> float | None:
        """delivered ÷ eligible; None when nobody is marked eligible (no denominator)."""
        return self.delivered / self.eligible if self.eligible else None


async def coverage(session: AsyncSession, unit: Unit) -> list[Coverage]:
    """Per active policy (and any inactive one with records) in the unit's subtree."""
    eligible = await _eligible_counts(session, unit)
    delivered = await _delivered_counts(session, unit)
    rows = []
    for item in await policies(session, active_only=False):
        households, amount = delivered.get(item.key, (0, 0))
        count = eligible.get(item.key, 0)
        if item.active or count or households:
            rows.append(Coverage(item, count, households, amount))
    return rows


async def _eligible_counts(session: AsyncSession, unit: Unit) -> dict[str, int]:
    query = (select(SupportEligibility.policy_key, func.count())
             .join(Unit, Unit.id == SupportEligibility.unit_id)
             .where(Unit.path.startswith(unit.path))
             .group_by(SupportEligibility.policy_key))
    return {key: int(count) for key, count in (await session.execute(query)).all()}


async def _delivered_counts(session: AsyncSession, unit: Unit) -> dict[str, tuple[int, int]]:
    query = (select(SupportDelivery.policy_key, func.count(distinct(SupportDelivery.household_id)),
                    func.coalesce(func.sum(SupportDelivery.amount), 0))
             .where(_within([unit]), SupportDelivery.status == DeliveryStatus.DELIVERED)
             .group_by(SupportDelivery.policy_key))
    return {key: (int(households), int(amount))
            for key, households, amount in (await session.execute(query)).all()}


# --- disputes --------------------------------------------------------------------------------

async def open_dispute(session: AsyncSession, delivery: SupportDelivery, person_id: int | None,
                       note: str, now: datetime) -> DeliveryDispute:
    dispute = DeliveryDispute(delivery_id=delivery.id, person_id=person_id, note=note,
                              status=DISPUTE_OPEN, created_at=now)
    session.add(dispute)
    await session.flush()
    return dispute


async def close_dispute(session: AsyncSession, dispute: DeliveryDispute, note: str,
                        now: datetime, person_id: int | None = None) -> None:
    dispute.status = DISPUTE_CLOSED
    dispute.closed_at = now
    dispute.close_note = note
    dispute.closed_by_person_id = person_id
    await session.flush()


async def dispute(session: AsyncSession, dispute_id: int) -> DeliveryDispute | None:
    return await session.get(DeliveryDispute, dispute_id)


async def open_disputes(session: AsyncSession, roots: Sequence[Unit], *,
                        limit: int | None = None
                        ) -> list[tuple[DeliveryDispute, SupportDelivery]]:
    """Open disputes on deliveries in the units' subtrees, oldest first (first come)."""
    query = (select(DeliveryDispute, SupportDelivery)
             .join(SupportDelivery, SupportDelivery.id == DeliveryDispute.delivery_id)
             .where(_within(roots), DeliveryDispute.status == DISPUTE_OPEN)
             .options(selectinload(SupportDelivery.household).selectinload(Household.unit),
                      selectinload(SupportDelivery.policy))
             .order_by(DeliveryDispute.created_at, DeliveryDispute.id))
    if limit is not None:
        query = query.limit(limit)
    return [(row[0], row[1]) for row in (await session.execute(query)).all()]


async def disputed_ids(session: AsyncSession, delivery_ids: Sequence[int]) -> set[int]:
    """Which of these deliveries carry an open dispute."""
    if not delivery_ids:
        return set()
    query = select(DeliveryDispute.delivery_id).where(
        DeliveryDispute.delivery_id.in_(delivery_ids), DeliveryDispute.status == DISPUTE_OPEN)
    return set((await session.execute(query)).scalars())
