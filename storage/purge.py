"""Retention under Decree 13/2023/ND-CP: personal data past its time is removed, while the rows
the digests and audits count (reports by category and unit, check-ins, deliveries and their
amounts, acknowledgements) stay.

What goes, for records older than the cut-off:
- notes and photos of resolved reports and their events; receipt photos of deliveries; the
  notes of closed disputes;
- the messages the bot sent (the outbox holds their texts, names included) and the processed-
  update ledger;
- people deactivated before the cut-off: their name and phone, and their chat accounts' platform ids
  (the accounts stay, so the messages' and answers' counts keep their owner).
Household registers are current data, kept while the ward keeps them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from storage.models import (
    ChatAccount,
    Conversation,
    DeliveryDispute,
    OutboxMessage,
    OutboxStatus,
    Person,
    ProcessedUpdate,
    Report,
    ReportEvent,
    ReportStatus,
    SupportDelivery,
    WebSession,
)

PURGED_NAME = "—"


@dataclass
class Purged:
    report_notes: int = 0
    report_event_notes: int = 0
    delivery_photos: int = 0
    dispute_notes: int = 0
    messages: int = 0
    ledger_entries: int = 0
    people: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


async def purge(session: AsyncSession, before: datetime) -> Purged:
    """Remove personal data older than `before` (aware, UTC); one transaction: all or none."""
    done = Purged()
    old_reports = select(Report.id).where(Report.status == ReportStatus.RESOLVED,
                                          Report.resolved_at < before)
    done.report_notes = await _count(session, update(Report).where(
        Report.id.in_(old_reports), (Report.note.is_not(None)) | (Report.photo.is_not(None)))
        .values(note=None, photo=None))
    done.report_event_notes = await _count(session, update(ReportEvent).where(
        ReportEvent.report_id.in_(old_reports), ReportEvent.note.is_not(None))
        .values(note=None))
    done.delivery_photos = await _count(session, update(SupportDelivery).where(
        SupportDelivery.created_at < before, SupportDelivery.photo.is_not(None))
        .values(photo=None))
    done.dispute_notes = await _count(session, update(DeliveryDispute).where(
        DeliveryDispute.closed_at < before, DeliveryDispute.note != "")
        .values(note="", close_note=None))
    done.messages = await _count(session, delete(OutboxMessage).where(
        OutboxMessage.created_at < before,
        OutboxMessage.status.in_((OutboxStatus.SENT, OutboxStatus.FAILED))))
    done.ledger_entries = await _count(session, delete(ProcessedUpdate).where(
        ProcessedUpdate.processed_at < before))
    done.people = await _forget_people(session, before)
    return done


async def _forget_people(session: AsyncSession, before: datetime) -> int:
    gone = (await session.execute(select(Person).where(
        Person.active.is_(False), Person.deactivated_at < before,
        Person.full_name != PURGED_NAME))).scalars().all()
    for person in gone:
        person.full_name, person.phone = PURGED_NAME, None
        accounts = select(ChatAccount.id).where(ChatAccount.person_id == person.id)
        await session.execute(delete(Conversation).where(
            Conversation.chat_account_id.in_(accounts)))
        await session.execute(delete(WebSession).where(WebSession.chat_account_id.in_(accounts)))
        # The platform id is what identifies them on Telegram or Zalo; a unique stand-in
        # keeps the (channel, external_id) key.
        await session.execute(update(ChatAccount).where(ChatAccount.person_id == person.id)
                              .values(external_id="purged-" + ChatAccount.id.cast(
                                  ChatAccount.external_id.type), latest_buttons=None))
    await session.flush()
    return len(gone)


async def _count(session: AsyncSession, statement: Executable) -> int:
    """Rows an UPDATE or DELETE touched."""
    result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)
