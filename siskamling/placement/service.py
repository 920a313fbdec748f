"""Camera requests: who may ask, who may back a request, who may see it, the review workflow,
and the grouping of nearby requests so a neighbourhood does not split its voice.

Asking: ketua RT/RW, FKDM and operators (and admins), for a spot inside or around their area.
Backing: a resident of the request's RW (a ``warga`` grant given by the kelurahan, or a
community role there) adds their support once. Reviewing: whoever manages cameras over the
area (operators, admins). The requester and everyone whose grants touch the request's area see
it with every decision's reason; the public sees figures per kelurahan only.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from scipy.spatial import cKDTree
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siskamling.areas import service as areas
from siskamling.areas.index import get_index
from siskamling.audit import service as audit
from siskamling.audit.events import CameraRequestDecided, CameraRequested, CameraRequestSupported
from siskamling.audit.service import Actor
from siskamling.cameras.models import Camera, SiteType
from siskamling.core.config import Settings
from siskamling.core.errors import Conflict, Forbidden, Invalid, NotFound
from siskamling.core.i18n import request_status_label
from siskamling.core.permissions import REQUESTER_ROLES, RESIDENT_ROLES, Permission, Role
from siskamling.core.scope import Principal, covers, in_scope, path_condition
from siskamling.core.time import utcnow
from siskamling.events import service as events
from siskamling.placement import assess
from siskamling.placement.models import (
    OPEN_REQUEST_STATUSES,
    REASONS,
    CameraRequest,
    RequestPhoto,
    RequestStatus,
    RequestStep,
    RequestSupport,
)
from siskamling.reports import photos
from siskamling.reports.service import TICKET_ALPHABET, box, distance_m

MAX_PHOTOS = 3
REASON_SITE = {  # the camera site type a reason suggests (the requester may pick another)
    "rawan_kriminalitas": SiteType.jalan, "taman_24_jam": SiteType.taman_24_jam,
    "rawan_banjir": SiteType.rawan_bencana, "sekolah": SiteType.sekolah, "pasar": SiteType.pasar,
    "gang_gelap": SiteType.jalan, "lainnya": SiteType.lainnya,
}
# Which status may follow which. Every decision but the survey needs a reason the requester reads.
TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    RequestStatus.diajukan: frozenset({RequestStatus.ditinjau, RequestStatus.ditolak, RequestStatus.ditunda}),
    RequestStatus.ditinjau: frozenset({RequestStatus.disetujui, RequestStatus.ditolak, RequestStatus.ditunda}),
    RequestStatus.ditunda: frozenset({RequestStatus.ditinjau, RequestStatus.disetujui, RequestStatus.ditolak}),
    RequestStatus.disetujui: frozenset({RequestStatus.terpasang, RequestStatus.ditunda}),
    RequestStatus.ditolak: frozenset({RequestStatus.ditinjau}),
    RequestStatus.terpasang: frozenset(),
}
NEEDS_REASON = frozenset({RequestStatus.disetujui, RequestStatus.ditolak, RequestStatus.ditunda})


# --- who may do what ---------------------------------------------------------------------------


def related(grant_path: str, path: str) -> bool:
    """The grant's area contains the path, or lies inside it (a ketua RT and their RW's request)."""
    return covers(grant_path, path) or covers(path, grant_path)


def requester_role(principal: Principal, path: str) -> Role | None:
    """The role under which the principal may ask for a camera at ``path``, if any."""
    for role in (Role.admin, Role.operator, Role.fkdm, Role.ketua_rw, Role.ketua_rt):
        if role in REQUESTER_ROLES and any(g.role == role and related(g.area_path, path) for g in principal.grants):
            return role
    return None


def may_review(principal: Principal, req: CameraRequest) -> bool:
    return in_scope(principal, Permission.camera_manage, req.area_path)


def _rw_of(path: str) -> str:
    """The RW part of an area path (provinsi/kota/kecamatan/kelurahan/RW/RT): a grant on an RT
    sees the requests of its whole RW, as its residents may back them."""
    parts = path.split("/")
    return "/".join(parts[:5]) if len(parts) > 5 else path


def may_see(principal: Principal | None, req: CameraRequest) -> bool:
    if principal is None:
        return False
    return req.requester_id == principal.user_id or any(
        related(g.area_path, req.area_path) or covers(_rw_of(g.area_path), req.area_path) for g in principal.grants)


def neighbourhood_path(db_session: Session, req: CameraRequest) -> str:
    """The RW a request belongs to (or its kelurahan, where there are no RWs): who counts as a
    resident backing it."""
    for info in get_index(db_session).chain(req.area_id):
        if info.level in ("rw", "kelurahan"):
            return info.path
    return req.area_path


def may_support(db_session: Session, principal: Principal, req: CameraRequest) -> bool:
    home = neighbourhood_path(db_session, req)
    return any(g.role in RESIDENT_ROLES and covers(home, g.area_path) for g in principal.grants)


def visible_condition(principal: Principal):
    paths = sorted({g.area_path for g in principal.grants})
    related_paths = path_condition(CameraRequest.area_path, sorted({_rw_of(p) for p in paths}))
    # Requests in an area that contains one of the grants (the RW of a ketua RT).
    above = [CameraRequest.area_path == p.rsplit("/", k)[0] for p in paths for k in range(1, p.count("/") + 1)]
    return or_(CameraRequest.requester_id == principal.user_id, related_paths, *above)


# --- filing ------------------------------------------------------------------------------------


@dataclass
class NewRequest:
    lat: float | None
    lon: float | None
    reason: str
    description: str
    site_type: str | None = None
    hours: list[tuple[int, int]] = field(default_factory=list)


def parse_hours(text: str) -> list[tuple[int, int]]:
    """'18-24, 0-5' → [(18, 24), (0, 5)]: the hours (WIB) that matter; a span may cross midnight."""
    out = []
    for part in (text or "").replace(";", ",").split(","):
        part = part.strip().replace("–", "-").replace(".00", "").replace(":00", "")
        if not part:
            continue
        try:
            a, b = (int(x) for x in part.split("-", 1))
        except ValueError:
            raise Invalid("Hours must be spans like 18-24 or 22-5, separated by commas") from None
        if not (0 <= a <= 23 and 1 <= b <= 24) or a == b:
            raise Invalid("Hours must be spans like 18-24 or 22-5, separated by commas")
        out.append((a, b))
    return out


def format_hours(hours: list[list[int]] | list[tuple[int, int]]) -> str:
    return ", ".join(f"{a:02d}.00–{b:02d}.00" for a, b in hours)


def locate(db_session: Session, settings: Settings, lat: float | None, lon: float | None) -> tuple[int, str]:
    if lat is None or lon is None:
        raise Invalid("Place the pin on the map (latitude and longitude)")
    info = areas.area_at(db_session, lat, lon, settings.locate_edge_tolerance_m)
    return info.id, info.path


def _new_code(db_session: Session, now: datetime) -> str:
    for _ in range(20):
        code = "KM" + now.strftime("%y%m%d") + "".join(secrets.choice(TICKET_ALPHABET) for _ in range(4))
        if db_session.scalar(select(CameraRequest.id).where(CameraRequest.code == code)) is None:
            return code
    raise Conflict("Could not allocate a request code; try again")


def file_request(*, db_session: Session, settings: Settings, principal: Principal, data: NewRequest, actor: Actor,
                 photo_files: list[tuple[str, bytes]] | None = None, now: datetime | None = None) -> CameraRequest:
    """Checks everything, then stores the request, its photos, its first step, its first
    assessment and the audit entry in the caller's transaction."""
    if data.reason not in REASONS:
        raise Invalid("Choose the reason for the camera")
    site_type = data.site_type or REASON_SITE[data.reason]
    if site_type not in set(SiteType):
        raise Invalid("Unknown site type")
    description = (data.description or "").strip()
    if len(description) < 10:
        raise Invalid("Describe the spot and why it needs a camera (at least 10 characters)")
    if len(description) > 4000:
        raise Invalid("The description is too long (at most 4,000 characters)")
    area_id, path = locate(db_session, settings, data.lat, data.lon)
    role = requester_role(principal, path)
    if role is None:
        raise Forbidden("Only the ketua RT/RW, FKDM or the kelurahan operator of this area may ask for a camera here")
    photo_files = photo_files or []
    if len(photo_files) > MAX_PHOTOS:
        raise Invalid("At most %(n)s photos per request", n=MAX_PHOTOS)
    max_bytes = int(settings.report_photo_max_mb * 1_000_000)
    cleaned = [photos.clean(raw, max_bytes=max_bytes, name=name) for name, raw in photo_files]
    now = now or utcnow()
    req = CameraRequest(code=_new_code(db_session, now), lat=data.lat, lon=data.lon, area_id=area_id, area_path=path,
                        reason=data.reason, site_type=str(site_type), description=description,
                        hours=[list(h) for h in data.hours], status=RequestStatus.diajukan.value,
                        requester_id=principal.user_id, requester_role=str(role), support_count=0,
                        photo_count=len(cleaned), created_at=now, updated_at=now, score_parts={})
    db_session.add(req)
    db_session.flush()
    db_session.add(RequestStep(request_id=req.id, at=now, status_from=None, status_to=req.status, note=None,
                               actor_id=actor.id, actor_label=actor.label))
    with photos.stored(settings.media_dir, f"camera-requests/{now:%Y/%m}/{req.code}", cleaned) as saved:
        for n, relative, photo in saved:
            db_session.add(RequestPhoto(request_id=req.id, number=n, path=relative, width=photo.width,
                                        height=photo.height, bytes=len(photo.data), sha256=photo.sha256))
        assess.store(db_session=db_session, settings=settings, req=req, now=now)
        audit.record(db_session=db_session, actor=actor, area_path=path,
                     event=CameraRequested(code=req.code, reason=req.reason, site_type=req.site_type))
        events.publish(db_session=db_session, kind="camera_request.new", area_path=path,
                       permission=Permission.camera_manage,
                       payload={"code": req.code, "reason": req.reason, "area": get_index(db_session).areas[area_id].name})
        db_session.flush()
    return req


# --- support and review ------------------------------------------------------------------------


def support(*, db_session: Session, settings: Settings, principal: Principal, req: CameraRequest, actor: Actor,
            now: datetime | None = None) -> None:
    """A resident backs the request (once: the unique constraint says so), and it is scored again."""
    if req.status not in OPEN_REQUEST_STATUSES:
        raise Invalid("This request is closed; it cannot be supported any more")
    if not may_support(db_session, principal, req):
        raise Forbidden("Only residents of this RT/RW can support its camera requests")
    if req.requester_id == principal.user_id:
        raise Conflict("You filed this request: ask your neighbours to support it")
    now = now or utcnow()
    try:
        with db_session.begin_nested():
            db_session.add(RequestSupport(request_id=req.id, user_id=principal.user_id, at=now))
    except IntegrityError:
        raise Conflict("You already support this request") from None
    # Counted in the database (not read, incremented and written back): concurrent supports all count.
    db_session.execute(update(CameraRequest).where(CameraRequest.id == req.id).values(
        support_count=CameraRequest.support_count + 1, updated_at=now))
    db_session.refresh(req, ["support_count", "updated_at"])
    db_session.add(RequestStep(request_id=req.id, at=now, note="support", actor_id=actor.id, actor_label=actor.label))
    audit.record(db_session=db_session, actor=actor, area_path=req.area_path, event=CameraRequestSupported(code=req.code))
    assess.store(db_session=db_session, settings=settings, req=req, now=now)
    db_session.flush()


def change_status(*, db_session: Session, settings: Settings, principal: Principal, req: CameraRequest,
                  to: RequestStatus, reason: str | None, actor: Actor, camera_code: str | None = None,
                  now: datetime | None = None) -> RequestStep:
    if not may_review(principal, req):
        raise Forbidden("Only the area's operators and admins review camera requests")
    current = RequestStatus(req.status)
    if to not in TRANSITIONS[current]:
        raise Invalid("A request that is %(from)s cannot become %(to)s",
                      **{"from": request_status_label(current.value), "to": request_status_label(to.value)})
    reason = (reason or "").strip() or None
    if to in NEEDS_REASON and (reason is None or len(reason) < 5):
        raise Invalid("Give the reason for this decision (at least 5 characters): the requester reads it")
    camera = None
    if to == RequestStatus.terpasang:
        code = (camera_code or "").strip()
        if not code:
            raise Invalid("Name the installed camera (its code) to mark the request installed")
        camera = db_session.scalar(select(Camera).where(func.upper(Camera.code) == code.upper()))
        if camera is None:
            raise Invalid("No camera with code %(code)s", code=code)
        if distance_m(req.lat, req.lon, camera.lat, camera.lon) > max(500.0, settings.request_group_radius_m):
            raise Invalid("Camera %(code)s is not near this request", code=camera.code)
        other = db_session.scalar(select(CameraRequest.code).where(CameraRequest.camera_id == camera.id,
                                                                   CameraRequest.id != req.id))
        if other is not None:
            raise Invalid("Camera %(code)s is already linked to request %(other)s", code=camera.code, other=other)
        if camera.created_at < req.created_at:
            raise Invalid("Camera %(code)s was registered before this request: link the camera installed for it",
                          code=camera.code)
        req.camera_id = camera.id
    now = now or utcnow()
    step = RequestStep(request_id=req.id, at=now, status_from=current.value, status_to=to.value, note=reason,
                       actor_id=actor.id, actor_label=actor.label)
    db_session.add(step)
    req.status = to.value
    if reason is not None or to in NEEDS_REASON:
        req.status_reason = reason
    req.updated_at = now
    audit.record(db_session=db_session, actor=actor, area_path=req.area_path, event=CameraRequestDecided(
        code=req.code, status_from=current.value, status_to=to.value, reason=reason,
        camera=camera.code if camera else None))
    events.publish(db_session=db_session, kind="camera_request.status", area_path=req.area_path,
                   permission=Permission.area_view, user_id=req.requester_id,
                   payload={"code": req.code, "status": to.value})
    db_session.flush()
    return step


# --- reading -----------------------------------------------------------------------------------


def get(*, db_session: Session, code: str) -> CameraRequest:
    req = db_session.scalar(select(CameraRequest).where(CameraRequest.code == (code or "").strip().upper()))
    if req is None:
        raise NotFound("No camera request %(code)s", code=code)
    return req


def get_visible(*, db_session: Session, principal: Principal, code: str) -> CameraRequest:
    req = get(db_session=db_session, code=code)
    if not may_see(principal, req):
        raise NotFound("No camera request %(code)s", code=code)  # not "forbidden": do not confirm it exists
    return req


def history(*, db_session: Session, req: CameraRequest) -> list[RequestStep]:
    return list(db_session.scalars(select(RequestStep).where(RequestStep.request_id == req.id)
                                   .order_by(RequestStep.at, RequestStep.id)))


def request_photos(*, db_session: Session, req: CameraRequest) -> list[RequestPhoto]:
    return list(db_session.scalars(select(RequestPhoto).where(RequestPhoto.request_id == req.id)
                                   .order_by(RequestPhoto.number)))


def supported_by(*, db_session: Session, req: CameraRequest, user_id: int) -> bool:
    return db_session.scalar(select(RequestSupport.id).where(RequestSupport.request_id == req.id,
                                                            RequestSupport.user_id == user_id)) is not None


def listing(*, db_session: Session, principal: Principal, status: str = "", mine: bool = False,
            limit: int = 500) -> list[CameraRequest]:
    stmt = select(CameraRequest)
    if mine:
        stmt = stmt.where(CameraRequest.requester_id == principal.user_id)
    else:
        stmt = stmt.where(visible_condition(principal))
    if status:
        if status not in set(RequestStatus):
            raise Invalid("Unknown status %(status)s", status=status)
        stmt = stmt.where(CameraRequest.status == status)
    stmt = stmt.order_by(CameraRequest.score.desc().nulls_last(), CameraRequest.created_at.desc()).limit(limit)
    return list(db_session.scalars(stmt))


def nearby(*, db_session: Session, settings: Settings, lat: float, lon: float, viewer: Principal | None,
           exclude_id: int | None = None) -> list[tuple[CameraRequest, float]]:
    """Open requests within the grouping radius that ``viewer`` may see (``None``: every one,
    for the system's own use): offered to a requester ("support this one") and shown together."""
    radius = settings.request_group_radius_m
    if radius <= 0:
        return []
    lat0, lat1, lon0, lon1 = box(lat, lon, radius)
    rows = db_session.scalars(select(CameraRequest).where(
        CameraRequest.status.in_([s.value for s in OPEN_REQUEST_STATUSES]),
        CameraRequest.lat.between(lat0, lat1), CameraRequest.lon.between(lon0, lon1)))
    out = [(r, distance_m(lat, lon, r.lat, r.lon)) for r in rows
           if r.id != exclude_id and (viewer is None or may_see(viewer, r))]
    return sorted([(r, d) for r, d in out if d <= radius], key=lambda x: x[1])


@dataclass
class Group:
    """Requests within the grouping radius of each other (linked in a chain): one voice."""

    requests: list[CameraRequest]

    @property
    def support(self) -> int:
        return sum(r.support_count for r in self.requests)

    @property
    def best_score(self) -> float:
        return max((r.score or 0.0) for r in self.requests)


def groups(requests: list[CameraRequest], radius_m: float) -> list[Group]:
    """Single-linkage groups of requests closer than ``radius_m``, best score first."""
    if not requests:
        return []
    n = len(requests)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if radius_m > 0 and n > 1:
        lat0 = float(np.mean([r.lat for r in requests]))
        from siskamling.placement.planner import project

        xy = project(np.array([r.lat for r in requests]), np.array([r.lon for r in requests]), lat0,
                     float(np.mean([r.lon for r in requests])))
        for i, j in cKDTree(xy).query_pairs(radius_m):
            parent[find(i)] = find(j)
    buckets: dict[int, list[CameraRequest]] = {}
    for i, r in enumerate(requests):
        buckets.setdefault(find(i), []).append(r)
    out = [Group(sorted(b, key=lambda r: (-(r.score or 0.0), r.created_at))) for b in buckets.values()]
    return sorted(out, key=lambda g: (-g.best_score, -g.support))


def public_figures(*, db_session: Session) -> list[dict[str, Any]]:
    """Per kelurahan: requests by status and supporters. No positions, no names."""
    index = get_index(db_session)
    rows = db_session.execute(select(CameraRequest.area_id, CameraRequest.status, func.count(),
                                     func.coalesce(func.sum(CameraRequest.support_count), 0))
                              .group_by(CameraRequest.area_id, CameraRequest.status)).all()
    out: dict[str, dict[str, Any]] = {}
    for area_id, status, count, supporters in rows:
        kel = next((info for info in index.chain(area_id) if info.level == "kelurahan"), None)
        key = kel.code if kel else "-"
        entry = out.setdefault(key, {"code": key, "name": kel.name if kel else "-", "total": 0, "supporters": 0,
                                     **{s.value: 0 for s in RequestStatus}})
        entry[status] += count
        entry["total"] += count
        entry["supporters"] += int(supporters)
    return sorted(out.values(), key=lambda e: (-e["total"], e["code"]))


def area_name(db_session: Session, area_id: int) -> str:
    """'RW 005, Kelurahan X' for a request's area."""
    names = [info.name for info in get_index(db_session).chain(area_id) if info.level in ("rt", "rw", "kelurahan")]
    return ", ".join(names) or "-"
