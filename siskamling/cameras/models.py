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


class Health(StrEnum):
    unknown = "unknown"  # not yet opened by a worker
    online = "online"
    degraded = "degraded"  # frames arrive, but too slowly or with errors
    offline = "offline"
    disabled = "disabled"


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
    # Health, written by the camera's worker.
    health: Mapped[str] = mapped_column(String(12), default=Health.unknown, server_default=Health.unknown.value)
    health_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fps: Mapped[float | None] = mapped_column(Float)
    bitrate_kbps: Mapped[float | None] = mapped_column(Float)
    last_frame_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    codec: Mapped[str | None] = mapped_column(String(20))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    # Which worker holds the camera, until when (claimed with a conditional UPDATE).
    worker_id: Mapped[str | None] = mapped_column(String(120), index=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
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


class RecordingSegment(Base):
    """One finished recording file (fragmented MP4, playable on its own), stream-copied."""

    __tablename__ = "recording_segment"

    id: Mapped[int] = mapped_column(primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("camera.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime)
    path: Mapped[str] = mapped_column(String(500))  # relative to the media folder
    bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_recording_segment_camera_time", "camera_id", "started_at"),)


class CameraHealthEvent(Base):
    """A camera's health changed (offline, back online…): its history, and what operators are told."""

    __tablename__ = "camera_health_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("camera.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    health: Mapped[str] = mapped_column(String(12))
    message: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (Index("ix_camera_health_event_camera_at", "camera_id", "at"),)


class EvidenceExport(Base):
    """A time range of one camera exported as one MP4 with a signed manifest."""

    __tablename__ = "evidence_export"

    id: Mapped[int] = mapped_column(primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("camera.id", ondelete="RESTRICT"), index=True)
    requested_by_id: Mapped[int | None] = mapped_column(Integer)
    requested_by: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(String(1000))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    folder: Mapped[str] = mapped_column(String(500))  # relative to the media folder
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EvidenceHold(Base):
    """Footage of one camera in a time range that retention must not delete until released."""

    __tablename__ = "evidence_hold"

    id: Mapped[int] = mapped_column(primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("camera.id", ondelete="RESTRICT"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(1000))
    placed_by: Mapped[str] = mapped_column(String(120))
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    released_by: Mapped[str | None] = mapped_column(String(120))


class CameraEvent(Base):
    """Something the camera's analytics saw (motion, for now) over a span of time: marked on the
    recordings timeline so footage can be found without watching all of it."""

    __tablename__ = "camera_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("camera.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))  # "motion"
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None while it goes on
    score: Mapped[float] = mapped_column(Float, default=0.0)  # peak share of the picture that changed

    __table_args__ = (Index("ix_camera_event_camera_started", "camera_id", "started_at"),)
