"""Cameras: registration, credentials at rest, and who may watch what (sharing by area)."""

from __future__ import annotations

import csv
import json
import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import shapely
from pydantic import ValidationError
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, selectinload

from siskamling.areas import importer as area_importer
from siskamling.areas import service as areas
from siskamling.areas.models import Area, Level
from siskamling.audit import service as audit
from siskamling.audit.events import CameraChanged, CameraRegistered
from siskamling.audit.service import Actor
from siskamling.cameras.live import live_folder
from siskamling.cameras.models import (
    Camera,
    CameraEvent,
    CameraHealthEvent,
    CameraShare,
    EvidenceExport,
    EvidenceHold,
    Health,
    Purpose,
    RecordingSegment,
)
from siskamling.cameras.schemas import SHARE_LEVELS, CameraIn, CameraPatch
from siskamling.core.config import Settings
from siskamling.core.db import database_now
from siskamling.core.errors import Conflict, Invalid, NotFound
from siskamling.core.permissions import SHAREABLE_ROLES, Permission
from siskamling.core.scope import Principal, in_scope, path_condition
from siskamling.core.security import SecretBox
from siskamling.core.time import utcnow
from siskamling.events import service as events

STREAM_SCHEMES = {"rtsp", "rtsps", "http", "https", "file"}
SECRET_QUERY = re.compile(r"(^|&)(user(name)?|pass(word)?|pwd|auth|token|key|secret)=", re.IGNORECASE)
MESSAGE_MAX = 500
NEIGHBOUR_TOLERANCE_DEG = 0.0001  # ~11 m: simplified boundaries leave slivers between neighbours


# --- stream addresses and credentials ----------------------------------------------------------


def split_stream_url(url: str) -> tuple[str, str | None, str | None]:
    """(url without credentials, username, password). Credentials typed into the URL are moved
    out of it so that the stored and displayed address never carries them."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in STREAM_SCHEMES:
        raise Invalid("Stream address must start with rtsp://, rtsps://, http(s):// (HLS) or file://")
    if parts.scheme != "file" and not parts.hostname:
        raise Invalid("Stream address has no host")
    if parts.scheme == "file" and not parts.path:
        raise Invalid("A file:// stream address needs a path")
    if SECRET_QUERY.search(parts.query or ""):
        raise Invalid("Put the stream's username and password in their own fields, not in the address")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, parts.query, "")), username, password


def seal_credentials(settings: Settings, username: str | None, password: str | None) -> str | None:
    if not username and not password:
        return None
    return SecretBox(settings.secret_key).seal(json.dumps({"username": username or "", "password": password or ""}))


def open_credentials(settings: Settings, camera: Camera) -> tuple[str, str] | None:
    """For the camera worker only: never shown, never logged."""
    if not camera.credentials_enc:
        return None
    data = json.loads(SecretBox(settings.secret_key).open(camera.credentials_enc))
    return data["username"], data["password"]


# --- sharing -----------------------------------------------------------------------------------


def _check_roles(roles: list[str], field: str) -> list[str]:
    unknown = sorted(set(roles) - set(SHAREABLE_ROLES))
    if unknown:
        raise Invalid("%(field)s: roles that cannot be given camera access: %(roles)s", field=field,
                      roles=", ".join(unknown))
    return sorted(set(roles))


def _share_area(db_session: Session, area: Area, level: Level) -> Area:
    """The camera's ancestor at the sharing level (the camera's own area when it is shallower)."""
    chain = [area, *reversed(areas.ancestors(db_session=db_session, area=area))]
    return next((a for a in chain if a.level == level), area)


def _neighbours(db_session: Session, area: Area) -> list[Area]:
    """Areas of the same level that touch this one (siblings when there are no polygons)."""
    if area.geometry is None:
        return list(db_session.scalars(select(Area).where(Area.parent_id == area.parent_id, Area.id != area.id)))
    t = NEIGHBOUR_TOLERANCE_DEG
    candidates = db_session.scalars(select(Area).where(
        Area.level == area.level, Area.id != area.id, Area.geometry.is_not(None),
        Area.min_lon <= area.max_lon + t, Area.max_lon >= area.min_lon - t,
        Area.min_lat <= area.max_lat + t, Area.max_lat >= area.min_lat - t,
    )).all()
    shape = shapely.from_geojson(area.geometry)
    return [c for c in candidates if shapely.dwithin(shape, shapely.from_geojson(c.geometry), t)]


def _rebuild_shares(db_session: Session, camera: Camera) -> None:
    base = _share_area(db_session, camera.area, Level(camera.share_level))
    shared = [base, *(_neighbours(db_session, base) if camera.share_neighbours else [])]
    camera.shares.clear()
    db_session.flush()
    for area in shared:
        for purpose, roles in ((Purpose.live, camera.live_roles), (Purpose.recordings, camera.recording_roles)):
            for role in roles:
                camera.shares.append(CameraShare(area_path=area.path, role=role, purpose=purpose))


def _grant_matches(grant_path: str):
    """A share reaches a grant when one area contains the other: a kelurahan-wide share reaches
    an RT head inside it, an RT share reaches the kelurahan's FKDM."""
    segments = grant_path.split("/")
    ancestors = ["/".join(segments[:i]) for i in range(1, len(segments) + 1)]
    return or_(CameraShare.area_path.in_(ancestors), CameraShare.area_path.startswith(grant_path + "/", autoescape=True))


def _visible_condition(principal: Principal, purposes: list[Purpose]):
    managed = path_condition(Camera.area_path, principal.paths_for(Permission.camera_manage))
    share_terms = [and_(CameraShare.role == g.role, _grant_matches(g.area_path)) for g in principal.grants]
    if not share_terms:
        return managed
    shared = select(CameraShare.camera_id).where(CameraShare.purpose.in_(purposes), or_(*share_terms))
    return or_(managed, Camera.id.in_(shared))


def allowed_purposes(db_session: Session, principal: Principal, camera_ids: list[int]) -> dict[int, set[Purpose]]:
    """For each camera, what the principal may do with it (managers may do both): one query per
    purpose for a whole list, not one per camera."""
    out: dict[int, set[Purpose]] = {cid: set() for cid in camera_ids}
    if not camera_ids:
        return out
    for purpose in Purpose:
        stmt = select(Camera.id).where(Camera.id.in_(camera_ids), _visible_condition(principal, [purpose]))
        for cid in db_session.scalars(stmt):
            out[cid].add(purpose)
    return out


def can(db_session: Session, principal: Principal, camera: Camera, purpose: Purpose) -> bool:
    """Managed cameras included (``_visible_condition`` covers both)."""
    stmt = select(Camera.id).where(Camera.id == camera.id, _visible_condition(principal, [purpose]))
    return db_session.scalar(stmt) is not None


def manages(principal: Principal, camera: Camera) -> bool:
    return in_scope(principal, Permission.camera_manage, camera.area_path)


# --- reading -----------------------------------------------------------------------------------


def list_visible(*, db_session: Session, principal: Principal, purpose: Purpose | None = None) -> list[Camera]:
    purposes = [purpose] if purpose else list(Purpose)
    stmt = select(Camera).where(_visible_condition(principal, purposes)).options(selectinload(Camera.area))
    return list(db_session.scalars(stmt.order_by(Camera.code)))


def get_visible(*, db_session: Session, principal: Principal, code: str,
                purposes: list[Purpose] | None = None) -> Camera:
    """One camera the principal may use for one of ``purposes`` (default: any) or manage;
    otherwise NotFound, like a missing one. One query, for pages and media alike."""
    stmt = select(Camera).where(Camera.code == code, _visible_condition(principal, purposes or list(Purpose)))
    camera = db_session.scalar(stmt)
    if camera is None:
        raise NotFound("Camera not found")
    return camera


def list_all(*, db_session: Session) -> list[Camera]:
    """Every camera, for the machine operator's CLI."""
    return list(db_session.scalars(select(Camera).options(selectinload(Camera.area)).order_by(Camera.code)))


def get_by_code(*, db_session: Session, code: str) -> Camera | None:
    return db_session.scalar(select(Camera).where(Camera.code == code))


# --- writing -----------------------------------------------------------------------------------


def _place(db_session: Session, lat: float, lon: float, manager: Principal | None, settings: Settings) -> Area:
    location = areas.locate(db_session=db_session, lat=lat, lon=lon, edge_tolerance_m=settings.locate_edge_tolerance_m)
    if location.status == "outside":
        raise Invalid("The camera's position is outside the service area")
    area = areas.get_by_code(db_session=db_session, code=location.area_code)
    if manager is not None and not in_scope(manager, Permission.camera_manage, area.path):
        raise Invalid("The camera's position is outside the areas you manage")
    return area


def register(*, db_session: Session, data: CameraIn, actor: Actor, settings: Settings,
             manager: Principal | None = None) -> Camera:
    """``manager`` None is the machine's CLI; otherwise the position must lie in their areas."""
    if get_by_code(db_session=db_session, code=data.code) is not None:
        raise Conflict("A camera with code %(code)s already exists", code=data.code)
    url, url_user, url_password = split_stream_url(data.stream_url)
    sub = split_stream_url(data.substream_url)[0] if data.substream_url else None
    if data.share_level not in SHARE_LEVELS:
        raise Invalid("Cameras are shared at kota, kecamatan, kelurahan, RW or RT level")
    area = _place(db_session, data.lat, data.lon, manager, settings)
    camera = Camera(
        code=data.code, name=data.name, lat=data.lat, lon=data.lon, area=area, area_path=area.path,
        site_type=data.site_type, owner=data.owner, stream_url=url, substream_url=sub,
        credentials_enc=seal_credentials(settings, data.username or url_user, data.password or url_password),
        retention_days=data.retention_days, share_level=data.share_level, share_neighbours=data.share_neighbours,
        live_roles=_check_roles(data.live_roles, "live_roles"),
        recording_roles=_check_roles(data.recording_roles, "recording_roles"), enabled=True,
    )
    db_session.add(camera)
    db_session.flush()
    _rebuild_shares(db_session, camera)
    audit.record(db_session=db_session, actor=actor, area_path=area.path, event=CameraRegistered(
        code=camera.code, name=camera.name, area_code=area.code, share_level=camera.share_level,
        live_roles=camera.live_roles, recording_roles=camera.recording_roles))
    return camera


def change(*, db_session: Session, camera: Camera, patch: CameraPatch, actor: Actor, settings: Settings,
           manager: Principal | None = None) -> Camera:
    given = patch.model_dump(exclude_unset=True)
    changed = []
    if "stream_url" in given:
        url, url_user, url_password = split_stream_url(given.pop("stream_url"))
        camera.stream_url = url
        changed.append("stream_url")
        if url_user or url_password:
            given.setdefault("username", url_user)
            given.setdefault("password", url_password)
    if "substream_url" in given:
        value = given.pop("substream_url")
        camera.substream_url = split_stream_url(value)[0] if value else None
        changed.append("substream_url")
    if "username" in given or "password" in given:
        old = open_credentials(settings, camera) or ("", "")
        camera.credentials_enc = seal_credentials(settings, given.pop("username", old[0]), given.pop("password", old[1]))
        changed.append("credentials")
    if "lat" in given or "lon" in given:
        lat, lon = given.pop("lat", camera.lat), given.pop("lon", camera.lon)
        area = _place(db_session, lat, lon, manager, settings)
        camera.lat, camera.lon, camera.area, camera.area_path = lat, lon, area, area.path
        changed.append("position")
    for field in ("live_roles", "recording_roles"):
        if field in given:
            setattr(camera, field, _check_roles(given.pop(field), field))
            changed.append(field)
    if "share_level" in given and given["share_level"] not in SHARE_LEVELS:
        raise Invalid("Cameras are shared at kota, kecamatan, kelurahan, RW or RT level")
    for field, value in given.items():
        if value is not None:
            setattr(camera, field, value)
            changed.append(field)
    db_session.flush()
    _rebuild_shares(db_session, camera)
    audit.record(db_session=db_session, actor=actor, area_path=camera.area_path,
                 event=CameraChanged(code=camera.code, changed=sorted(set(changed))))
    return camera


# --- import ------------------------------------------------------------------------------------

LIST_FIELDS = ("live_roles", "recording_roles")


def _rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as fh:
            return [(f"row {i}", dict(row)) for i, row in enumerate(csv.DictReader(fh), start=2)]
    features = area_importer.read_features(path)
    out = []
    for i, feature in enumerate(features, start=1):
        props = dict(feature.get("properties") or {})
        geom = feature.get("geometry") or {}
        if geom.get("type") == "Point":
            props.setdefault("lon", geom["coordinates"][0])
            props.setdefault("lat", geom["coordinates"][1])
        out.append((f"feature #{i}", props))
    return out


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    data = {k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k}
    data = {k: v for k, v in data.items() if v not in ("", None)}
    for field in LIST_FIELDS:
        if isinstance(data.get(field), str):
            data[field] = [r.strip() for r in data[field].replace(",", ";").split(";") if r.strip()]
    if isinstance(data.get("share_neighbours"), str):
        data["share_neighbours"] = data["share_neighbours"].lower() in ("1", "true", "ya", "yes")
    return data


def import_file(*, db_session: Session, path: Path, actor: Actor, settings: Settings) -> tuple[int, int]:
    """CSV or GeoJSON points; new codes are registered, known ones updated. All or nothing:
    any bad row raises ImportFailed naming every bad row, and the caller's transaction rolls back."""
    errors: list[str] = []
    created = updated = 0
    seen: dict[str, str] = {}
    for label, row in _rows(path):
        data = _clean(row)
        code = str(data.get("code", ""))
        if code in seen:
            errors.append(f"{label} ({code}): duplicate code (first in {seen[code]})")
            continue
        seen[code] = label
        try:
            camera = get_by_code(db_session=db_session, code=str(data.get("code", "")))
            if camera is None:
                register(db_session=db_session, data=CameraIn(**data), actor=actor, settings=settings)
                created += 1
            else:
                data.pop("code")
                change(db_session=db_session, camera=camera, patch=CameraPatch(**data), actor=actor, settings=settings)
                updated += 1
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}" for e in exc.errors())
            errors.append(f"{label} ({data.get('code', '?')}): {problems}")
        except (Invalid, Conflict) as exc:
            errors.append(f"{label} ({data.get('code', '?')}): {exc}")
    if errors:
        raise area_importer.ImportFailed(errors)
    return created, updated


# --- workers: leases, health, segments ---------------------------------------------------------
# Each function is one short transaction's worth of work, called by the worker processes.


def claim_one(*, db_session: Session, worker_id: str, lease_seconds: float) -> int | None:
    """Claim one enabled camera nobody holds (or whose holder's lease ran out). The conditional
    UPDATE is the lock: of two workers racing for a camera, exactly one sees a row count of 1.
    Leases run on the database's clock, so a worker whose clock is wrong cannot steal or keep one."""
    now = database_now(db_session)
    free = (Camera.worker_id.is_(None)) | (Camera.lease_expires_at < now)
    candidates = db_session.scalars(
        select(Camera.id).where(Camera.enabled.is_(True), free).order_by(Camera.lease_expires_at.is_not(None),
                                                                          Camera.id).limit(10)
    ).all()
    for camera_id in candidates:
        result = db_session.execute(
            update(Camera).where(Camera.id == camera_id, Camera.enabled.is_(True), free)
            .values(worker_id=worker_id, lease_expires_at=now + timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:
            return camera_id
    return None


def renew_leases(*, db_session: Session, worker_id: str, camera_ids: list[int], lease_seconds: float) -> set[int]:
    """Extend this worker's leases; returns the cameras it still holds (a lease taken over after
    an expiry, or a camera disabled meanwhile, is lost and its recorder must stop)."""
    if not camera_ids:
        return set()
    db_session.execute(
        update(Camera).where(Camera.id.in_(camera_ids), Camera.worker_id == worker_id, Camera.enabled.is_(True))
        .values(lease_expires_at=database_now(db_session) + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    held = db_session.scalars(select(Camera.id).where(Camera.id.in_(camera_ids), Camera.worker_id == worker_id,
                                                      Camera.enabled.is_(True))).all()
    return set(held)


def release(*, db_session: Session, worker_id: str, camera_ids: list[int]) -> None:
    if camera_ids:
        db_session.execute(
            update(Camera).where(Camera.id.in_(camera_ids), Camera.worker_id == worker_id)
            .values(worker_id=None, lease_expires_at=None).execution_options(synchronize_session=False)
        )


def set_health(*, db_session: Session, camera_id: int, health: Health, message: str | None = None,
               fps: float | None = None, bitrate_kbps: float | None = None, last_frame_at=None,
               codec: str | None = None, width: int | None = None, height: int | None = None) -> bool:
    """Record the camera's measured health; a change of state is kept in its history.
    Returns True when the state changed."""
    readings = dict(fps=fps, bitrate_kbps=bitrate_kbps, last_frame_at=last_frame_at, codec=codec, width=width,
                    height=height)
    if update_readings(db=db_session, camera_id=camera_id, health=health, message=message, **readings):
        return False
    camera = db_session.get(Camera, camera_id)
    if camera is None:
        return False
    message = message[:MESSAGE_MAX] if message else message
    changed = camera.health != health
    now = utcnow()
    if changed:
        camera.health = health
        camera.health_since = now
        db_session.add(CameraHealthEvent(camera_id=camera_id, at=now, health=health, message=message))
        if health in (Health.online, Health.offline, Health.degraded):
            # Operators of the camera's area see it at once, on whichever web node they are.
            events.publish(db_session=db_session, kind=f"camera.{health}", area_path=camera.area_path,
                           permission=Permission.camera_manage,
                           payload={"code": camera.code, "name": camera.name, "health": str(health),
                                    "message": message})
    camera.last_error = _last_error(health, message)
    for field, value in readings.items():
        if value is not None:
            setattr(camera, field, value)
    return changed


def update_readings(*, db: Session | Connection, camera_id: int, health: Health, message: str | None = None,
                    **readings) -> bool:
    """A recorder's readings (fps, bitrate_kbps, last_frame_at, codec, width, height; None: keep)
    for a camera already in state ``health``: one UPDATE guarded by that state, without loading
    the camera. Returns False, writing nothing, if the camera is in another state (or gone): that
    is ``set_health``'s work. Takes a session (whose loaded camera then follows the update) or a
    bare connection: a recorder reports every few seconds, and a connection of its own costs a
    fraction of a session's unit of work."""
    values = {field: value for field, value in readings.items() if value is not None}
    values["last_error"] = _last_error(health, message)
    return bool(db.execute(update(Camera).where(Camera.id == camera_id, Camera.health == health)
                           .values(**values)).rowcount)


def _last_error(health: Health, message: str | None) -> str | None:
    """What a camera's ``last_error`` says in ``health``: the reason while offline or degraded."""
    return message[:MESSAGE_MAX] if message and health in (Health.offline, Health.degraded) else None


def add_segment(*, db_session: Session | Connection, camera_id: int, started_at, ended_at, path: str,
                size: int) -> None:
    """Index a finished segment (a session or, from a recorder, a bare connection: see
    ``update_readings``)."""
    db_session.execute(insert(RecordingSegment).values(camera_id=camera_id, started_at=started_at,
                                                       ended_at=ended_at, path=path, bytes=size))


def segments(*, db_session: Session, camera_id: int, since=None, until=None) -> list[RecordingSegment]:
    stmt = select(RecordingSegment).where(RecordingSegment.camera_id == camera_id)
    if since is not None:
        stmt = stmt.where(RecordingSegment.ended_at > since)
    if until is not None:
        stmt = stmt.where(RecordingSegment.started_at < until)
    return list(db_session.scalars(stmt.order_by(RecordingSegment.started_at)))


def health_history(*, db_session: Session, camera_id: int, limit: int = 50) -> list[CameraHealthEvent]:
    return list(db_session.scalars(select(CameraHealthEvent).where(CameraHealthEvent.camera_id == camera_id)
                                   .order_by(CameraHealthEvent.at.desc()).limit(limit)))


def source_for(*, db_session: Session, camera_id: int,
               settings: Settings) -> tuple[str, str | None, tuple[str, str] | None] | None:
    """What a recorder opens: the stream address, the sub-stream's, and the decrypted credentials."""
    camera = db_session.get(Camera, camera_id)
    if camera is None:
        return None
    return camera.stream_url, camera.substream_url, open_credentials(settings, camera)


def start_motion(*, db_session: Session, camera_id: int, started_at) -> int:
    """Motion began: an open event on the camera's timeline (its id is the handle to end it)."""
    event = CameraEvent(camera_id=camera_id, kind="motion", started_at=started_at, score=0.0)
    db_session.add(event)
    db_session.flush()
    return event.id


def end_motion(*, db_session: Session, event_id: int, ended_at, score: float) -> None:
    db_session.execute(update(CameraEvent).where(CameraEvent.id == event_id).values(ended_at=ended_at, score=score))


def code_of(*, db_session: Session, camera_id: int) -> str | None:
    return db_session.scalar(select(Camera.code).where(Camera.id == camera_id))


def recorded_spans(*, db_session: Session, camera_id: int, gap_seconds: float = 30.0, limit: int = 20000):
    """Continuous recorded spans (start, end, segments), newest first: a gap longer than
    ``gap_seconds`` between segments starts a new span."""
    rows = db_session.execute(
        select(RecordingSegment.started_at, RecordingSegment.ended_at).where(RecordingSegment.camera_id == camera_id)
        .order_by(RecordingSegment.started_at.desc()).limit(limit)
    ).all()
    spans: list[list] = []
    for started, ended in reversed(rows):
        if spans and (started - spans[-1][1]).total_seconds() <= gap_seconds:
            spans[-1][1] = max(spans[-1][1], ended)
            spans[-1][2] += 1
        else:
            spans.append([started, ended, 1])
    return [tuple(s) for s in reversed(spans)]


def snapshot_path(settings: Settings, camera: Camera) -> Path:
    return live_folder(settings.media_dir, camera.code) / "snapshot.jpg"


def require_purpose(*, db_session: Session, principal: Principal, camera: Camera, purpose: Purpose) -> None:
    """Media are checked like the JSON API: a camera the user may not use this way is not there."""
    if not can(db_session, principal, camera, purpose):
        raise NotFound("Camera not found")


# --- playback and evidence export --------------------------------------------------------------


def _range(start, end) -> None:
    from siskamling.cameras.playback import MAX_RANGE_S

    if end <= start:
        raise Invalid("The end of the time range must come after its start")
    if (end - start).total_seconds() > MAX_RANGE_S:
        raise Invalid("A time range may be at most %(hours)s hours long", hours=MAX_RANGE_S // 3600)


def source_segments(*, db_session: Session, settings: Settings, camera: Camera, start, end):
    from siskamling.cameras.playback import SourceSegment

    _range(start, end)
    rows = segments(db_session=db_session, camera_id=camera.id, since=start, until=end)
    found = [SourceSegment(settings.media_dir / r.path, r.started_at, r.ended_at) for r in rows]
    found = [s for s in found if s.path.exists()]
    if not found:
        raise NotFound("Nothing was recorded by this camera in that time range")
    return found


def render_range(*, db_session: Session, settings: Settings, camera: Camera, start, end, out: Path, actor: Actor):
    """One MP4 of the range for playback; the view is audited."""
    from siskamling.audit.events import RecordingViewed
    from siskamling.cameras.playback import NothingRecorded, remux

    found = source_segments(db_session=db_session, settings=settings, camera=camera, start=start, end=end)
    try:
        remux(found, start, end, out)
    except NothingRecorded:
        raise NotFound("Nothing was recorded by this camera in that time range") from None
    audit.record(db_session=db_session, actor=actor, area_path=camera.area_path,
                 event=RecordingViewed(code=camera.code, starts_at=start.isoformat(), ends_at=end.isoformat()))


def export_evidence(*, db_session: Session, settings: Settings, camera: Camera, start, end, reason: str,
                    actor: Actor) -> EvidenceExport:
    """Export a range as one MP4 with a signed manifest (camera, range, source segments with
    their SHA-256, the export's SHA-256, who, when, why). Requires a stated reason; audited."""
    from siskamling.audit.events import EvidenceExported
    from siskamling.cameras import playback

    reason = (reason or "").strip()
    if len(reason) < 10:
        raise Invalid("State the reason for the export (at least 10 characters)")
    found = source_segments(db_session=db_session, settings=settings, camera=camera, start=start, end=end)
    now = utcnow()
    relative = Path("exports") / camera.code / f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    folder = settings.media_dir / relative
    folder.mkdir(parents=True)
    video = folder / f"{camera.code}_{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}.mp4"
    try:
        playback.remux(found, start, end, video)
    except playback.NothingRecorded:
        raise NotFound("Nothing was recorded by this camera in that time range") from None
    digest = playback.sha256_file(video)
    manifest = playback.sign({
        "format": "siskamling-evidence/1",
        "camera": {"code": camera.code, "name": camera.name, "lat": camera.lat, "lon": camera.lon,
                   "area_code": camera.area.code},
        "range": {"start": start.isoformat(), "end": end.isoformat()},
        "file": {"name": video.name, "bytes": video.stat().st_size, "sha256": digest},
        "segments": [{"path": str(s.path.relative_to(settings.media_dir)), "started_at": s.started_at.isoformat(),
                      "ended_at": s.ended_at.isoformat(), "sha256": playback.sha256_file(s.path)} for s in found],
        "exported_by": actor.label, "exported_at": now.isoformat(), "reason": reason,
    }, playback.signing_key(settings.secret_key))
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    export = EvidenceExport(camera_id=camera.id, requested_by_id=actor.id, requested_by=actor.label, reason=reason,
                            starts_at=start, ends_at=end, folder=str(relative), sha256=digest, created_at=now)
    db_session.add(export)
    db_session.flush()
    audit.record(db_session=db_session, actor=actor, area_path=camera.area_path, event=EvidenceExported(
        export_id=export.id, code=camera.code, starts_at=start.isoformat(), ends_at=end.isoformat(), reason=reason,
        sha256=digest))
    return export


def get_export(*, db_session: Session, principal: Principal, export_id: int) -> tuple[EvidenceExport, Camera]:
    """An export is visible to whoever may play that camera's recordings."""
    export = db_session.get(EvidenceExport, export_id)
    if export is None:
        raise NotFound("Export not found")
    camera = db_session.get(Camera, export.camera_id)
    try:
        require_purpose(db_session=db_session, principal=principal, camera=camera, purpose=Purpose.recordings)
    except NotFound:
        raise NotFound("Export not found") from None
    return export, camera


def record_download(*, db_session: Session, export: EvidenceExport, file: str, actor: Actor, area_path: str) -> None:
    from siskamling.audit.events import EvidenceDownloaded

    audit.record(db_session=db_session, actor=actor, area_path=area_path,
                 event=EvidenceDownloaded(export_id=export.id, file=file))


# --- evidence holds and retention --------------------------------------------------------------


def place_hold(*, db_session: Session, camera: Camera, start, end, reason: str, actor: Actor) -> EvidenceHold:
    from siskamling.audit.events import HoldPlaced

    reason = (reason or "").strip()
    if len(reason) < 10:
        raise Invalid("State the reason for the hold (at least 10 characters)")
    if end <= start:
        raise Invalid("The end of the time range must come after its start")
    hold = EvidenceHold(camera_id=camera.id, starts_at=start, ends_at=end, reason=reason, placed_by=actor.label)
    db_session.add(hold)
    db_session.flush()
    audit.record(db_session=db_session, actor=actor, area_path=camera.area_path, event=HoldPlaced(
        hold_id=hold.id, code=camera.code, starts_at=start.isoformat(), ends_at=end.isoformat(), reason=reason))
    return hold


def release_hold(*, db_session: Session, camera: Camera, hold_id: int, actor: Actor) -> EvidenceHold:
    from siskamling.audit.events import HoldReleased

    hold = db_session.get(EvidenceHold, hold_id)
    if hold is None or hold.camera_id != camera.id:
        raise NotFound("Hold not found")
    if hold.released_at is not None:
        raise Conflict("This hold is already released")
    hold.released_at, hold.released_by = utcnow(), actor.label
    audit.record(db_session=db_session, actor=actor, area_path=camera.area_path,
                 event=HoldReleased(hold_id=hold.id, code=camera.code))
    return hold


def holds(*, db_session: Session, camera_id: int) -> list[EvidenceHold]:
    return list(db_session.scalars(select(EvidenceHold).where(EvidenceHold.camera_id == camera_id)
                                   .order_by(EvidenceHold.placed_at.desc())))


def _not_held():
    held = select(EvidenceHold.id).where(
        EvidenceHold.camera_id == RecordingSegment.camera_id, EvidenceHold.released_at.is_(None),
        EvidenceHold.starts_at < RecordingSegment.ended_at, EvidenceHold.ends_at > RecordingSegment.started_at,
    )
    return ~held.exists()


def _delete_segments(db_session: Session, settings: Settings, rows: list[RecordingSegment]) -> int:
    """Row first, then file: a crash in between leaves an orphan file, never a row without one
    that playback would trip over (playback skips missing files anyway)."""
    for row in rows:
        db_session.delete(row)
    db_session.flush()
    for row in rows:
        (settings.media_dir / row.path).unlink(missing_ok=True)
    return len(rows)


def expire_recordings(*, db_session: Session, settings: Settings, camera_ids: list[int], batch: int = 500) -> int:
    """Delete segments older than their camera's retention, except those under a hold."""
    now = utcnow()
    removed = 0
    for camera in db_session.scalars(select(Camera).where(Camera.id.in_(camera_ids))):
        cutoff = now - timedelta(days=camera.retention_days)
        rows = db_session.scalars(select(RecordingSegment).where(
            RecordingSegment.camera_id == camera.id, RecordingSegment.ended_at < cutoff, _not_held(),
        ).order_by(RecordingSegment.started_at).limit(batch)).all()
        removed += _delete_segments(db_session, settings, list(rows))
    return removed


def relieve_disk_pressure(*, db_session: Session, settings: Settings, camera_ids: list[int], free_bytes,
                          batch: int = 50) -> int:
    """While free space is under the floor, delete the oldest unheld segments of these cameras.
    ``free_bytes`` is a function (the disk, or a stand-in in tests)."""
    floor = settings.media_free_floor_gb * 1024**3
    removed = 0
    while free_bytes() < floor:
        rows = db_session.scalars(select(RecordingSegment).where(
            RecordingSegment.camera_id.in_(camera_ids), _not_held(),
        ).order_by(RecordingSegment.started_at).limit(batch)).all()
        if not rows:
            break  # everything left is held: evidence wins over the floor, and operators are told in the log
        removed += _delete_segments(db_session, settings, list(rows))
    return removed


def uptime_by_day(*, db_session: Session, camera_id: int, days: int = 7, now=None) -> list[tuple[str, float | None]]:
    """Share of each Jakarta calendar day (newest first) the camera delivered video (online or
    degraded), from its health history; None for days before anything was known."""
    from datetime import datetime as _dt
    from datetime import time as _time

    from siskamling.core.time import WIB

    now = now or utcnow()
    today = now.astimezone(WIB).date()
    first_day = _dt.combine(today - timedelta(days=days - 1), _time(0), WIB)
    before = db_session.scalar(select(CameraHealthEvent).where(
        CameraHealthEvent.camera_id == camera_id, CameraHealthEvent.at < first_day,
    ).order_by(CameraHealthEvent.at.desc()).limit(1))
    changes = [(first_day, before.health if before else None)] + [
        (e.at, e.health) for e in db_session.scalars(select(CameraHealthEvent).where(
            CameraHealthEvent.camera_id == camera_id, CameraHealthEvent.at >= first_day,
        ).order_by(CameraHealthEvent.at))]
    up_states = {Health.online, Health.degraded}
    out = []
    for offset in range(days):
        day_start = first_day + timedelta(days=offset)
        day_end = min(day_start + timedelta(days=1), now)
        known = up = 0.0
        for (at, state), (next_at, _) in zip(changes, changes[1:] + [(day_end, None)], strict=True):
            lo, hi = max(at, day_start), min(next_at, day_end)
            if hi <= lo or state is None or state == Health.unknown:
                continue
            known += (hi - lo).total_seconds()
            up += (hi - lo).total_seconds() if state in up_states else 0.0
        out.append((day_start.date().isoformat(), round(up / known, 4) if known else None))
    return list(reversed(out))
