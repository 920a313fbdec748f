from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from siskamling.core.db import Base, UTCDateTime
from siskamling.core.time import utcnow


class Event(Base):
    """The event bus, as an outbox table: a process that changes something (a camera worker, a
    web request) appends the event in the same transaction, and every web node streams new rows
    to the dashboards allowed to see them. Works the same on one node and on many."""

    __tablename__ = "event"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))  # e.g. camera.offline, camera.online
    area_path: Mapped[str] = mapped_column(String(200), index=True)
    permission: Mapped[str] = mapped_column(String(40))  # who may receive it, over area_path
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # For one person only (a deadline reminder to the officer holding a report); no foreign key,
    # like the audit log: an event outlives nothing but is never blocked by a user's removal.
    user_id: Mapped[int | None] = mapped_column(Integer)
