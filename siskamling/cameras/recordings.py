"""Playback and evidence export pages. Every media response is authorised per request with the
recordings sharing rule, like the JSON API, and every view or download is audited."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from siskamling.cameras import service as cameras
from siskamling.cameras import timeline
from siskamling.cameras.api import ManagedCamera, RecordingsCamera
from siskamling.cameras.models import Camera
from siskamling.core.deps import CurrentUser, SessionDep, SettingsDep, actor_of
from siskamling.core.errors import DomainError, Invalid, NotFound
from siskamling.core.time import WIB, utcnow
from siskamling.core.web import render, translated

router = APIRouter(include_in_schema=False)

TIMELINE_DEFAULT = timedelta(hours=24)
TIMELINE_MAX = timedelta(days=31)
TIMELINE_ZOOM_HOURS = (1, 6, 24, 7 * 24)
FIRST_PLAYED = timedelta(minutes=1)


def parse_time(value: str | None, name: str) -> datetime:
    """ISO 8601; a time without an offset (a datetime-local field) is Jakarta time."""
    if not value:
        raise Invalid("%(field)s is required", field=name)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid("%(field)s is not a valid date and time", field=name) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=WIB)


def _local(value: datetime | None) -> str:
    return value.astimezone(WIB).strftime("%Y-%m-%dT%H:%M:%S") if value else ""


def _iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z: what the timeline script and ``parse_time`` both read."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z") if value else None


def _newest_minute(db: Session, camera: Camera) -> tuple[datetime | None, datetime | None]:
    """The last minute recorded (less when the newest span is shorter): what the page plays first."""
    finish = timeline.newest_end(db_session=db, camera_id=camera.id)
    if finish is None:
        return None, None
    spans = timeline.recorded_spans(db_session=db, camera_id=camera.id, start=finish - FIRST_PLAYED, end=finish)
    return (spans[-1][0] if spans else finish - FIRST_PLAYED), finish


def _play_context(camera: Camera, start: str, end: str, begin: datetime | None = None,
                  finish: datetime | None = None, recorded: tuple[datetime, datetime] | None = None,
                  **extra) -> dict:
    """The page's context. ``begin``/``finish``: the range the player opens with, if any (its URL's
    times encoded: a raw ``+07:00`` would reach the server as a space); ``recorded``: the part of it
    the video holds, for the timeline script to place the video's time 0."""
    playable = begin is not None and finish is not None and finish > begin
    loaded = (recorded or (begin, finish)) if playable else (None, None)
    return {"camera": camera, "start": start, "end": end, "zoom_hours": TIMELINE_ZOOM_HOURS,
            "query": urlencode({"start": _iso(begin), "end": _iso(finish)}) if playable else None,
            "loaded_start": _iso(loaded[0]) or "", "loaded_end": _iso(loaded[1]) or "", **extra}


@router.get("/cameras/{code}/play")
def play_page(request: Request, camera: RecordingsCamera, db: SessionDep, start: str | None = None,
              end: str | None = None):
    error, recorded = None, None
    try:
        if start and end:
            begin, finish = parse_time(start, "start"), parse_time(end, "end")
        else:
            begin, finish = _newest_minute(db, camera)
    except DomainError as exc:
        error, begin, finish = translated(exc), None, None
    if begin and finish and timedelta(0) < finish - begin <= TIMELINE_MAX:
        spans = timeline.recorded_spans(db_session=db, camera_id=camera.id, start=begin, end=finish)
        recorded = (spans[0][0], spans[-1][1]) if spans else None
    context = _play_context(camera, _local(begin), _local(finish), begin, finish, recorded, error=error)
    return render(request, "cameras/play.html", context, status_code=422 if error else 200)


def _window(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """The timeline's window: both ends given, or one of them and 24 hours from it, or the last 24 hours."""
    begin = parse_time(start, "start") if start else None
    finish = parse_time(end, "end") if end else None
    if finish is None:
        finish = begin + TIMELINE_DEFAULT if begin else utcnow()
    if begin is None:
        begin = finish - TIMELINE_DEFAULT
    if finish <= begin:
        raise Invalid("The end of the time range must come after its start")
    if finish - begin > TIMELINE_MAX:
        raise Invalid("A timeline may cover at most %(days)s days", days=TIMELINE_MAX.days)
    return begin.astimezone(UTC), finish.astimezone(UTC)


@router.get("/cameras/{code}/timeline.json")
def timeline_json(camera: RecordingsCamera, db: SessionDep, principal: CurrentUser, start: str | None = None,
                  end: str | None = None):
    """Recorded spans, health changes, motion and evidence holds of one camera in a window, for the
    timeline of the playback page. Hold reasons and health messages only for the camera's managers."""
    begin, finish = _window(start, end)
    manager = cameras.manages(principal, camera)
    window = {"db_session": db, "camera_id": camera.id, "start": begin, "end": finish}
    events = [{"kind": e.kind, "start": _iso(e.started_at), "end": _iso(e.ended_at), "label": e.kind,
               "score": e.score} for e in timeline.camera_events(**window)]
    events += [{"kind": "health", "start": _iso(e.at), "end": _iso(e.at), "label": e.health,
                **({"message": e.message} if manager else {})} for e in timeline.health_events(**window)]
    holds = [{"start": _iso(h.starts_at), "end": _iso(h.ends_at), **({"reason": h.reason} if manager else {})}
             for h in timeline.holds(**window)]
    body = {"start": _iso(begin), "end": _iso(finish),
            "spans": [[_iso(s), _iso(e)] for s, e in timeline.recorded_spans(**window)],
            "events": sorted(events, key=lambda e: e["start"]), "holds": holds}
    return JSONResponse(body, headers={"Cache-Control": "no-store, private"})


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
        return render(request, "cameras/play.html", _play_context(camera, start, end, error=translated(exc),
                                                                  reason=reason), status_code=exc.status_code)
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
