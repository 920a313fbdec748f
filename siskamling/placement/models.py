"""Camera requests from the neighbourhood, the incidents the planner plans against, and saved
placement plans."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from siskamling.core.db import Base, UTCDateTime
from siskamling.core.time import utcnow
from siskamling.reports.models import PathString


class RequestStatus(StrEnum):
    diajukan = "diajukan"  # filed
    ditinjau = "ditinjau"  # under review (a survey on site)
    disetujui = "disetujui"  # approved, waiting for installation
    ditolak = "ditolak"  # refused, with a reason
    ditunda = "ditunda"  # deferred (budget, timing), with a reason
    terpasang = "terpasang"  # installed: linked to the new camera's record


OPEN_REQUEST_STATUSES = frozenset({RequestStatus.diajukan, RequestStatus.ditinjau, RequestStatus.ditunda,
                                   RequestStatus.disetujui})

# Why a neighbourhood asks (the reason shown to reviewers and the public).
REASONS = ("rawan_kriminalitas", "taman_24_jam", "rawan_banjir", "sekolah", "pasar", "gang_gelap", "lainnya")


class CameraRequest(Base):
    __tablename__ = "camera_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    area_id: Mapped[int] = mapped_column(ForeignKey("area.id", ondelete="RESTRICT"))
    area_path: Mapped[str] = mapped_column(PathString)
    reason: Mapped[str] = mapped_column(String(30))
    site_type: Mapped[str] = mapped_column(String(30))  # the camera site type it would be (its unit cost)
    description: Mapped[str] = mapped_column(Text)
    hours: Mapped[list[list[int]]] = mapped_column(JSON, default=list)  # [[from_hour, to_hour], …] in WIB
    status: Mapped[str] = mapped_column(String(12), default=RequestStatus.diajukan)
    status_reason: Mapped[str | None] = mapped_column(Text)  # the latest decision's reason, for the requester
    camera_id: Mapped[int | None] = mapped_column(ForeignKey("camera.id", ondelete="SET NULL"))
    requester_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    requester_role: Mapped[str] = mapped_column(String(20))
    support_count: Mapped[int] = mapped_column(Integer, default=0)
    photo_count: Mapped[int] = mapped_column(Integer, default=0)
    # The latest assessment (``assess.score``): the total and how it was formed.
    score: Mapped[float | None] = mapped_column(Float)
    score_parts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    assessed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    area = relationship("Area")
    camera = relationship("Camera")
    requester = relationship("User")

    __table_args__ = (
        Index("ix_camera_request_area", "area_path", "created_at"),
        Index("ix_camera_request_status", "status", "area_path"),
        Index("ix_camera_request_lat_lon", "lat", "lon"),
        Index("ix_camera_request_requester", "requester_id"),
    )


class RequestStep(Base):
    """The request's history: filed, each status change with its reason, each support."""

    __tablename__ = "camera_request_step"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("camera_request.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_from: Mapped[str | None] = mapped_column(String(12))
    status_to: Mapped[str | None] = mapped_column(String(12))
    note: Mapped[str | None] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(String(120))


class RequestSupport(Base):
    """A resident of the request's RT/RW backing it: once each."""

    __tablename__ = "camera_request_support"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("camera_request.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("request_id", "user_id"),)


class RequestPhoto(Base):
    """A photo of the spot, re-encoded with its metadata (EXIF, GPS) removed."""

    __tablename__ = "camera_request_photo"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("camera_request.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(300))  # relative to the media folder
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("request_id", "number"),)


class Incident(Base):
    """A past incident from another agency's log (fire brigade, BPBD…): demand the planner and
    the assessment count alongside citizen reports. Logs that give only the RT/RW are placed at
    the RW's centre (or the kelurahan's); ``placed_by`` says which."""

    __tablename__ = "incident"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(40))
    source_ref: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    area_path: Mapped[str] = mapped_column(PathString)
    placed_by: Mapped[str] = mapped_column(String(12))  # point | rw | kelurahan
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("source", "source_ref"),
        Index("ix_incident_occurred", "occurred_at"),
        Index("ix_incident_lat_lon", "lat", "lon"),
    )


class Plan(Base):
    """A saved run of the planner: its inputs (so it can be run again and compared), its result
    and the figures that defend it (value, proven bound, gap)."""

    __tablename__ = "placement_plan"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    method: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(12))
    value: Mapped[float] = mapped_column(Float)  # demand weight the plan covers
    bound: Mapped[float] = mapped_column(Float)  # proven upper bound on any plan's value
    greedy_value: Mapped[float] = mapped_column(Float)
    total_weight: Mapped[float] = mapped_column(Float)  # all demand weight in the plan's area and period
    already_covered: Mapped[float] = mapped_column(Float, default=0.0)  # by existing cameras
    # What the demand was made of: {"points": {"reports": n, "incidents": n, "flood_rw": n}, "weight": {…}}
    demand: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    demand_points: Mapped[int] = mapped_column(Integer)
    candidates: Mapped[int] = mapped_column(Integer)
    cost: Mapped[float] = mapped_column(Float)
    seconds: Mapped[float] = mapped_column(Float)
    rerun_of_id: Mapped[int | None] = mapped_column(ForeignKey("placement_plan.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120))

    sites: Mapped[list[PlanSite]] = relationship(order_by="PlanSite.rank", cascade="all, delete-orphan")

    @property
    def gap(self) -> float:
        return max(0.0, (self.bound - self.value) / self.bound) if self.bound > 0 else 0.0


class PlanSite(Base):
    """One chosen site, in rank order (the weight it adds to the sites ranked before it)."""

    __tablename__ = "placement_plan_site"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("placement_plan.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(12))  # request | generated
    request_id: Mapped[int | None] = mapped_column(ForeignKey("camera_request.id", ondelete="SET NULL"))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    area_path: Mapped[str | None] = mapped_column(PathString)
    site_type: Mapped[str] = mapped_column(String(30))
    cost: Mapped[float] = mapped_column(Float)
    gain: Mapped[float] = mapped_column(Float)

    request: Mapped[CameraRequest | None] = relationship()
