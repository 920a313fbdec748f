from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from siskamling.areas.models import Level
from siskamling.cameras.models import Owner, SiteType
from siskamling.core.permissions import DEFAULT_LIVE_ROLES, DEFAULT_RECORDING_ROLES

SHARE_LEVELS = [Level.kota, Level.kecamatan, Level.kelurahan, Level.rw, Level.rt]


class CameraIn(BaseModel):
    """What an operator gives to register a camera. The area comes from the position."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    code: str = Field(min_length=2, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                      description="the city's identifier for the camera, e.g. JKT-GMB-001")
    name: str = Field(min_length=1, max_length=200)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    site_type: SiteType = SiteType.lainnya
    owner: Owner = Owner.pemprov
    stream_url: str = Field(min_length=1, max_length=1000, description="rtsp://, rtsps://, http(s)://…m3u8 or file://")
    substream_url: str | None = Field(None, max_length=1000)
    username: str | None = Field(None, max_length=200, description="stream credentials: stored encrypted, never shown")
    password: str | None = Field(None, max_length=200)
    retention_days: int = Field(30, ge=1, le=3650)
    share_level: Level = Field(Level.kelurahan, description="the camera is shared with this area around it")
    share_neighbours: bool = Field(False, description="…and with the neighbouring areas of the same level")
    live_roles: list[str] = Field(default_factory=lambda: list(DEFAULT_LIVE_ROLES))
    recording_roles: list[str] = Field(default_factory=lambda: list(DEFAULT_RECORDING_ROLES))


class CameraPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str | None = Field(None, min_length=1, max_length=200)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    site_type: SiteType | None = None
    owner: Owner | None = None
    stream_url: str | None = Field(None, min_length=1, max_length=1000)
    substream_url: str | None = Field(None, max_length=1000)
    username: str | None = Field(None, max_length=200)
    password: str | None = Field(None, max_length=200)
    retention_days: int | None = Field(None, ge=1, le=3650)
    share_level: Level | None = None
    share_neighbours: bool | None = None
    live_roles: list[str] | None = None
    recording_roles: list[str] | None = None
    enabled: bool | None = None


class CameraOut(BaseModel):
    code: str
    name: str
    lat: float
    lon: float
    area_code: str
    area_name: str
    site_type: str
    owner: str
    stream_url: str | None = Field(None, description="shown to camera managers only")
    has_credentials: bool
    retention_days: int
    share_level: str
    share_neighbours: bool
    live_roles: list[str]
    recording_roles: list[str]
    enabled: bool
    can_watch_live: bool
    can_play_recordings: bool
