"""Camera pages: the list of cameras a user may watch, and registration and connection checks
for operators."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from siskamling.audit import service as audit
from siskamling.audit.events import CameraWallOpened
from siskamling.cameras import schemas
from siskamling.cameras import service as cameras
from siskamling.cameras.api import (
    PROBE_TIMEOUT_S,
    CameraCheckOut,
    CameraManager,
    CurrentCamera,
    LiveCamera,
    ManagedCamera,
    check_connection,
)
from siskamling.cameras.live import WANT_SNAPSHOT_FILE, touch
from siskamling.cameras.models import Camera, Owner, Purpose, SiteType
from siskamling.core.deps import CurrentUser, SessionDep, SettingsDep, actor_of
from siskamling.core.errors import DomainError, NotFound
from siskamling.core.i18n import gettext as _
from siskamling.core.permissions import SHAREABLE_ROLES, Permission
from siskamling.core.scope import Principal
from siskamling.core.web import render, translated

router = APIRouter(include_in_schema=False)  # HTML pages; the JSON API is in api.py
PROBE_SECONDS = round(PROBE_TIMEOUT_S)  # what the pages tell a user a connection check may take


@router.get("/cameras")
def camera_list(request: Request, db: SessionDep, principal: CurrentUser):
    rows = cameras.list_visible(db_session=db, principal=principal)
    return render(request, "cameras/list.html", {"rows": rows, "can_register": principal.can(Permission.camera_manage)})


def _without_credentials(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if not parts.password and not parts.username:
        return url
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, parts.query, parts.fragment))


def _form_page(request: Request, form: dict, error: str | None = None, status_code: int = 200):
    return render(request, "cameras/form.html", {
        "form": form, "error": error, "site_types": list(SiteType), "owners": list(Owner),
        "share_levels": schemas.SHARE_LEVELS, "roles": sorted(SHAREABLE_ROLES), "probe_seconds": PROBE_SECONDS,
    }, status_code=status_code)


@router.get("/cameras/wall")
def camera_wall(request: Request, db: SessionDep, principal: CurrentUser):
    """The camera wall: a fresh snapshot of every camera the user may watch live."""
    live = cameras.list_visible(db_session=db, principal=principal, purpose=Purpose.live)
    audit.record(db_session=db, actor=actor_of(request, principal), area_path=None,
                 event=CameraWallOpened(cameras=[c.code for c in live]))
    return render(request, "cameras/wall.html", {"cameras": live})


SNAPSHOT_FRESH_S = 2.0
SNAPSHOT_WAIT_S = 2.5


def _age(path) -> float | None:
    try:
        return max(0.0, time.time() - path.stat().st_mtime)
    except FileNotFoundError:
        return None


@router.get("/cameras/{code}/snapshot.jpg")
async def camera_snapshot(camera: LiveCamera, settings: SettingsDep, db: SessionDep):
    """The newest picture. Recorders decode snapshots only while someone looks: asking renews that
    interest, and an old picture waits (up to 2.5 s, one keyframe interval) for a fresh one."""
    path = cameras.snapshot_path(settings, camera)
    # Authorised; no transaction (on SQLite, a lock) held while waiting. In the threadpool, like
    # all database work: the event loop must never wait on the database.
    await run_in_threadpool(db.commit)
    touch(path.parent, WANT_SNAPSHOT_FILE)
    age = _age(path)
    deadline = time.monotonic() + SNAPSHOT_WAIT_S
    while (age is None or age > SNAPSHOT_FRESH_S) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        age = _age(path)
    if age is None:
        raise NotFound("No picture from this camera yet")
    return Response(path.read_bytes(), media_type="image/jpeg",
                    headers={"Cache-Control": "no-store, private", "X-Snapshot-Age": f"{age:.1f}"})


@router.get("/cameras/new")
def camera_new(request: Request, principal: CameraManager):
    return _form_page(request, schemas.CameraIn.model_construct().model_dump() | {"code": "", "name": ""})


@router.post("/cameras/new")
def camera_create(request: Request, db: SessionDep, settings: SettingsDep, principal: CameraManager,
                  code: Annotated[str, Form()] = "", name: Annotated[str, Form()] = "",
                  lat: Annotated[str, Form()] = "", lon: Annotated[str, Form()] = "",
                  site_type: Annotated[str, Form()] = "lainnya", owner: Annotated[str, Form()] = "pemprov",
                  stream_url: Annotated[str, Form()] = "", substream_url: Annotated[str, Form()] = "",
                  username: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
                  retention_days: Annotated[str, Form()] = "30", share_level: Annotated[str, Form()] = "kelurahan",
                  share_neighbours: Annotated[bool, Form()] = False,
                  live_roles: Annotated[list[str], Form()] = (), recording_roles: Annotated[list[str], Form()] = (),
                  probe: Annotated[bool, Form()] = False):
    form = dict(code=code, name=name, lat=lat, lon=lon, site_type=site_type, owner=owner, stream_url=stream_url,
                substream_url=substream_url or None, username=username or None, password=password or None,
                retention_days=retention_days, share_level=share_level, share_neighbours=share_neighbours,
                live_roles=list(live_roles), recording_roles=list(recording_roles))
    # the password is never sent back; "probe" is a choice of the form, not part of CameraIn
    shown = {**form, "password": None, "stream_url": _without_credentials(stream_url), "probe": probe}
    try:
        data = schemas.CameraIn(**form)
        camera = cameras.register(db_session=db, data=data, actor=actor_of(request, principal), settings=settings,
                                  manager=principal)
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
        return _form_page(request, shown, _("Some fields are missing or invalid: %(fields)s") % {"fields": fields}, 422)
    except DomainError as exc:
        return _form_page(request, shown, translated(exc), exc.status_code)
    if not probe:
        return RedirectResponse(f"/cameras/{camera.code}", status_code=303)
    # registered whatever the check finds: cameras are often registered before they are installed
    check = check_connection(db_session=db, settings=settings, camera=camera, actor=actor_of(request, principal))
    return _detail_page(request, db, principal, camera, check=check, registered=True, status_code=201)


@router.get("/cameras/{code}")
def camera_page(request: Request, camera: CurrentCamera, db: SessionDep, principal: CurrentUser):
    return _detail_page(request, db, principal, camera)


@router.post("/cameras/{code}/probe")
def camera_probe(request: Request, camera: ManagedCamera, db: SessionDep, settings: SettingsDep,
                 principal: CameraManager):
    """The camera page's "Check connection": the page again, with what the probe found."""
    check = check_connection(db_session=db, settings=settings, camera=camera, actor=actor_of(request, principal))
    return _detail_page(request, db, principal, camera, check=check)


def _detail_page(request: Request, db: Session, principal: Principal, camera: Camera, *,
                 check: CameraCheckOut | None = None, registered: bool = False, status_code: int = 200):
    manager = cameras.manages(principal, camera)
    allowed = cameras.allowed_purposes(db, principal, [camera.id])[camera.id]
    may_play, may_watch = Purpose.recordings in allowed, Purpose.live in allowed
    return render(request, "cameras/detail.html", {
        "camera": camera, "manager": manager, "may_watch": may_watch,
        "shared_with": sorted({(s.area_path, s.role, s.purpose) for s in camera.shares}) if manager else [],
        "history": cameras.health_history(db_session=db, camera_id=camera.id, limit=20) if manager else [],
        "holds": cameras.holds(db_session=db, camera_id=camera.id) if manager else [],
        "uptime": cameras.uptime_by_day(db_session=db, camera_id=camera.id) if manager else [],
        "recorded": cameras.recorded_spans(db_session=db, camera_id=camera.id) if may_play else None,
        "check": check, "registered": registered, "probe_seconds": PROBE_SECONDS,
        # also shown after a POST (a check, a registration): the language switch returns to the page
        "path": f"/cameras/{camera.code}",
    }, status_code=status_code)
