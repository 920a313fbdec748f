from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from siskamling.core.db import Base, UTCDateTime
from siskamling.core.time import utcnow


class SiteType(StrEnum):
    taman_24_jam = "taman_24_jam"
    rawan_bencana = "rawan_bencana"  # disaster-prone, flood-prone included
    jalan = "jalan"
    pasar = "pasar"
    sekolah = "sekolah"
    fasilitas_umum = "fasilitas_umum"
    lainnya = "lainnya"


class Owner(StrEnum):
    pemprov = "pemprov"
    kelurahan = "kelurahan"
    warga = "warga"


class Purpose(StrEnum):
    live = "live"
    recordings = "recordings"


class Camera(Base):
    """A city camera, placed in the area tree by its position, shared by rule with the people who
    watch the areas around it."""

    __tablename__ = "camera"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    area_id: Mapped[int] = mapped_column(ForeignKey("area.id", ondelete="RESTRICT"))
    area_path: Mapped[str] = mapped_column(String(200), index=True)
    site_type: Mapped[str] = mapped_column(String(20))
    owner: Mapped[str] = mapped_column(String(20))
    stream_url: Mapped[str] = mapped_column(String(1000))  # never holds credentials
    substream_url: Mapped[str | None] = mapped_column(String(1000))
    credentials_enc: Mapped[str | None] = mapped_column(String(1000))  # Fernet token of user:password
    retention_days: Mapped[int] = mapped_column(Integer, default=30)
    share_level: Mapped[str] = mapped_column(String(16))
    share_neighbours: Mapped[bool] = mapped_column(Boolean, default=False)
    live_roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    recording_roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    area = relationship("Area")
    shares: Mapped[list[CameraShare]] = relationship(back_populates="camera", cascade="all, delete-orphan")


class CameraShare(Base):
    """One (area, role, purpose) a camera is shared with, expanded from the camera's sharing rule
    so that "may this user watch it" is an indexed query, not a computation per camera."""

    __tablename__ = "camera_share"

    id: Mapped[int] = mapped_column(primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("camera.id", ondelete="CASCADE"), index=True)
    area_path: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[str] = mapped_column(String(12))

    camera: Mapped[Camera] = relationship(back_populates="shares")

    __table_args__ = (Index("ix_camera_share_lookup", "purpose", "role", "area_path"),)
