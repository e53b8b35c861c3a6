"""The schema: units, people and their roles, invites, chat accounts, and the engine's tables."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database (SQLite hands back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONData = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSONData,
                           list[Any]: JSONData}


class Role(enum.StrEnum):
    LEADER = "leader"
    WARD_STAFF = "ward_staff"
    ADMIN = "admin"
    MONITOR = "monitor"


class Platform(enum.StrEnum):
    TELEGRAM = "telegram"
    ZALO = "zalo"
    WEB = "web"


class Unit(Base):
    """A node of the unit tree: province, ward/commune, quarter/hamlet, group... at any depth."""

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(32))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    # Materialised path of ids ("/1/7/42/") so a subtree is one indexed prefix match.
    path: Mapped[str] = mapped_column(String(512), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    parent: Mapped[Unit | None] = relationship(remote_side=[id])


class Person(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    full_name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20))  # personal data: never logged
    locale: Mapped[str | None] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deactivated_at: Mapped[datetime | None]

    roles: Mapped[list[RoleAssignment]] = relationship(back_populates="person")
    accounts: Mapped[list[ChatAccount]] = relationship(back_populates="person")


class RoleAssignment(Base):
    """A role held on a unit, and thereby on its subtree; ended, never deleted."""

    __tablename__ = "role_assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]

    person: Mapped[Person] = relationship(back_populates="roles")
    unit: Mapped[Unit] = relationship()


class ChatAccount(Base):
    """One person's account on one channel; exists before registration (a stranger)."""

    __tablename__ = "chat_accounts"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    locale: Mapped[str | None] = mapped_column(String(8))
    blocked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The buttons of the latest message outside a flow (a directive's "Received"), so a reply
    # "1" on a text-only channel can be read as a tap: [[label, payload], ...].
    latest_buttons: Mapped[list[Any] | None] = mapped_column("menu", JSONData)
    # Flood control (bot/handlers/flood.py): updates counted since flood_since, a window of a
    # minute, and when a stranger was last told to ask for an invite.
    flood_since: Mapped[datetime | None]
    flood_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    invite_hint_at: Mapped[datetime | None]
    # Which of the channel's bots this chat talks to (TELEGRAM_BOT_TOKENS; bot.settings
    # BotToken.key): NULL the default bot, else the bot's id. The last bot the person wrote
    # to; everything sent to them goes through it.
    bot: Mapped[str | None] = mapped_column(String(32))

    person: Mapped[Person | None] = relationship(back_populates="accounts")


class Invite(Base):
    """A single-use code bound to a unit and a role; only its hash is kept."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    revoked_at: Mapped[datetime | None]
    # A roster invite: for this person (redeeming links the chat to them), or for this
    # vacant post (redeeming makes the new person its holder). Neither: a bare role invite.
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    unit_post_id: Mapped[int | None] = mapped_column(ForeignKey("unit_posts.id"), index=True)

    unit: Mapped[Unit] = relationship()


class ProcessedUpdate(Base):
    """The ledger: an update's key enters with its effects, so a redelivery changes nothing."""

    __tablename__ = "processed_updates"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    update_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Conversation(Base):
    """The open conversation of one chat account, saved after every step."""

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_account_id: Mapped[int] = mapped_column(ForeignKey("chat_accounts.id"), unique=True)
    flow: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(64))
    # A fresh token at every question: buttons carry it, so a button from an older question
    # is recognised as stale instead of answering the current one.
    question_token: Mapped[str] = mapped_column("question", String(16), default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # storage.conversations.History as JSON: {"back": [{"step": ..., "answers": {...}}]}
    history: Mapped[dict[str, Any]] = mapped_column(default=lambda: {"back": []})
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


UNSETTLED_SQL = "status IN ('pending', 'sending')"


class OutboxMessage(Base):
    """A message the bot means to send, written in the same transaction as its cause."""

    __tablename__ = "outbox"
    # The claim's scan (storage.outbox.claim): unsettled rows in the order they go out. Sent
    # and failed rows, nearly all of the table, are not in it.
    __table_args__ = (Index("ix_outbox_unsettled", "channel", "bot", "priority", "id",
                            postgresql_where=text(UNSETTLED_SQL),
                            sqlite_where=text(UNSETTLED_SQL)),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    chat_account_id: Mapped[int] = mapped_column(ForeignKey("chat_accounts.id"), index=True)
    payload: Mapped[dict[str, Any]]
    # Lower goes first: replies to someone mid-conversation before bulk sends.
    priority: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    # Which process claimed it (storage.outbox.Claimant, PostgreSQL): a dead process's claims
    # are freed as soon as another process sees it gone, not when their lease runs out.
    claimed_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    # What the message is part of ("directive:12", "drill:3", "digest:26734:2026-11-24"), so
    # delivery can be counted per directive, drill or digest.
    ref: Mapped[str | None] = mapped_column(String(64), index=True)
    # How many parts of a message split for the platform went out: a retry after a later
    # part failed (a 429) sends only the rest.
    parts_sent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The bot that sends it (its chat account's bot when it was queued): each bot of a
    # channel has its own sender and pace.
    bot: Mapped[str] = mapped_column(String(32), default="", server_default="")


class WebSession(Base):
    """A web chat login, by the hash of the cookie's token."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    chat_account_id: Mapped[int] = mapped_column(ForeignKey("chat_accounts.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- Households, reports and support deliveries (the leaders' reports) ---------------------


class Household(Base):
    """A household in a unit's register: personal data under Decree 13/2023/ND-CP.

    Only what a ward needs: a short code, an optional head-of-household name, the number of
    members, and the vulnerability flags that decide who gets checked on and supported.
    """

    __tablename__ = "households"
    __table_args__ = (UniqueConstraint("unit_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))  # house number and street, or the unit's own
    head_name: Mapped[str | None] = mapped_column(String(200))
    # Case- and diacritic-free forms of code and name, for search ("nguyen van a").
    search_key: Mapped[str] = mapped_column(String(300), default="")
    members: Mapped[int] = mapped_column(Integer, default=1)
    elderly_alone: Mapped[bool] = mapped_column(Boolean, default=False)
    disability: Mapped[bool] = mapped_column(Boolean, default=False)
    poor: Mapped[bool] = mapped_column(Boolean, default=False)
    near_poor: Mapped[bool] = mapped_column(Boolean, default=False)
    young_children: Mapped[bool] = mapped_column(Boolean, default=False)
    pregnant: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    unit: Mapped[Unit] = relationship()


HOUSEHOLD_FLAGS = ("elderly_alone", "disability", "poor", "near_poor", "young_children",
                   "pregnant")


class ReportCategory(Base):
    """The configurable catalogue of household situations (F0, F1, short of food...)."""

    __tablename__ = "report_categories"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    label_vi: Mapped[str] = mapped_column(String(100))
    label_en: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The catalogue's own fields (storage.catalog): short forms typed in chat ("F0",
    # "thieu an"), whether a report of it starts urgent, and the ward owning it (None: the
    # city's).
    aliases: Mapped[list[Any] | None] = mapped_column(JSONData)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)


class ReportStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Report(Base):
    """A household situation report; open until a leader or ward staff resolves it."""

    __tablename__ = "reports"
    # The digest reads a ward's reports through these alone, never the table (storage.digest).
    __table_args__ = (
        Index("ix_reports_unit_created", "unit_id", "created_at", "category_key"),
        Index("ix_reports_unit_status", "unit_id", "status", "created_at", "urgent",
              "category_key"),
        Index("ix_reports_unit_resolved", "unit_id", "resolved_at", "category_key",
              "created_at"),
        # The city's page: what was created or resolved after the day's end, city-wide (on
        # today's page nothing: one probe each, not one per unit of the city).
        Index("ix_reports_created", "created_at"),
        Index("ix_reports_resolved", "resolved_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))  # the household's, for scope
    category_key: Mapped[str] = mapped_column(ForeignKey("report_categories.key"))
    people_count: Mapped[int] = mapped_column(Integer)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)
    photo: Mapped[str | None] = mapped_column(String(512))  # the platform's file reference
    status: Mapped[str] = mapped_column(String(16), default=ReportStatus.OPEN)
    created_by_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    resolved_at: Mapped[datetime | None]
    resolved_by_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    # The ward staff member who took an urgent report from its alert ("Đã nhận xử lý"): set
    # once, by the first tap (storage.reports.take), so the others know it is handled.
    assigned_to_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    assigned_at: Mapped[datetime | None]

    household: Mapped[Household] = relationship()
    category: Mapped[ReportCategory] = relationship()


class UnitReportCount(Base):
    """A unit's open reports and the urgent ones among them, as they stand: kept by every
    write to a report's status, urgency or unit, in the same transaction
    (storage.reports.count_change), so the city's page sums ~35,000 rows, not 600,000."""

    __tablename__ = "unit_report_counts"

    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True)
    open: Mapped[int] = mapped_column(Integer, default=0)
    open_urgent: Mapped[int] = mapped_column(Integer, default=0)


class ReportEvent(Base):
    """What happened to a report after it was filed: an update or its resolution."""

    __tablename__ = "report_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # storage.reports.EventKind
    people_count: Mapped[int | None]
    note: Mapped[str | None] = mapped_column(Text)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CheckIn(Base):
    """A unit's answer to the daily check-in: one per unit and day (local date)."""

    __tablename__ = "check_ins"
    __table_args__ = (UniqueConstraint("unit_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    day: Mapped[date]
    answer: Mapped[str] = mapped_column(String(16))  # "no_change" | "reported"
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SupportPolicy(Base):
    """The configurable catalogue of support policies and how each is measured."""

    __tablename__ = "support_policies"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    label_vi: Mapped[str] = mapped_column(String(150))
    label_en: Mapped[str] = mapped_column(String(150))
    measure: Mapped[str] = mapped_column(String(8))  # "vnd" | "bag" | "kit"
    standard_amount: Mapped[int | None] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    legal_basis: Mapped[str | None] = mapped_column(String(300))  # "Nghị quyết 68/NQ-CP"
    # Offered in /support only between these days (local dates, both included).
    valid_from: Mapped[date | None]
    valid_to: Mapped[date | None]


class DeliveryStatus(enum.StrEnum):
    DELIVERED = "delivered"
    REFUSED = "refused"
    NOT_FOUND = "not_found"
    MOVED_AWAY = "moved_away"


class SupportDelivery(Base):
    """Support handed (or not) to a household under one policy."""

    __tablename__ = "support_deliveries"
    __table_args__ = (
        Index("ix_support_deliveries_unit_day", "unit_id", "delivered_on"),
        Index("ix_support_deliveries_household_policy", "household_id", "policy_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    policy_key: Mapped[str] = mapped_column(ForeignKey("support_policies.key"))
    amount: Mapped[int] = mapped_column(BigInteger)  # VND, or a count of bags / kits
    status: Mapped[str] = mapped_column(String(16))
    delivered_on: Mapped[date]
    photo: Mapped[str | None] = mapped_column(String(512))  # the signed receipt
    created_by_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    household: Mapped[Household] = relationship()
    policy: Mapped[SupportPolicy] = relationship()


class SupportEligibility(Base):
    """A household found eligible for a policy: the denominator of coverage."""

    __tablename__ = "support_eligibility"
    __table_args__ = (Index("ix_support_eligibility_unit_policy", "unit_id", "policy_key"),)

    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), primary_key=True)
    policy_key: Mapped[str] = mapped_column(ForeignKey("support_policies.key"),
                                            primary_key=True)
    # The household's, like a report's: a ward's coverage is counted without the households.
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeliveryDispute(Base):
    """A monitor's flag on a delivery (Fatherland Front oversight); ward staff close it."""

    __tablename__ = "delivery_disputes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("support_deliveries.id"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    note: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")  # "open" | "closed"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    close_note: Mapped[str | None] = mapped_column(Text)
    closed_by_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))


# --- Schedules and exactly-once runs (check-ins, reminders, digests) ------------------------


class Schedule(Base):
    """A ward's own times; a missing value falls back to the city-wide default in settings."""

    __tablename__ = "schedules"

    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True)
    prompt_at: Mapped[str | None] = mapped_column(String(5))  # "HH:MM" in COSO_TIMEZONE
    reminder_at: Mapped[str | None] = mapped_column(String(5))
    digest_at: Mapped[str | None] = mapped_column(String(5))
    weekdays_only: Mapped[bool | None] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class JobRun(Base):
    """A claimed run of a scheduled job: its (job, unit, period) key makes it happen once."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "unit_id", "period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(32))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    period: Mapped[str] = mapped_column(String(32))  # "2026-11-24", or finer for reminders
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


# --- Directives and drills -------------------------------------------------------------------


class Directive(Base):
    """A directive sent to a unit subtree (optionally one role), usually to be acknowledged."""

    __tablename__ = "directives"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    role: Mapped[str | None] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    attachment: Mapped[str | None] = mapped_column(String(512))  # a stored file's path
    attachment_name: Mapped[str | None] = mapped_column(String(200))
    requires_ack: Mapped[bool] = mapped_column(Boolean, default=True)
    deadline: Mapped[datetime | None]
    remind_after_minutes: Mapped[int] = mapped_column(Integer, default=120)
    created_by_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    # The digest counts the last week's directives: a range, not a scan of every one.
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class DirectiveRecipient(Base):
    """One person a directive went to, for one unit they hold the role on."""

    __tablename__ = "directive_recipients"
    __table_args__ = (UniqueConstraint("directive_id", "person_id", "unit_id"),
                      # A ward's acknowledgements: its units' rows, not every directive's.
                      Index("ix_directive_recipients_unit", "unit_id", "directive_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    directive_id: Mapped[int] = mapped_column(ForeignKey("directives.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    acknowledged_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    done_note: Mapped[str | None] = mapped_column(Text)
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    reminded_at: Mapped[datetime | None]


class DrillScenario(Base):
    """The configurable catalogue of response scenarios, each with ordered checklist steps."""

    __tablename__ = "drill_scenarios"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    label_vi: Mapped[str] = mapped_column(String(200))
    label_en: Mapped[str] = mapped_column(String(200))
    # [{"vi": ..., "en": ..., "minutes": expected minutes}, ...]
    steps: Mapped[list[Any]] = mapped_column(JSONData)
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    levels: Mapped[list[Any] | None] = mapped_column(JSONData)  # unit levels; None: all
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    # Raised whenever the steps change, so each drill names the version it ran.
    version: Mapped[int] = mapped_column(Integer, default=1)


class Drill(Base):
    """A scenario drill started by ward staff for some of the ward's units."""

    __tablename__ = "drills"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)  # the ward
    scenario_key: Mapped[str] = mapped_column(ForeignKey("drill_scenarios.key"))
    started_by_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    deadline: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    # The scenario's steps as they were when the drill started (its report shows these).
    scenario_version: Mapped[int | None] = mapped_column(Integer)
    steps: Mapped[list[Any] | None] = mapped_column(JSONData)


class DrillParticipant(Base):
    """One unit's part in a drill: when it acknowledged, how far it got, when it finished."""

    __tablename__ = "drill_participants"
    __table_args__ = (UniqueConstraint("drill_id", "unit_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    drill_id: Mapped[int] = mapped_column(ForeignKey("drills.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))  # who answered
    acknowledged_at: Mapped[datetime | None]
    steps_done: Mapped[int] = mapped_column(Integer, default=0)
    completed_at: Mapped[datetime | None]
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    reminded_at: Mapped[datetime | None]
    # Seconds from the drill's start to each step's tick, in step order.
    step_seconds: Mapped[list[Any] | None] = mapped_column(JSONData)


# --- input ---


class InviteFailure(Base):
    """A refused invite code, kept a day for the back-off against guessing. Keyed by who
    tried ("telegram:<chat id>", or the web login's client address), not by a row id, so
    the count survives the purge of a stranger's chat account."""

    __tablename__ = "invite_failures"
    __table_args__ = (Index("ix_invite_failures_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(96))
    at: Mapped[datetime] = mapped_column(index=True)


# --- roster ---

class Post(Base):
    """The configurable catalogue of posts a unit has (trưởng khu phố, tổ trưởng ...), each
    mapped to the Coso role its holder gets."""

    __tablename__ = "posts"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    label_vi: Mapped[str] = mapped_column(String(200))
    label_en: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    levels: Mapped[list[Any] | None] = mapped_column(JSONData)  # unit levels; None: all
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class UnitPost(Base):
    """One post on one unit: the seat a person holds, vacant while no holding is open."""

    __tablename__ = "unit_posts"
    __table_args__ = (UniqueConstraint("unit_id", "post_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    post_key: Mapped[str] = mapped_column(ForeignKey("posts.key"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    vacant_since: Mapped[datetime | None]  # None while held

    unit: Mapped[Unit] = relationship()
    post: Mapped[Post] = relationship()


class PostHolding(Base):
    """Who held a post when (the history a ward is asked for); its role grant is the holder's
    access, ended with the holding."""

    __tablename__ = "post_holdings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_post_id: Mapped[int] = mapped_column(ForeignKey("unit_posts.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    role_assignment_id: Mapped[int] = mapped_column(ForeignKey("role_assignments.id"))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]

    unit_post: Mapped[UnitPost] = relationship()
    person: Mapped[Person] = relationship()


# --- dashboard ---


class DashboardSession(Base):
    """A dashboard login: a single-use link from /web, then, once opened, a browser session.

    Only hashes of the link's and the cookie's tokens are kept, so the table read by someone
    else logs nobody in. The person's roles are checked on every request, not copied here.
    """

    __tablename__ = "dashboard_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    link_hash: Mapped[str] = mapped_column(String(64), unique=True)
    link_expires_at: Mapped[datetime]
    session_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    redeemed_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
