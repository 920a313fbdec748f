"""Citizen reports: intake (web, Open311, the city app, import), routing to a unit, the JAKI
workflow, duplicates and support, footage held as evidence, and who may see and do what.

First action: the first thing staff (an operator, the unit's head or officer) do to a report after
it arrives: a status change, a routing or handover, an assignment or a public answer. It is
stamped once (``first_action_at``/``first_action_by_id``); the deadline rules build on it.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session, make_transient_to_detached, selectinload

from siskamling.areas import service as areas
from siskamling.areas.models import Area
from siskamling.audit import service as audit
from siskamling.audit.events import (
    ReportAssigned,
    ReportConfirmed,
    ReportDisputed,
    ReportFiled,
    ReportHandedOver,
    ReportMerged,
    ReportStatusChanged,
)
from siskamling.audit.service import Actor
from siskamling.core.config import Settings
from siskamling.core.errors import Conflict, Forbidden, Invalid, NotFound
from siskamling.core.permissions import Permission, Role
from siskamling.core.scope import Principal
from siskamling.core.security import SecretBox, sha256_hex
from siskamling.core.time import utcnow
from siskamling.events import service as events
from siskamling.reports import catalogue, channels, photos
from siskamling.reports.models import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    Channel,
    Footage,
    IntakeClient,
    Photo,
    Report,
    Status,
    Step,
    Support,
    Unit,
    UnitMember,
    View,
    WebhookDelivery,
)
from siskamling.sla import service as sla

EARTH_M = 6_371_008.8
TICKET_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read out over the phone
EMERGENCY_NUMBER = "112"

# Which status may follow which, and who may make the move.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.menunggu: frozenset({Status.koordinasi, Status.disposisi, Status.ditolak, Status.duplikat}),
    Status.koordinasi: frozenset({Status.disposisi, Status.proses, Status.selesai, Status.ditolak, Status.duplikat}),
    Status.disposisi: frozenset({Status.proses, Status.selesai, Status.ditolak, Status.koordinasi}),
    Status.proses: frozenset({Status.selesai, Status.koordinasi}),
    Status.selesai: frozenset({Status.proses}),
    Status.ditolak: frozenset({Status.koordinasi}),
    Status.duplikat: frozenset(),
}
OFFICER_MOVES = frozenset({(Status.disposisi, Status.proses), (Status.proses, Status.selesai),
                           (Status.disposisi, Status.selesai)})
NEEDS_NOTE = frozenset({Status.ditolak, Status.selesai})


# --- geometry ----------------------------------------------------------------------------------


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_M * math.asin(min(1.0, math.sqrt(h)))


def box(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    dlat = math.degrees(radius_m / EARTH_M)
    dlon = dlat / max(0.01, math.cos(math.radians(lat)))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


def coarse(lat: float, lon: float, grid_m: float) -> tuple[float, float]:
    """A position snapped to the centre of its grid cell: what the public map shows."""
    step_lat = math.degrees(grid_m / EARTH_M)
    cell_lat = (math.floor(lat / step_lat) + 0.5) * step_lat
    step_lon = step_lat / max(0.01, math.cos(math.radians(cell_lat)))  # the row's width, the same for the whole row
    return round(cell_lat, 6), round((math.floor(lon / step_lon) + 0.5) * step_lon, 6)


def under(column, path: str):
    """``column`` is ``path`` or inside it, as an index range (area paths compare as bytes)."""
    return or_(column == path, and_(column >= path + "/", column < path + "0"))


# --- who may see and do what -------------------------------------------------------------------


@dataclass(frozen=True)
class Staff:
    """What a user may do with reports: the areas they manage and the units they belong to."""

    principal: Principal
    manage_paths: tuple[str, ...]
    unit_ids: frozenset[int]
    head_unit_ids: frozenset[int]

    @property
    def is_staff(self) -> bool:
        return bool(self.manage_paths or self.unit_ids)

    def manages(self, report: Report) -> bool:
        return any(report.area_path == p or report.area_path.startswith(p + "/") for p in self.manage_paths)

    def heads(self, report: Report) -> bool:
        return report.unit_id in self.head_unit_ids

    def works_on(self, report: Report) -> bool:
        return report.unit_id in self.unit_ids

    def sees(self, report: Report) -> bool:
        return self.manages(report) or self.works_on(report) or report.reporter_id == self.principal.user_id


def staff_of(db_session: Session, principal: Principal) -> Staff:
    rows = catalogue.memberships(db_session=db_session, user_id=principal.user_id)
    officer = Role.officer in principal.roles or Role.admin in principal.roles or Role.operator in principal.roles
    return Staff(
        principal=principal,
        manage_paths=tuple(principal.paths_for(Permission.report_manage)),
        unit_ids=frozenset(r.unit_id for r in rows) if officer else frozenset(),
        head_unit_ids=frozenset(r.unit_id for r in rows if r.is_head) if officer else frozenset(),
    )


def visible_condition(staff: Staff):
    terms = [under(Report.area_path, p) for p in staff.manage_paths]
    if staff.unit_ids:
        terms.append(Report.unit_id.in_(staff.unit_ids))
    terms.append(Report.reporter_id == staff.principal.user_id)
    return or_(*terms)


def get_visible(*, db_session: Session, staff: Staff, ticket: str) -> Report:
    report = db_session.scalar(select(Report).where(Report.ticket == ticket.upper()))
    if report is None or not staff.sees(report):
        raise NotFound("Report not found")
    return report


def get_by_ticket(*, db_session: Session, ticket: str) -> Report:
    report = db_session.scalar(select(Report).where(Report.ticket == (ticket or "").strip().upper()))
    if report is None:
        raise NotFound("Report not found")
    return report


def shows_reporter(staff: Staff | None, report: Report) -> bool:
    """Staff see who reported unless the reporter chose "rahasia"; the reporter always sees it."""
    if staff is None:
        return False
    if report.reporter_id is not None and report.reporter_id == staff.principal.user_id:
        return True
    return staff.sees(report) and staff.is_staff and not report.confidential


def track_key_valid(report: Report, key: str | None) -> bool:
    return bool(key) and report.track_key_hash is not None and secrets.compare_digest(
        report.track_key_hash, sha256_hex(key))


# --- intake ------------------------------------------------------------------------------------


@dataclass
class NewReport:
    category: str
    description: str
    lat: float | None = None
    lon: float | None = None
    address: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None
    anonymous: bool = False
    confidential: bool = False
    public: bool = True
    reporter_name: str | None = None
    reporter_phone: str | None = None
    reporter_email: str | None = None
    media_url: str | None = None
    external_id: str | None = None


@dataclass
class Filed:
    report: Report
    track_key: str
    duplicates: list[Report]


_INSERT_REPORT = insert(Report.__table__)
_INSERT_STEP = insert(Step.__table__)
_TICKET_TAKEN = select(Report.id).where(Report.ticket == bindparam("ticket"))


def _new_ticket(db_session: Session, now: datetime) -> str:
    connection = db_session.connection()
    for _ in range(20):
        ticket = "LP" + now.strftime("%y%m%d") + "".join(secrets.choice(TICKET_ALPHABET) for _ in range(5))
        if connection.scalar(_TICKET_TAKEN, {"ticket": ticket}) is None:
            return ticket
    raise Conflict("Could not allocate a ticket code; try again")


def resolve_address(db_session: Session, address: str) -> tuple[float, float]:
    """An Open311 ``address_string`` without coordinates: the centre of the kelurahan (or RW,
    "RW 05, Menteng") it names. We do not geocode street addresses."""
    text = " ".join(address.lower().replace(",", " ").split())
    rows = db_session.execute(select(Area.name, Area.level, Area.centroid_lat, Area.centroid_lon).where(
        Area.level.in_(("kelurahan", "kecamatan")), Area.centroid_lat.is_not(None))).all()
    best = None
    for name, level, lat, lon in rows:
        if name and name.lower() in text:
            rank = (level == "kelurahan", len(name))
            if best is None or rank > best[0]:
                best = (rank, lat, lon)
    if best is None:
        raise Invalid("The address could not be placed: give lat and long, or name the kelurahan")
    return best[1], best[2]


@dataclass(frozen=True)
class Place:
    area_id: int
    path: str
    name: str


def _locate(db_session: Session, settings: Settings, data: NewReport) -> Place:
    """The deepest area at the report's position, from the in-memory area index (no query)."""
    if data.lat is None or data.lon is None:
        if not data.address:
            raise Invalid("Give the position (lat and long) or an address")
        data.lat, data.lon = resolve_address(db_session, data.address)
    info = areas.area_at(db_session, data.lat, data.lon, settings.locate_edge_tolerance_m)
    return Place(info.id, info.path, info.name)


def _clean_text(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    text = value.strip()
    return text[:limit] if text else None


def _validate(data: NewReport, require_description: bool) -> None:
    description = (data.description or "").strip()
    if require_description and len(description) < 10:
        raise Invalid("Describe what happened (at least 10 characters)")
    if len(description) > 4000:
        raise Invalid("The description is too long (at most 4,000 characters)")
    data.description = description
    if data.reporter_email and ("@" not in data.reporter_email or len(data.reporter_email) > 254):
        raise Invalid("The email address is not valid")
    if data.reporter_phone:
        digits = "".join(c for c in data.reporter_phone if c.isdigit())
        if not 8 <= len(digits) <= 15:
            raise Invalid("The phone number is not valid")
    if data.media_url and not data.media_url.startswith(("http://", "https://")):
        raise Invalid("media_url must be an http(s) address")


def clean_photos(settings: Settings, photo_files: list[tuple[str, bytes]]) -> list[photos.CleanPhoto]:
    """Uploaded photos checked and re-encoded without their metadata (a caller may do this before
    it queues for intake: ``file_report(cleaned_photos=…)``)."""
    if len(photo_files) > photos.MAX_PHOTOS:
        raise Invalid("At most %(n)s photos per report", n=photos.MAX_PHOTOS)
    max_bytes = int(settings.report_photo_max_mb * 1_000_000)
    return [photos.clean(raw, max_bytes=max_bytes, name=name) for name, raw in photo_files]


def file_report(*, db_session: Session, settings: Settings, data: NewReport, actor: Actor,
                reporter: Principal | None = None, channel: Channel = Channel.web,
                client: channels.ClientRef | None = None, photo_files: list[tuple[str, bytes]] | None = None,
                now: datetime | None = None, require_description: bool = True,
                reader: Session | None = None, cleaned_photos: list[photos.CleanPhoto] | None = None) -> Filed:
    """Checks everything first, then stores the report, its photos, its first step, the evidence
    holds on nearby footage, the audit entry and the operators' alert, in the caller's transaction.
    Photos are written to disk (fsynced) before the transaction commits and removed if it fails.

    ``reader`` (``core.db.reader_session``), when given, does the lookups (category, place, route,
    ticket, cameras nearby) outside the write transaction, so that on SQLite the write lock is held
    only for the inserts: the intake routes pass one. ``cleaned_photos`` (``clean_photos``) are
    photos already checked and re-encoded, instead of ``photo_files``."""
    reader = reader or db_session
    _validate(data, require_description)
    category_row = catalogue.intake_category(db_session=reader, code=(data.category or "").strip())
    answers = catalogue.check_answers(category_row, data.attributes or {})
    cleaned = cleaned_photos if cleaned_photos is not None else clean_photos(settings, photo_files or [])
    place = _locate(reader, settings, data)
    now = now or utcnow()
    occurred = data.occurred_at or now
    if occurred.tzinfo is None:
        raise Invalid("The time of the event needs a time zone")
    if occurred > now + timedelta(minutes=5):
        raise Invalid("The time of the event is in the future")
    if client is not None and data.external_id:
        existing = db_session.scalar(select(Report).where(Report.client_id == client.id,
                                                          Report.external_id == data.external_id))
        if existing is not None:
            raise Conflict("A report with external id %(id)s was already received (ticket %(ticket)s)",
                           id=data.external_id, ticket=existing.ticket)
    unit_id, unit_code = catalogue.intake_route(db_session=reader, category_row=category_row, area_path=place.path)
    policy = sla.current_policy(reader, recent=True)
    calendar = sla.work_calendar(reader) if sla.needs_calendar(policy, category_row) else sla.WorkCalendar()
    key = secrets.token_urlsafe(18)
    named = reporter is not None and not data.anonymous
    values: dict[str, Any] = dict(
        ticket=_new_ticket(reader, now), category_id=category_row.id, description=data.description,
        attributes=answers, lat=data.lat, lon=data.lon, address=_clean_text(data.address, 300),
        area_id=place.area_id, area_path=place.path, status=Status.menunggu.value, unit_id=unit_id, officer_id=None,
        duplicate_of_id=None, channel=str(channel), client_id=client.id if client else None,
        external_id=_clean_text(data.external_id, 100), reporter_id=reporter.user_id if reporter else None,
        reporter_name=None if data.anonymous else (
            _clean_text(data.reporter_name, 200) or (reporter.full_name if named else None)),
        reporter_phone=_clean_text(data.reporter_phone, 32), reporter_email=_clean_text(data.reporter_email, 254),
        anonymous=data.anonymous, confidential=data.confidential, public=data.public,
        emergency=category_row.emergency and answers.get("sedang_terjadi", "ya") != "tidak",
        media_url=_clean_text(data.media_url, 500), track_key_hash=sha256_hex(key), occurred_at=occurred,
        created_at=now, updated_at=now, first_action_at=None, first_action_by_id=None, resolved_at=None,
        closed_at=None, confirmed_at=None, reopen_count=0, support_count=0, photo_count=len(cleaned),
    )
    # Intake is the hot path. Everything that needs no lock is computed first: the report object,
    # its first step, its clocks (the six-day rule, under the policy read above), its audit entry,
    # and whether any camera is near. The write (on SQLite, the one lock every process shares)
    # then holds only plain INSERTs, and the report object joins the session as already stored
    # (every column given, so nothing is read back).
    report = Report(**values)
    step = dict(at=now, kind="filed", status_from=None, status_to=Status.menunggu.value, unit_from_id=None,
                unit_to_id=unit_id, officer_id=None, actor_id=actor.id, actor_label=actor.label, by_staff=False,
                note=None, public=True)
    clocks = sla.deadline_rows(category=category_row, started_at=now, policy=policy, calendar=calendar)
    entry = audit.prepare(actor=actor, area_path=place.path, event=ReportFiled(
        ticket=values["ticket"], category=category_row.code, channel=str(channel), unit=unit_code,
        emergency=values["emergency"]))
    cameras_near = cameras_within(reader, settings.report_footage_radius_m, data.lat, data.lon)

    connection = db_session.connection()
    report.id = report_id = connection.execute(_INSERT_REPORT, values).inserted_primary_key[0]
    make_transient_to_detached(report)
    db_session.add(report)
    connection.execute(_INSERT_STEP, {**step, "report_id": report_id})
    sla.insert_deadlines(db_session=db_session, report_id=report_id, rows=clocks)
    # One flush at the end for the photos and holds (each flush is a round of the unit of work).
    db_session.autoflush = False
    try:
        with photos.stored(settings.media_dir, f"reports/{now:%Y/%m}/{report.ticket}", cleaned) as saved:
            for n, relative, photo in saved:
                db_session.add(Photo(report_id=report.id, number=n, path=relative, width=photo.width,
                                     height=photo.height, bytes=len(photo.data), sha256=photo.sha256))
            if cameras_near:
                hold_footage(db_session=db_session, settings=settings, report=report, actor=actor,
                             category=category_row)
            audit.append(db_session=db_session, entry=entry)
            events.publish(db_session=db_session, kind="report.emergency" if report.emergency else "report.new",
                           area_path=report.area_path, permission=Permission.report_manage,
                           payload={"ticket": report.ticket, "category": category_row.name_id,
                                    "area": place.name, "emergency": report.emergency})
            db_session.flush()
    finally:
        db_session.autoflush = True
    return Filed(report=report, track_key=key, duplicates=[])


def discard_photos(settings: Settings, report: Report, db_session: Session) -> None:
    """Removes a report's photo files (the caller's transaction failed after they were written)."""
    for path in db_session.scalars(select(Photo.path).where(Photo.report_id == report.id)):
        (settings.media_dir / path).unlink(missing_ok=True)


# --- footage as evidence -----------------------------------------------------------------------


def _camera_in_box():
    from siskamling.cameras.models import Camera

    return select(Camera.id).where(Camera.lat.between(bindparam("lat0"), bindparam("lat1")),
                                   Camera.lon.between(bindparam("lon0"), bindparam("lon1")))


_CAMERA_IN_BOX = _camera_in_box()


_ANY_CAMERA_IN_BOX = _CAMERA_IN_BOX.limit(1)


def cameras_within(db_session: Session, radius_m: float, lat: float, lon: float) -> bool:
    """Whether any camera is in the square around the point (one query, no objects): most
    reports have none, and skip the footage search."""
    if radius_m <= 0:
        return False
    lat0, lat1, lon0, lon1 = box(lat, lon, radius_m)
    in_box = {"lat0": lat0, "lat1": lat1, "lon0": lon0, "lon1": lon1}
    return db_session.connection().execute(_ANY_CAMERA_IN_BOX, in_box).first() is not None


def hold_footage(*, db_session: Session, settings: Settings, report: Report, actor: Actor,
                 category=None) -> list[Footage]:
    """Cameras within the radius whose recordings cover the report's time (or that are recording
    now, for the minutes still to come) get an evidence hold on the window around it. Callers ask
    ``cameras_within`` first (one query, no objects): most reports have no camera near."""
    from siskamling.cameras import service as cameras
    from siskamling.cameras.models import Camera, Health, RecordingSegment

    radius = settings.report_footage_radius_m  # the caller asked ``cameras_within`` first
    if radius <= 0:
        return []
    window = timedelta(minutes=settings.report_footage_minutes)
    start, end = report.occurred_at - window, report.occurred_at + window
    lat0, lat1, lon0, lon1 = box(report.lat, report.lon, radius)
    in_box = {"lat0": lat0, "lat1": lat1, "lon0": lon0, "lon1": lon1}
    near = db_session.scalars(select(Camera).where(Camera.id.in_(_CAMERA_IN_BOX)), in_box)
    category = category or report.category
    out = []
    for camera in near:
        d = distance_m(report.lat, report.lon, camera.lat, camera.lon)
        if d > radius:
            continue
        recorded = db_session.scalar(select(RecordingSegment.id).where(
            RecordingSegment.camera_id == camera.id, RecordingSegment.started_at < end,
            RecordingSegment.ended_at > start).limit(1))
        recording_now = camera.enabled and camera.health in (Health.online, Health.degraded) and end > utcnow()
        if recorded is None and not recording_now:
            continue
        hold = cameras.place_hold(db_session=db_session, camera=camera, start=start, end=end, actor=actor,
                                  reason=f"Laporan warga {report.ticket} ({category.code})")
        row = Footage(report_id=report.id, camera_id=camera.id, hold_id=hold.id, distance_m=round(d, 1))
        db_session.add(row)
        out.append(row)
    if out:
        db_session.flush()
    return out


def footage(*, db_session: Session, report: Report) -> list[Footage]:
    return list(db_session.scalars(select(Footage).where(Footage.report_id == report.id).order_by(Footage.distance_m)))


# --- duplicates and support --------------------------------------------------------------------


def nearby(*, db_session: Session, settings: Settings, category_code: str, lat: float, lon: float,
           exclude_id: int | None = None, now: datetime | None = None, limit: int = 10) -> list[tuple[Report, float]]:
    """Open reports of the same category within the radius and time window: offered to a
    reporter as "support this one instead" and to operators as candidates to merge."""
    radius = settings.report_duplicate_radius_m
    if radius <= 0:
        return []
    category_row = catalogue.category(db_session=db_session, code=category_code)
    since = (now or utcnow()) - timedelta(days=settings.report_duplicate_days)
    lat0, lat1, lon0, lon1 = box(lat, lon, radius)
    stmt = select(Report).where(
        Report.category_id == category_row.id, Report.status.in_([s.value for s in OPEN_STATUSES]),
        Report.created_at >= since, Report.lat.between(lat0, lat1), Report.lon.between(lon0, lon1))
    if exclude_id is not None:
        stmt = stmt.where(Report.id != exclude_id)
    found = [(r, distance_m(lat, lon, r.lat, r.lon)) for r in db_session.scalars(stmt.limit(200))]
    return sorted([(r, d) for r, d in found if d <= radius], key=lambda x: x[1])[:limit]


def support(*, db_session: Session, report: Report, supporter: str, actor: Actor) -> bool:
    """Counts a resident's "me too" once; False if they already supported it."""
    if not report.status_enum.is_open:
        raise Conflict("This report is closed; file a new one if the problem is back")
    if db_session.scalar(select(Support.id).where(Support.report_id == report.id, Support.supporter == supporter)):
        return False
    db_session.add(Support(report_id=report.id, supporter=supporter))
    db_session.execute(update(Report).where(Report.id == report.id)
                       .values(support_count=Report.support_count + 1))
    db_session.add(Step(report_id=report.id, kind="support", actor_id=actor.id, actor_label=actor.label, public=True))
    db_session.flush()
    db_session.refresh(report)
    return True


# --- the workflow ------------------------------------------------------------------------------


def _stamp(db_session: Session, report: Report, staff: Staff | None, now: datetime, actor: Actor) -> None:
    report.updated_at = now
    if staff is not None and report.first_action_at is None:
        report.first_action_at, report.first_action_by_id = now, actor.id


def _step(db_session: Session, report: Report, actor: Actor, staff: Staff | None, kind: str, now: datetime,
          **values) -> Step:
    step = Step(report_id=report.id, at=now, kind=kind, actor_id=actor.id, actor_label=actor.label,
                by_staff=staff is not None, **values)
    db_session.add(step)
    db_session.flush()
    _notify_client(db_session, report, kind, step)
    return step


def _require_note(note: str | None, message: str) -> str:
    note = (note or "").strip()
    if len(note) < 5:
        raise Invalid(message)
    return note[:4000]


def change_status(*, db_session: Session, staff: Staff, report: Report, to: Status, note: str | None,
                  actor: Actor, public: bool = True, now: datetime | None = None) -> Step:
    now = now or utcnow()
    current = report.status_enum
    if to == current:
        raise Conflict("The report is already %(status)s", status=str(to))
    if to == Status.duplikat:
        raise Invalid("Merge the report into the one it duplicates")
    if to not in TRANSITIONS[current]:
        raise Conflict("A report cannot go from %(from)s to %(to)s", **{"from": str(current), "to": str(to)})
    manager = staff.manages(report) or staff.heads(report)
    officer = staff.works_on(report) and report.officer_id == staff.principal.user_id
    if not manager and not (officer and (current, to) in OFFICER_MOVES):
        raise Forbidden("You may not move this report from %(from)s to %(to)s", **{"from": str(current), "to": str(to)})
    if to in NEEDS_NOTE:
        note = _require_note(note, "Say why (at least 5 characters): the reporter reads it")
    elif to.value in sla.current_policy(db_session).pause_statuses:
        note = _require_note(note, "Say why the deadline stops while the report is in this status (at least 5 "
                                   "characters)")
    if to == Status.disposisi and report.officer_id is None:
        raise Invalid("Assign an officer to hand the report on (disposisi)")
    report.status = to
    if to == Status.selesai:
        report.resolved_at = now
    if to in CLOSED_STATUSES:
        report.closed_at = now
    elif current in CLOSED_STATUSES:
        report.closed_at = report.resolved_at = None
    _stamp(db_session, report, staff, now, actor)
    step = _step(db_session, report, actor, staff, "status", now, status_from=current, status_to=to,
                 note=(note or "").strip() or None, public=public)
    audit.record(db_session=db_session, actor=actor, area_path=report.area_path, event=ReportStatusChanged(
        ticket=report.ticket, status_from=current, status_to=to, note=step.note))
    return step


def hand_over(*, db_session: Session, staff: Staff, report: Report, unit: Unit, reason: str, actor: Actor,
              now: datetime | None = None) -> Step:
    """The unit passes the report to another ("bukan kewenangan"), or an operator routes it: it
    goes back to koordinasi with the new unit, its officer cleared; every hop stays in history."""
    now = now or utcnow()
    if not (staff.manages(report) or staff.heads(report)):
        raise Forbidden("Only the unit's head or the area's operator may hand a report over")
    if not report.status_enum.is_open:
        raise Conflict("A closed report cannot be handed over")
    if report.unit_id == unit.id:
        raise Conflict("The report is already with %(unit)s", unit=unit.name)
    reason = _require_note(reason, "Say why the report goes to another unit (at least 5 characters)")
    before = db_session.get(Unit, report.unit_id) if report.unit_id else None
    old_status = report.status_enum
    report.unit, report.officer = unit, None
    report.status = Status.koordinasi
    _stamp(db_session, report, staff, now, actor)
    step = _step(db_session, report, actor, staff, "handover", now, status_from=old_status,
                 status_to=Status.koordinasi, unit_from_id=before.id if before else None, unit_to_id=unit.id,
                 note=reason)
    audit.record(db_session=db_session, actor=actor, area_path=report.area_path, event=ReportHandedOver(
        ticket=report.ticket, unit_from=before.code if before else None, unit_to=unit.code, reason=reason))
    return step


def assign(*, db_session: Session, staff: Staff, report: Report, officer_id: int, actor: Actor,
           now: datetime | None = None) -> Step:
    """Disposisi: an operator or the unit's head hands the report to one of the unit's officers."""
    now = now or utcnow()
    if not (staff.manages(report) or staff.heads(report)):
        raise Forbidden("Only the unit's head or the area's operator may assign a report")
    if report.unit_id is None:
        raise Invalid("Route the report to a unit before assigning an officer")
    if not report.status_enum.is_open:
        raise Conflict("A closed report cannot be assigned")
    member = db_session.scalar(select(UnitMember).where(UnitMember.unit_id == report.unit_id,
                                                        UnitMember.user_id == officer_id))
    if member is None:
        raise Invalid("That officer is not a member of %(unit)s", unit=report.unit.name)
    old_status = report.status_enum
    report.officer = member.user
    if old_status in (Status.menunggu, Status.koordinasi):
        report.status = Status.disposisi
    _stamp(db_session, report, staff, now, actor)
    step = _step(db_session, report, actor, staff, "assign", now, status_from=old_status, status_to=report.status,
                 officer_id=officer_id)
    audit.record(db_session=db_session, actor=actor, area_path=report.area_path,
                 event=ReportAssigned(ticket=report.ticket, officer=member.user.username))
    return step


def comment(*, db_session: Session, staff: Staff | None, report: Report, note: str, actor: Actor, public: bool,
            now: datetime | None = None) -> Step:
    now = now or utcnow()
    note = _require_note(note, "Write at least 5 characters")
    if staff is not None and not (staff.manages(report) or staff.works_on(report)):
        raise Forbidden("You may not answer this report")
    if staff is not None and public:
        _stamp(db_session, report, staff, now, actor)
    else:
        report.updated_at = now
    return _step(db_session, report, actor, staff, "comment", now, note=note, public=public)


def merge(*, db_session: Session, staff: Staff, report: Report, into: Report, actor: Actor,
          now: datetime | None = None) -> Step:
    now = now or utcnow()
    if not staff.manages(report):
        raise Forbidden("Only the area's operator may merge reports")
    if into.id == report.id or into.duplicate_of_id == report.id:
        raise Invalid("A report cannot be merged into itself")
    if not report.status_enum.is_open:
        raise Conflict("A closed report cannot be merged")
    if into.category_id != report.category_id:
        raise Invalid("Only reports of the same category can be merged")
    old_status = report.status_enum
    report.status, report.duplicate_of, report.closed_at = Status.duplikat, into, now
    _stamp(db_session, report, staff, now, actor)
    step = _step(db_session, report, actor, staff, "merge", now, status_from=old_status, status_to=Status.duplikat,
                 note=into.ticket)
    supporter = f"user:{report.reporter_id}" if report.reporter_id else f"report:{report.ticket}"
    if not db_session.scalar(select(Support.id).where(Support.report_id == into.id, Support.supporter == supporter)):
        db_session.add(Support(report_id=into.id, supporter=supporter, at=now))
        into.support_count += 1 + report.support_count
    _step(db_session, into, actor, staff, "merged_in", now, note=report.ticket)
    audit.record(db_session=db_session, actor=actor, area_path=report.area_path,
                 event=ReportMerged(ticket=report.ticket, into=into.ticket))
    return step


def confirm(*, db_session: Session, report: Report, actor: Actor, now: datetime | None = None) -> Step:
    """The reporter agrees the problem is fixed."""
    now = now or utcnow()
    if report.status_enum != Status.selesai:
        raise Conflict("Only a finished report can be confirmed")
    if report.confirmed_at is not None:
        raise Conflict("You have already confirmed this report")
    report.confirmed_at, report.updated_at = now, now
    step = _step(db_session, report, actor, None, "confirm", now)
    audit.record(db_session=db_session, actor=actor, area_path=report.area_path,
                 event=ReportConfirmed(ticket=report.ticket))
    return step


def dispute(*, db_session: Session, report: Report, reason: str, actor: Actor, now: datetime | None = None) -> Step:
    """The reporter says it is not fixed: the report reopens (proses) with the reason."""
    now = now or utcnow()
    if report.status_enum != Status.selesai:
        raise Conflict("Only a finished report can be disputed")
    reason = _require_note(reason, "Say what is still wrong (at least 5 characters)")
    report.status, report.resolved_at, report.closed_at, report.confirmed_at = Status.proses, None, None, None
    report.reopen_count += 1
    report.updated_at = now
    step = _step(db_session, report, actor, None, "dispute", now, status_from=Status.selesai,
                 status_to=Status.proses, note=reason)
    audit.record(db_session=db_session, actor=actor, area_path=report.area_path,
                 event=ReportDisputed(ticket=report.ticket, reason=reason))
    return step


def record_view(*, db_session: Session, report: Report, user_id: int, now: datetime | None = None) -> None:
    now = now or utcnow()
    row = db_session.scalar(select(View).where(View.report_id == report.id, View.user_id == user_id))
    if row is None:
        db_session.add(View(report_id=report.id, user_id=user_id, first_at=now, last_at=now, count=1))
    else:
        row.last_at, row.count = now, row.count + 1


def viewers(*, db_session: Session, report: Report) -> list[View]:
    return list(db_session.scalars(select(View).where(View.report_id == report.id).order_by(View.last_at.desc())))


def history(*, db_session: Session, report: Report, public_only: bool = False) -> list[Step]:
    stmt = select(Step).where(Step.report_id == report.id).order_by(Step.at, Step.id)
    if public_only:
        stmt = stmt.where(Step.public.is_(True))
    return list(db_session.scalars(stmt))


def report_photos(*, db_session: Session, report: Report) -> list[Photo]:
    return list(db_session.scalars(select(Photo).where(Photo.report_id == report.id).order_by(Photo.number)))


# --- queues ------------------------------------------------------------------------------------


@dataclass
class QueueFilter:
    status: list[str] = field(default_factory=list)
    category: str | None = None
    unit: str | None = None
    area: str | None = None
    older_than_days: float | None = None
    mine: bool = False
    overdue: bool = False  # only reports past a deadline (the red mark)
    sort: str = "new"  # new: newest first; due: the nearest deadline first
    page: int = 1
    page_size: int = 50


def queue(*, db_session: Session, staff: Staff, f: QueueFilter, now: datetime | None = None) -> tuple[list[Report], bool]:
    """The operator's (or officer's) queue, newest first; returns the page and whether more follow."""
    now = now or utcnow()
    stmt = select(Report).where(visible_condition(staff))
    if f.status:
        bad = [s for s in f.status if s not in Status.__members__]
        if bad:
            raise Invalid("Unknown status: %(status)s", status=", ".join(bad))
        stmt = stmt.where(Report.status.in_(f.status))
    if f.category:
        stmt = stmt.where(Report.category_id == catalogue.category(db_session=db_session, code=f.category,
                                                                    active_only=False).id)
    if f.unit:
        stmt = stmt.where(Report.unit_id == catalogue.unit(db_session=db_session, code=f.unit).id)
    if f.area:
        area = db_session.scalar(select(Area).where(Area.code == f.area))
        if area is None:
            raise NotFound("Unknown area: %(code)s", code=f.area)
        stmt = stmt.where(under(Report.area_path, area.path))
    if f.older_than_days:
        stmt = stmt.where(Report.created_at <= now - timedelta(days=f.older_than_days))
    if f.mine:
        stmt = stmt.where(Report.officer_id == staff.principal.user_id)
    if f.overdue:
        stmt = stmt.where(Report.id.in_(sla.overdue_condition(now)))
    if f.sort not in ("new", "due"):
        raise Invalid("Sort by new or due")
    order = [Report.created_at.desc(), Report.id.desc()]
    if f.sort == "due":
        order = [sla.next_due().asc().nulls_last(), *order]
    size = max(1, min(f.page_size, 200))
    page = max(1, f.page)
    # A page shows each report's area, unit, officer and duplicate: a query each, not one per row.
    stmt = stmt.options(selectinload(Report.area).load_only(Area.code, Area.name, Area.path),
                        selectinload(Report.unit), selectinload(Report.officer),
                        selectinload(Report.duplicate_of).load_only(Report.ticket))
    rows = list(db_session.scalars(stmt.order_by(*order).offset((page - 1) * size).limit(size + 1)))
    return rows[:size], len(rows) > size


def status_counts(*, db_session: Session, staff: Staff) -> dict[str, int]:
    rows = db_session.execute(select(Report.status, func.count()).where(visible_condition(staff))
                              .where(Report.status.in_([s.value for s in OPEN_STATUSES])).group_by(Report.status))
    return {status: n for status, n in rows}


def public_reports(*, db_session: Session, since: datetime, limit: int = 2000) -> list[Report]:
    return list(db_session.scalars(select(Report).where(Report.public.is_(True), Report.created_at >= since,
                                                        Report.status != Status.duplikat)
                                   .order_by(Report.created_at.desc()).limit(limit)))


# --- webhooks (outbox) -------------------------------------------------------------------------


def _notify_client(db_session: Session, report: Report, kind: str, step: Step) -> None:
    """Tells the app the report came from about each change, through the webhook outbox."""
    if report.client_id is None or not step.public:
        return
    client = db_session.get(IntakeClient, report.client_id)
    if client is None or not client.webhook_url or not client.active:
        return
    payload = {
        "event": f"report.{kind}", "ticket": report.ticket, "external_id": report.external_id,
        "status": report.status, "unit": report.unit.name if report.unit else None,
        "note": step.note, "at": step.at.isoformat(), "step_id": step.id,
    }
    db_session.add(WebhookDelivery(client_id=client.id, report_id=report.id, event=payload["event"],
                                   payload=payload, next_attempt_at=utcnow()))


def open_webhook_secret(settings: Settings, client: IntakeClient) -> str | None:
    return SecretBox(settings.secret_key).open(client.webhook_secret_enc) if client.webhook_secret_enc else None
