"""Deadlines on citizen reports, the policies that set them, and the breach ledger."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from siskamling.core.db import Base, UTCDateTime
from siskamling.core.time import utcnow


class Policy(Base):
    """One version of the deadline policy. Rows are never changed: saving a policy adds the next
    version, and every deadline keeps the version it was set (and is judged) by."""

    __tablename__ = "sla_policy"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    # [{"category": code | None, "group": name | None, "first_action": {"days": 6, "mode": ...} | None,
    #   "resolution": {...} | None}]; the first rule that matches a report's category wins; the
    # last rule matches everything.
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    pause_statuses: Mapped[list[str]] = mapped_column(JSON, default=list)
    handover: Mapped[str] = mapped_column(String(10), default="continue")  # continue | restart
    reminder_days: Mapped[list[float]] = mapped_column(JSON, default=list)  # counted days after the start
    # The TKD deduction rule: {"mode": "per_breach" | "flat", "percent": 2.5, "cap": 10,
    # "kinds": ["first_action"]}; versioned with the deadlines it judges.
    tkd: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120))


class DayOff(Base):
    """A day the city declares off (cuti bersama, a local holiday): not a working day."""

    __tablename__ = "sla_day_off"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120))


class Deadline(Base):
    """One clock on one report: the first action, or the resolution."""

    __tablename__ = "sla_deadline"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # first_action | resolution
    policy_version: Mapped[int] = mapped_column(Integer)
    days: Mapped[float] = mapped_column()
    mode: Mapped[str] = mapped_column(String(16))  # calendar_days | working_days
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)  # without pauses; the sweep extends it
    state: Mapped[str] = mapped_column(String(10), default="open")  # open | met | breached
    met_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    # When the sweep next has something to do here (a reminder or the due time): its index makes a
    # sweep read only the deadlines that need it, however many are open.
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    report = relationship("Report")

    __table_args__ = (
        UniqueConstraint("report_id", "kind"),
        Index("ix_sla_deadline_state_next", "state", "next_check_at"),
    )


class Breach(Base):
    """The ledger: a deadline that passed without the action it asked for. Never changed or
    deleted (database triggers refuse it); an accepted appeal voids it for deductions but it
    stays visible."""

    __tablename__ = "sla_breach"

    id: Mapped[int] = mapped_column(primary_key=True)
    deadline_id: Mapped[int] = mapped_column(ForeignKey("sla_deadline.id", ondelete="RESTRICT"), unique=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("report.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(16))
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("report_unit.id", ondelete="RESTRICT"))
    policy_version: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    breached_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    report = relationship("Report")
    officer = relationship("User")
    unit = relationship("Unit")

    __table_args__ = (Index("ix_sla_breach_breached_at", "breached_at"), Index("ix_sla_breach_officer", "officer_id"))


class Appeal(Base):
    """An officer's appeal against a ledger entry; the unit's head or an admin decides. An
    accepted appeal voids the entry for deductions; the entry stays in the ledger."""

    __tablename__ = "sla_appeal"

    id: Mapped[int] = mapped_column(primary_key=True)
    breach_id: Mapped[int] = mapped_column(ForeignKey("sla_breach.id", ondelete="RESTRICT"), unique=True)
    by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    grounds: Mapped[str] = mapped_column(String(30))  # wrongly_routed | force_majeure | reporter_unreachable | other
    reason: Mapped[str] = mapped_column(Text)
    attachment_path: Mapped[str | None] = mapped_column(String(300))
    attachment_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    state: Mapped[str] = mapped_column(String(10), default="pending")  # pending | accepted | rejected
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str | None] = mapped_column(Text)

    breach = relationship("Breach", backref="appeal_rows")
    by = relationship("User", foreign_keys=[by_id])
    decided_by = relationship("User", foreign_keys=[decided_by_id])


class Notification(Base):
    """A message to one person about a deadline (a reminder, an escalation): an outbox row,
    written in the sweep's transaction and sent by the scheduler with retries, so it goes out once
    even if the sending node dies."""

    __tablename__ = "sla_notification"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(10), default="email")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))  # reminder | escalation
    report_id: Mapped[int | None] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(10), default="pending")  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_sla_notification_due", "state", "next_attempt_at"),)
