"""JSON shapes of the reports API and of the city-app channel."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReporterIn(Strict):
    name: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=32)
    email: str | None = Field(None, max_length=254)
    anonymous: bool = False
    confidential: bool = Field(False, description="\"rahasia\": officers do not see who reported either")


class PhotoIn(Strict):
    filename: str = Field("photo.jpg", max_length=200)
    content_base64: str = Field(description="the image file, base64; re-encoded and stripped of metadata")


class ReportIn(Strict):
    category: str = Field(max_length=40)
    description: str = Field(max_length=4000)
    lat: float | None = None
    lon: float | None = None
    address: str | None = Field(None, max_length=300)
    occurred_at: AwareDatetime | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    public: bool = True
    reporter: ReporterIn = Field(default_factory=ReporterIn)
    photos: list[PhotoIn] = Field(default_factory=list, max_length=5)


class AppReportIn(ReportIn):
    external_id: str = Field(min_length=1, max_length=100, description="the report's id in the app")


class AppUpdateIn(Strict):
    kind: Literal["comment", "confirm", "dispute"]
    note: str | None = Field(None, max_length=4000)


class StepOut(BaseModel):
    at: datetime
    kind: str
    status_from: str | None = None
    status_to: str | None = None
    unit_from: str | None = None
    unit_to: str | None = None
    note: str | None = None
    by: str | None = None
    public: bool


class DeadlineOut(BaseModel):
    kind: str = Field(description="first_action or resolution")
    state: str = Field(description="open, met, paused or breached (past due: the red mark)")
    due_at: datetime | None
    seconds_left: int | None = Field(None, description="while open; negative never (past due is breached)")
    days: float
    mode: str = Field(description="calendar_days or working_days")
    policy_version: int


class ReportOut(BaseModel):
    ticket: str
    status: str
    category: str
    category_name: str
    description: str
    attributes: dict[str, Any]
    lat: float
    lon: float
    area_code: str
    area_name: str
    unit: str | None
    officer: str | None
    emergency: bool
    public: bool
    channel: str
    external_id: str | None
    reporter: dict[str, Any] | None = Field(None, description="absent when the reporter chose \"rahasia\"")
    support_count: int
    photo_count: int
    duplicate_of: str | None
    occurred_at: datetime
    created_at: datetime
    updated_at: datetime
    first_action_at: datetime | None
    resolved_at: datetime | None
    deadlines: list[DeadlineOut] | None = Field(None, description="one report for staff: its clocks (docs/accountability.md)")
    confirmed_at: datetime | None
    tracking_url: str
    history: list[StepOut] | None = None


class FiledOut(BaseModel):
    ticket: str
    status: str
    tracking_url: str
    tracking_key: str | None = Field(None, description="lets an anonymous reporter confirm or dispute; shown once")
    emergency_number: str | None = None
    possible_duplicates: list[str] = Field(default_factory=list)


class StatusIn(Strict):
    status: str
    note: str | None = Field(None, max_length=4000)
    public: bool = True


class HandoverIn(Strict):
    unit: str
    reason: str = Field(max_length=4000)


class AssignIn(Strict):
    officer: str = Field(description="username of one of the unit's officers")


class BulkAssignIn(Strict):
    tickets: list[str] = Field(min_length=1, max_length=200)
    officer: str


class CommentIn(Strict):
    note: str = Field(max_length=4000)
    public: bool = True


class MergeIn(Strict):
    into: str = Field(description="ticket of the report this one duplicates")


class NearbyOut(BaseModel):
    ticket: str
    status: str
    distance_m: float
    support_count: int
    created_at: datetime
    description: str
