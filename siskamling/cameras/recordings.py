"""Playback and evidence export pages. Every media response is authorised per request with the
recordings sharing rule, like the JSON API, and every view or download is audited."""

from __future__ import annotations

import json
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, RedirectResponse
from starlette.background import BackgroundTask

from siskamling.cameras import service as cameras
from siskamling.cameras.api import ManagedCamera, RecordingsCamera
from siskamling.core.deps import CurrentUser, SessionDep, SettingsDep, actor_of
from siskamling.core.errors import DomainError, Invalid, NotFound
from siskamling.core.time import WIB
from siskamling.core.web import render, translated

router = APIRouter(include_in_schema=False)


def parse_time(value: str | None, name: str) -> datetime:
    """ISO 8601; a time without an offset (a datetime-local field) is Jakarta time."""
    if not value:
        raise Invalid("%(field)s is required", field=name)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid("%(field)s is not a valid date and time", field=name) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=WIB)


def _local(value: datetime) -> str:
    return value.astimezone(WIB).strftime("%Y-%m-%dT%H:%M:%S")


@router.get("/cameras/{code}/play")
def play_page(request: Request, camera: RecordingsCamera, db: SessionDep, start: str | None = None,
              end: str | None = None):
    spans = cameras.recorded_spans(db_session=db, camera_id=camera.id)
    error = None
    try:
        if start and end:
            begin, finish = parse_time(start, "start"), parse_time(end, "end")
        elif spans:
            finish = spans[0][1]
            begin = max(spans[0][0], finish - timedelta(minutes=1))
        else:
            begin = finish = None
    except DomainError as exc:
        error, begin, finish = translated(exc), None, None
    query = f"start={begin.isoformat()}&end={finish.isoformat()}" if begin and finish and finish > begin else None
    return render(request, "cameras/play.html", {
        "camera": camera, "spans": spans, "error": error, "query": query,
        "start": _local(begin) if begin else "", "end": _local(finish) if finish else "",
    }, status_code=422 if error else 200)


@router.get("/cameras/{code}/playback.mp4")
def playback(request: Request, camera: RecordingsCamera, db: SessionDep, settings: SettingsDep,
             principal: CurrentUser, start: str, end: str):
    begin, finish = parse_time(start, "start"), parse_time(end, "end")
    workdir = settings.media_dir / "tmp"
    workdir.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkstemp(suffix=".mp4", dir=workdir)[1])
    try:
        cameras.render_range(db_session=db, settings=settings, camera=camera, start=begin, end=finish, out=out,
                             actor=actor_of(request, principal))
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return FileResponse(out, media_type="video/mp4", headers={"Cache-Control": "no-store, private"},
                        background=BackgroundTask(out.unlink, missing_ok=True))


@router.post("/cameras/{code}/exports")
def create_export(request: Request, camera: RecordingsCamera, db: SessionDep, settings: SettingsDep,
                  principal: CurrentUser, start: Annotated[str, Form()] = "", end: Annotated[str, Form()] = "",
                  reason: Annotated[str, Form()] = ""):
    try:
        export = cameras.export_evidence(db_session=db, settings=settings, camera=camera,
                                         start=parse_time(start, "start"), end=parse_time(end, "end"),
                                         reason=reason, actor=actor_of(request, principal))
    except DomainError as exc:
        return render(request, "cameras/play.html", {
            "camera": camera, "spans": cameras.recorded_spans(db_session=db, camera_id=camera.id),
            "error": translated(exc), "query": None, "start": start, "end": end, "reason": reason,
        }, status_code=exc.status_code)
    return RedirectResponse(f"/exports/{export.id}", status_code=303)


@router.get("/exports/{export_id}")
def export_page(request: Request, export_id: int, db: SessionDep, settings: SettingsDep, principal: CurrentUser):
    export, camera = cameras.get_export(db_session=db, principal=principal, export_id=export_id)
    manifest = json.loads((settings.media_dir / export.folder / "manifest.json").read_text())
    return render(request, "cameras/export.html", {"export": export, "camera": camera, "manifest": manifest})


@router.get("/exports/{export_id}/{name}")
def export_file(request: Request, export_id: int, name: str, db: SessionDep, settings: SettingsDep,
                principal: CurrentUser):
    export, camera = cameras.get_export(db_session=db, principal=principal, export_id=export_id)
    folder = (settings.media_dir / export.folder).resolve()
    path = (folder / name).resolve()
    if path.parent != folder or not path.is_file():
        raise NotFound("File not found")
    cameras.record_download(db_session=db, export=export, file=name, actor=actor_of(request, principal),
                            area_path=camera.area_path)
    return FileResponse(path, filename=name, headers={"Cache-Control": "no-store, private"})




@router.post("/cameras/{code}/holds")
def place_hold(request: Request, camera: ManagedCamera, db: SessionDep, principal: CurrentUser,
               start: Annotated[str, Form()] = "", end: Annotated[str, Form()] = "",
               reason: Annotated[str, Form()] = ""):
    """Operators hold footage as evidence: retention and disk cleanup leave it alone."""
    cameras.place_hold(db_session=db, camera=camera, start=parse_time(start, "start"), end=parse_time(end, "end"),
                       reason=reason, actor=actor_of(request, principal))
    return RedirectResponse(f"/cameras/{camera.code}", status_code=303)


@router.post("/cameras/{code}/holds/{hold_id}/release")
def release_hold(request: Request, hold_id: int, camera: ManagedCamera, db: SessionDep, principal: CurrentUser):
    cameras.release_hold(db_session=db, camera=camera, hold_id=hold_id, actor=actor_of(request, principal))
    return RedirectResponse(f"/cameras/{camera.code}", status_code=303)
