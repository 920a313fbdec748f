from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from siskamling.core.db import Base, UTCDateTime
from siskamling.core.time import utcnow


class Level(StrEnum):
    provinsi = "provinsi"
    kota = "kota"  # kota administrasi or kabupaten administrasi
    kecamatan = "kecamatan"
    kelurahan = "kelurahan"
    rw = "rw"
    rt = "rt"

    @property
    def depth(self) -> int:
        return LEVELS.index(self)

    @property
    def parent(self) -> Level | None:
        return LEVELS[self.depth - 1] if self.depth else None


LEVELS = list(Level)


class Area(Base):
    """One node of the administrative tree, keyed by its Kemendagri code.

    ``path`` lists the segments from the root (``31/31.71/31.71.01/31.71.01.1001/005/003``) so
    that "inside area X" is a prefix test in SQL.
    """

    __tablename__ = "area"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    level: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("area.id", ondelete="RESTRICT"), index=True)
    path: Mapped[str] = mapped_column(String(200), unique=True)
    geometry: Mapped[str | None] = mapped_column(Text)  # GeoJSON geometry, WGS84
    min_lon: Mapped[float | None] = mapped_column(Float)
    min_lat: Mapped[float | None] = mapped_column(Float)
    max_lon: Mapped[float | None] = mapped_column(Float)
    max_lat: Mapped[float | None] = mapped_column(Float)
    centroid_lon: Mapped[float | None] = mapped_column(Float)
    centroid_lat: Mapped[float | None] = mapped_column(Float)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    parent: Mapped[Area | None] = relationship(remote_side="Area.id")

    __table_args__ = (Index("ix_area_bbox", "min_lon", "max_lon", "min_lat", "max_lat"),)


class AreaRevision(Base):
    """A single row whose token changes whenever areas change, so each process's in-memory
    lookup index knows when to rebuild. A random token (not a counter) stays correct when a
    transaction that changed areas is rolled back."""

    __tablename__ = "area_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(32))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
