"""JSON API for cameras: registry and who may watch what."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from siskamling.cameras import schemas
from siskamling.cameras import service as cameras
from siskamling.cameras.models import Camera, Purpose
from siskamling.core.deps import CurrentUser, SessionDep, SettingsDep, actor_of, require
from siskamling.core.errors import NotFound
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


@router.get("/cameras", response_model=list[schemas.CameraOut])
def list_cameras(db: SessionDep, principal: CurrentUser, purpose: Purpose | None = None):
    """The cameras the user may watch live or play back (``purpose`` narrows), or manage."""
    found = cameras.list_visible(db_session=db, principal=principal, purpose=purpose)
    allowed = cameras.allowed_purposes(db, principal, [c.id for c in found])
    return [camera_out(principal, c, allowed[c.id]) for c in found]


@router.post("/cameras", response_model=schemas.CameraOut, status_code=201)
def register_camera(body: schemas.CameraIn, request: Request, db: SessionDep, settings: SettingsDep,
                    principal: CameraManager):
    camera = cameras.register(db_session=db, data=body, actor=actor_of(request, principal), settings=settings,
                              manager=principal)
    return camera_out(principal, camera, cameras.allowed_purposes(db, principal, [camera.id])[camera.id])


@router.get("/cameras/{code}", response_model=schemas.CameraOut)
def get_camera(camera: CurrentCamera, db: SessionDep, principal: CurrentUser):
    return camera_out(principal, camera, cameras.allowed_purposes(db, principal, [camera.id])[camera.id])


@router.patch("/cameras/{code}", response_model=schemas.CameraOut)
def change_camera(body: schemas.CameraPatch, camera: ManagedCamera, request: Request, db: SessionDep,
                  settings: SettingsDep, principal: CameraManager):
    camera = cameras.change(db_session=db, camera=camera, patch=body, actor=actor_of(request, principal),
                            settings=settings, manager=principal)
    return camera_out(principal, camera, cameras.allowed_purposes(db, principal, [camera.id])[camera.id])
