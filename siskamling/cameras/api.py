"""JSON API for cameras: registry, who may watch what, and checking a camera's connection."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from siskamling.audit import service as audit
from siskamling.audit.events import CameraProbed
from siskamling.audit.service import Actor
from siskamling.cameras import probe as stream_probe
from siskamling.cameras import schemas
from siskamling.cameras import service as cameras
from siskamling.cameras.models import Camera, Purpose
from siskamling.cameras.probe import ProbeResult, Status
from siskamling.core.config import Settings
from siskamling.core.deps import CurrentUser, SessionDep, SettingsDep, actor_of, require
from siskamling.core.errors import NotFound
from siskamling.core.i18n import probe_label
from siskamling.core.permissions import Permission
from siskamling.core.scope import Principal

router = APIRouter(prefix="/api/v1", tags=["cameras"])
CameraManager = Annotated[Principal, Depends(require(Permission.camera_manage))]


def current_camera(code: str, db: SessionDep, principal: CurrentUser) -> Camera:
    """The one dependency that loads a single camera: visible (shared or managed) or 404."""
    return cameras.get_visible(db_session=db, principal=principal, code=code)


CurrentCamera = Annotated[Camera, Depends(current_camera)]


def live_camera(code: str, db: SessionDep, principal: CurrentUser) -> Camera:
    """A camera the user may watch live (snapshots, live video), or 404."""
    return cameras.get_visible(db_session=db, principal=principal, code=code, purposes=[Purpose.live])


def recordings_camera(code: str, db: SessionDep, principal: CurrentUser) -> Camera:
    """A camera whose recordings the user may play (playback, export), or 404."""
    return cameras.get_visible(db_session=db, principal=principal, code=code, purposes=[Purpose.recordings])


def managed_camera(camera: CurrentCamera, principal: CurrentUser) -> Camera:
    """A camera the user manages (change, evidence holds), or 404."""
    if not cameras.manages(principal, camera):
        raise NotFound("Camera not found")
    return camera


LiveCamera = Annotated[Camera, Depends(live_camera)]
RecordingsCamera = Annotated[Camera, Depends(recordings_camera)]
ManagedCamera = Annotated[Camera, Depends(managed_camera)]


def camera_out(principal: Principal, camera: Camera, allowed: set[Purpose]) -> schemas.CameraOut:
    manager = cameras.manages(principal, camera)
    return schemas.CameraOut(
        code=camera.code, name=camera.name, lat=camera.lat, lon=camera.lon, area_code=camera.area.code,
        area_name=camera.area.name, site_type=camera.site_type, owner=camera.owner,
        stream_url=camera.stream_url if manager else None, has_credentials=camera.credentials_enc is not None,
        retention_days=camera.retention_days, share_level=camera.share_level,
        share_neighbours=camera.share_neighbours, live_roles=camera.live_roles,
        recording_roles=camera.recording_roles, enabled=camera.enabled,
        can_watch_live=Purpose.live in allowed, can_play_recordings=Purpose.recordings in allowed,
    )


# --- checking the connection -------------------------------------------------------------------

PROBE_TIMEOUT_S = 8.0


class StreamCheckOut(BaseModel):
    """What the probe found at one of the camera's stream addresses."""

    status: Status = Field(description="online, unreachable, unauthorized, not_found, unsupported_codec, no_video, "
                                       "timeout, bad_url or error")
    label: str = Field(description="the status in the user's language")
    ok: bool = Field(description="true when the stream delivers video the recorder can use")
    message: str = Field(description="the probe's explanation (English), never with the login")
    codec: str | None
    width: int | None
    height: int | None
    fps: float | None
    bitrate_kbps: float | None


class CameraCheckOut(BaseModel):
    code: str
    status: Status = Field(description="the main stream's status")
    main: StreamCheckOut
    substream: StreamCheckOut | None = Field(description="null when the camera has no sub-stream")


class RegisteredCameraOut(schemas.CameraOut):
    probe: CameraCheckOut | None = Field(None, description="the connection check: present only with ?probe=true")


def _stream_check(result: ProbeResult) -> StreamCheckOut:
    # every field given, so that the registration's exclude_unset keeps them all
    return StreamCheckOut(status=result.status, label=probe_label(result.status), ok=result.ok,
                          message=result.message, codec=result.codec, width=result.width, height=result.height,
                          fps=result.fps, bitrate_kbps=result.bitrate_kbps)


def _probe_all(urls: list[str], login: tuple[str, str] | None) -> list[ProbeResult]:
    """Main stream and sub-stream side by side: one wait for the user, not two."""
    username, password = login or (None, None)

    def one(url: str) -> ProbeResult:
        return stream_probe.probe(url, username=username or None, password=password or None,
                                  timeout_s=PROBE_TIMEOUT_S)

    with ThreadPoolExecutor(max_workers=len(urls), thread_name_prefix="camera-check") as pool:
        return list(pool.map(one, urls))


def check_connection(*, db_session: Session, settings: Settings, camera: Camera, actor: Actor) -> CameraCheckOut:
    """Probe the camera's streams with its stored login, and audit the outcome.

    Commits the request's transaction first: a probe waits up to PROBE_TIMEOUT_S for the camera,
    and an open transaction on SQLite holds the database's write lock (BEGIN IMMEDIATE) all that
    time. What the request wrote before (a registration) is committed then; the audit event goes
    into a transaction of its own, which the session dependency commits."""
    code, area_path = camera.code, camera.area_path
    urls = [camera.stream_url, *([camera.substream_url] if camera.substream_url else [])]
    try:
        login, unreadable = cameras.open_credentials(settings, camera), False
    except ValueError:  # sealed with another secret key: say so rather than probe without the login
        login, unreadable = None, True
    db_session.commit()
    if unreadable:
        message = "the stored login cannot be decrypted (was SISKAMLING_SECRET_KEY changed?)"
        results = [ProbeResult(False, Status.error, message) for _ in urls]
    else:
        results = _probe_all(urls, login)
    main, sub = results[0], (results[1] if len(results) > 1 else None)
    audit.record(db_session=db_session, actor=actor, area_path=area_path, event=CameraProbed(
        code=code, status=main.status.value, substream_status=sub.status.value if sub else None))
    return CameraCheckOut(code=code, status=main.status, main=_stream_check(main),
                          substream=_stream_check(sub) if sub else None)


# --- routes --------------------------------------------------------------------------------------


@router.get("/cameras", response_model=list[schemas.CameraOut])
def list_cameras(db: SessionDep, principal: CurrentUser, purpose: Purpose | None = None):
    """The cameras the user may watch live or play back (``purpose`` narrows), or manage."""
    found = cameras.list_visible(db_session=db, principal=principal, purpose=purpose)
    allowed = cameras.allowed_purposes(db, principal, [c.id for c in found])
    return [camera_out(principal, c, allowed[c.id]) for c in found]


# exclude_unset: ``probe`` appears only when asked for (camera_out and _stream_check set every field)
@router.post("/cameras", response_model=RegisteredCameraOut, response_model_exclude_unset=True, status_code=201)
def register_camera(body: schemas.CameraIn, request: Request, db: SessionDep, settings: SettingsDep,
                    principal: CameraManager,
                    probe: Annotated[bool, Query(description="also check the connection now (up to ~8 s); "
                                                             "the camera is registered whatever the outcome")] = False):
    actor = actor_of(request, principal)
    camera = cameras.register(db_session=db, data=body, actor=actor, settings=settings, manager=principal)
    out = camera_out(principal, camera, cameras.allowed_purposes(db, principal, [camera.id])[camera.id])
    if not probe:
        return out
    check = check_connection(db_session=db, settings=settings, camera=camera, actor=actor)
    return RegisteredCameraOut(**out.model_dump(), probe=check)


@router.get("/cameras/{code}", response_model=schemas.CameraOut)
def get_camera(camera: CurrentCamera, db: SessionDep, principal: CurrentUser):
    return camera_out(principal, camera, cameras.allowed_purposes(db, principal, [camera.id])[camera.id])


@router.patch("/cameras/{code}", response_model=schemas.CameraOut)
def change_camera(body: schemas.CameraPatch, camera: ManagedCamera, request: Request, db: SessionDep,
                  settings: SettingsDep, principal: CameraManager):
    camera = cameras.change(db_session=db, camera=camera, patch=body, actor=actor_of(request, principal),
                            settings=settings, manager=principal)
    return camera_out(principal, camera, cameras.allowed_purposes(db, principal, [camera.id])[camera.id])


@router.post("/cameras/{code}/probe", response_model=CameraCheckOut)
def probe_camera(camera: ManagedCamera, request: Request, db: SessionDep, settings: SettingsDep,
                 principal: CameraManager):
    """Check the camera's connection now (a plain ``def``: the wait runs in the threadpool)."""
    return check_connection(db_session=db, settings=settings, camera=camera, actor=actor_of(request, principal))
