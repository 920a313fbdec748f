"""Citizen reports: the catalogue (categories, units, routing), the reports and their history,
the channels that push reports in (Open311 clients, the city app) and the webhooks they get back."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from siskamling.core.db import Base, UTCDateTime
from siskamling.core.time import utcnow

# Area paths compared as bytes on PostgreSQL too, so "inside area X" is an index range scan
# (``path >= 'X/' AND path < 'X0'``) rather than a LIKE the planner cannot use.
PathString = String(200).with_variant(String(200, collation="C"), "postgresql")


class Status(StrEnum):
    """The workflow as JAKI shows it to citizens."""

    menunggu = "menunggu"  # received, waiting for verification
    koordinasi = "koordinasi"  # verified, with the responsible unit
    disposisi = "disposisi"  # handed to an officer
    proses = "proses"  # the officer is working on it
    selesai = "selesai"  # done (the reporter may confirm or dispute)
    ditolak = "ditolak"  # rejected, with a reason
    duplikat = "duplikat"  # merged into another report

    @property
    def is_open(self) -> bool:
        return self in OPEN_STATUSES


OPEN_STATUSES = frozenset({Status.menunggu, Status.koordinasi, Status.disposisi, Status.proses})
CLOSED_STATUSES = frozenset(Status) - OPEN_STATUSES
TICKET_RE = re.compile(r"^[A-Z0-9-]{4,20}$")  # ours are LP + yymmdd + 5; imported ones keep their own


class Channel(StrEnum):
    web = "web"
    open311 = "open311"
    app = "app"  # the city app (JAKI-style channel)
    import_ = "import"


class Category(Base):
    """What a citizen can report (Open311: a service), with the extra questions it asks."""

    __tablename__ = "report_category"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_id: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120))
    group: Mapped[str] = mapped_column(String(60), default="umum")
    description: Mapped[str] = mapped_column(String(500), default="")
    keywords: Mapped[str] = mapped_column(String(300), default="")
    emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    # [{code, datatype, required, description, order, variable, values: [{key, name}]}]
    attributes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    default_unit_id: Mapped[int | None] = mapped_column(ForeignKey("report_unit.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    default_unit: Mapped[Unit | None] = relationship()

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_id


class Unit(Base):
    """An office that acts on reports: a kelurahan office, Satpol PP, Dinas SDA, Bina Marga…"""

    __tablename__ = "report_unit"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40), default="kelurahan")
    area_path: Mapped[str | None] = mapped_column(PathString)  # its jurisdiction, None = the whole city
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UnitMember(Base):
    """An officer of a unit; the head may assign the unit's reports."""

    __tablename__ = "report_unit_member"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("report_unit.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    is_head: Mapped[bool] = mapped_column(Boolean, default=False)

    unit: Mapped[Unit] = relationship()
    user = relationship("User")

    __table_args__ = (UniqueConstraint("unit_id", "user_id"),)


class RoutingRule(Base):
    """Reports of ``category`` (None: any) inside ``area_path`` go to ``unit``. A rule naming the
    category wins over one for any category, then the deepest area wins (``catalogue.route``)."""

    __tablename__ = "report_routing_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("report_category.id", ondelete="CASCADE"))
    area_path: Mapped[str] = mapped_column(PathString)
    unit_id: Mapped[int] = mapped_column(ForeignKey("report_unit.id", ondelete="CASCADE"))

    unit: Mapped[Unit] = relationship()
    category: Mapped[Category | None] = relationship()

    __table_args__ = (UniqueConstraint("category_id", "area_path"),)


class Report(Base):
    __tablename__ = "report"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket: Mapped[str] = mapped_column(String(20), unique=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("report_category.id", ondelete="RESTRICT"))
    description: Mapped[str] = mapped_column(Text)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(300))
    area_id: Mapped[int] = mapped_column(ForeignKey("area.id", ondelete="RESTRICT"))
    area_path: Mapped[str] = mapped_column(PathString)
    status: Mapped[str] = mapped_column(String(12), default=Status.menunggu)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("report_unit.id", ondelete="SET NULL"))
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("report.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(10), default=Channel.web)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("intake_client.id", ondelete="SET NULL"))
    external_id: Mapped[str | None] = mapped_column(String(100))
    # The reporter. Phone and email are never shown publicly; "rahasia" hides who it is from
    # officers and operators too (only the reporter sees it).
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    reporter_name: Mapped[str | None] = mapped_column(String(200))
    reporter_phone: Mapped[str | None] = mapped_column(String(32))
    reporter_email: Mapped[str | None] = mapped_column(String(254))
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    media_url: Mapped[str | None] = mapped_column(String(500))  # Open311 clients' own photo link (staff only)
    track_key_hash: Mapped[str | None] = mapped_column(String(64))  # the anonymous reporter's secret link
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when it happened (footage is held around it)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_action_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_action_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    support_count: Mapped[int] = mapped_column(Integer, default=0)
    photo_count: Mapped[int] = mapped_column(Integer, default=0)

    # selectin, not joined: a queue page sorts report rows only, then loads their few categories.
    category: Mapped[Category] = relationship(lazy="selectin")
    unit: Mapped[Unit | None] = relationship()
    area = relationship("Area")
    officer = relationship("User", foreign_keys=[officer_id])
    reporter = relationship("User", foreign_keys=[reporter_id])
    duplicate_of: Mapped[Report | None] = relationship(remote_side="Report.id")

    __table_args__ = (
        Index("ix_report_area_created", "area_path", "created_at"),
        Index("ix_report_status_area", "status", "area_path", "created_at"),
        Index("ix_report_unit_status", "unit_id", "status", "created_at"),
        Index("ix_report_officer_status", "officer_id", "status"),
        Index("ix_report_category_created", "category_id", "created_at"),
        Index("ix_report_category_status", "category_id", "status", "created_at"),
        Index("ix_report_created", "created_at"),
        Index("ix_report_updated", "updated_at"),
        Index("ix_report_lat_lon", "lat", "lon"),
        Index("ix_report_reporter", "reporter_id"),
        UniqueConstraint("client_id", "external_id"),
    )

    @property
    def status_enum(self) -> Status:
        return Status(self.status)


class Step(Base):
    """One step of a report's history: a status change, a hop between units, an assignment, a
    comment, a support, a merge, the reporter's confirmation or dispute."""

    __tablename__ = "report_step"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))
    status_from: Mapped[str | None] = mapped_column(String(12))
    status_to: Mapped[str | None] = mapped_column(String(12))
    unit_from_id: Mapped[int | None] = mapped_column(ForeignKey("report_unit.id", ondelete="SET NULL"))
    unit_to_id: Mapped[int | None] = mapped_column(ForeignKey("report_unit.id", ondelete="SET NULL"))
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(String(120))
    by_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)
    public: Mapped[bool] = mapped_column(Boolean, default=True)

    unit_from: Mapped[Unit | None] = relationship(foreign_keys=[unit_from_id])
    unit_to: Mapped[Unit | None] = relationship(foreign_keys=[unit_to_id])
    officer = relationship("User", foreign_keys=[officer_id])

    __table_args__ = (Index("ix_report_step_report_at", "report_id", "at"), Index("ix_report_step_at", "at"))


class Photo(Base):
    """A photo re-encoded as JPEG with every piece of metadata (EXIF, GPS) removed."""

    __tablename__ = "report_photo"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"), index=True)
    step_id: Mapped[int | None] = mapped_column(ForeignKey("report_step.id", ondelete="SET NULL"))
    number: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(300))  # relative to the media folder
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("report_id", "number"),)


class Support(Base):
    """A resident who says "me too" instead of filing a duplicate."""

    __tablename__ = "report_support"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"))
    supporter: Mapped[str] = mapped_column(String(80))  # "user:<id>" or a hash of the anonymous browser
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("report_id", "supporter"),)


class View(Base):
    """Who on the staff opened a report, and when first and last."""

    __tablename__ = "report_view"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    first_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    count: Mapped[int] = mapped_column(Integer, default=1)

    user = relationship("User")

    __table_args__ = (UniqueConstraint("report_id", "user_id"),)


class Footage(Base):
    """A camera near a report whose recordings around the report's time are held as evidence."""

    __tablename__ = "report_footage"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"), index=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("camera.id", ondelete="CASCADE"))
    hold_id: Mapped[int] = mapped_column(ForeignKey("evidence_hold.id", ondelete="CASCADE"))
    distance_m: Mapped[float] = mapped_column(Float)

    camera = relationship("Camera")
    hold = relationship("EvidenceHold")


class IntakeClient(Base):
    """An application allowed to push reports in: an Open311 client (its api_key) or the city app
    (JAKI-style channel). Only the key's SHA-256 is stored; the webhook secret is encrypted."""

    __tablename__ = "intake_client"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    webhook_secret_enc: Mapped[str | None] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdempotencyRecord(Base):
    """The answer given to one (client, Idempotency-Key): a retry gets the same answer and creates
    nothing; the same key with a different body is refused."""

    __tablename__ = "idempotency_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("intake_client.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    request_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("client_id", "key"),)


class WebhookDelivery(Base):
    """One status change to tell one client: an outbox row, written with the change, delivered
    and retried with backoff by the scheduler; its attempts are the delivery log."""

    __tablename__ = "webhook_delivery"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("intake_client.id", ondelete="CASCADE"))
    report_id: Mapped[int] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(10), default="pending")  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    client: Mapped[IntakeClient] = relationship()

    __table_args__ = (Index("ix_webhook_delivery_due", "state", "next_attempt_at"),)
