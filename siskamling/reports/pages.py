"""Report pages: the mobile-first form anyone can file with, the tracking page, the public map,
and for staff the queue and each report's page."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from siskamling.accounts import service as accounts
from siskamling.areas.models import Area
from siskamling.cameras import service as cameras
from siskamling.cameras.models import Purpose
from siskamling.core.config import Settings
from siskamling.core.deps import (
    CSRF_COOKIE,
    CurrentUser,
    FormDep,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    actor_of,
    public,
    require,
)
from siskamling.core.errors import DomainError, Invalid, NotFound
from siskamling.core.i18n import current_language
from siskamling.core.i18n import gettext as _
from siskamling.core.permissions import Permission
from siskamling.core.scope import Principal
from siskamling.core.time import WIB, utcnow
from siskamling.core.web import form_float, render, translated
from siskamling.reports import catalogue, photos
from siskamling.reports import service as reports
from siskamling.reports.models import OPEN_STATUSES, Photo, Report, Status
from siskamling.sla import service as sla

router = APIRouter(include_in_schema=False)
Public = [Depends(public)]
KEY_PARAM = "kunci"  # the anonymous reporter's secret, in their tracking link


def _staff(db: Session, principal: Principal | None) -> reports.Staff | None:
    return reports.staff_of(db, principal) if principal else None


def _form_defaults(principal: Principal | None) -> dict[str, Any]:
    return {"category": "", "description": "", "lat": "", "lon": "", "public": True, "anonymous": False,
            "confidential": False, "name": principal.full_name if principal else "", "phone": "", "email": ""}


def _form_page(request: Request, db: Session, principal: Principal | None, form: dict[str, Any],
               error: str | None = None, status_code: int = 200, answers: dict[str, Any] | None = None) -> Response:
    cats = catalogue.categories(db_session=db)
    chosen = next((c for c in cats if c.code == form.get("category")), None)
    return render(request, "reports/form.html", {
        "form": form, "error": error, "categories": cats, "chosen": chosen, "answers": answers or {},
        "max_photos": photos.MAX_PHOTOS, "lang": current_language.get(),
        "max_mb": request.app.state.settings.report_photo_max_mb,
    }, status_code=status_code)


@router.get("/lapor", dependencies=Public)
def report_form(request: Request, db: SessionDep, principal: PrincipalDep, category: str | None = None):
    form = _form_defaults(principal) | ({"category": category} if category else {})
    return _form_page(request, db, principal, form)


@router.get("/lapor/pertanyaan", dependencies=Public)
def category_questions(request: Request, db: SessionDep, category: str = ""):
    """The chosen category's extra questions and, for an emergency, the number to call now."""
    try:
        chosen = catalogue.category(db_session=db, code=category) if category else None
    except NotFound:
        chosen = None
    return render(request, "reports/_questions.html", {"chosen": chosen, "answers": {}})


@router.get("/lapor/serupa", dependencies=Public)
def similar(request: Request, db: SessionDep, settings: SettingsDep, category: str = "", lat: float | None = None,
            lon: float | None = None):
    found = []
    if category and lat is not None and lon is not None:
        try:
            found = [(r, d) for r, d in reports.nearby(db_session=db, settings=settings, category_code=category,
                                                       lat=lat, lon=lon) if r.public]
        except DomainError:
            found = []
    return render(request, "reports/_similar.html", {"found": found})


def _answers(form: FormData) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in form.multi_items():
        if key.startswith("attribute[") and isinstance(value, str):
            code = key[len("attribute["):key.index("]")]
            if key.endswith("[]"):
                out.setdefault(code, []).append(value)
            else:
                out[code] = value
    return out


@router.post("/lapor", dependencies=Public)
def submit_report(request: Request, db: SessionDep, settings: SettingsDep, principal: PrincipalDep, form: FormDep):
    values = {k: form.get(k, "") for k in ("category", "description", "lat", "lon", "name", "phone", "email")}
    values |= {k: form.get(k) == "on" for k in ("public", "anonymous", "confidential")}
    answers = _answers(form)
    uploads = [f for f in form.getlist("photos") if isinstance(f, UploadFile) and f.filename]
    try:
        if len(uploads) > photos.MAX_PHOTOS:
            raise Invalid("At most %(n)s photos per report", n=photos.MAX_PHOTOS)
        limit = int(settings.report_photo_max_mb * 1_000_000)
        files = []
        for upload in uploads:
            raw = upload.file.read(limit + 1)
            files.append((upload.filename or "photo", raw))
        lat, lon = form_float(values["lat"], _("Latitude")), form_float(values["lon"], _("Longitude"))
        if lat is None or lon is None:
            raise Invalid("Mark the place on the map, or use your device's location")
        data = reports.NewReport(
            category=values["category"], description=values["description"], lat=lat, lon=lon, attributes=answers,
            anonymous=values["anonymous"], confidential=values["confidential"], public=values["public"],
            reporter_name=values["name"] or None, reporter_phone=values["phone"] or None,
            reporter_email=values["email"] or None)
        filed = reports.file_report(db_session=db, settings=settings, data=data, actor=actor_of(request, principal),
                                    reporter=principal, photo_files=files)
    except DomainError as exc:
        db.rollback()
        return _form_page(request, db, principal, values, translated(exc), exc.status_code if exc.status_code != 404
                          else 422, answers)
    ticket = filed.report.ticket
    return RedirectResponse(f"/laporan/{ticket}?{KEY_PARAM}={filed.track_key}&baru=1", status_code=303)


# --- the public map ----------------------------------------------------------------------------


@router.get("/laporan", dependencies=Public)
def public_map(request: Request, db: SessionDep):
    since = utcnow() - timedelta(days=30)
    recent = reports.public_reports(db_session=db, since=since, limit=50)
    return render(request, "reports/public.html", {"recent": recent, "lang": current_language.get()})


@router.get("/laporan/peta.geojson", dependencies=Public)
def public_geojson(db: SessionDep, settings: SettingsDep, days: int = 30):
    """Public reports of the last days at coarse positions: no reporter, no exact place."""
    days = max(1, min(days, 365))
    features = []
    for r in reports.public_reports(db_session=db, since=utcnow() - timedelta(days=days)):
        lat, lon = reports.coarse(r.lat, r.lon, settings.report_public_grid_m)
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                         "properties": {"ticket": r.ticket, "status": r.status, "category": r.category.name_id,
                                        "open": r.status_enum in OPEN_STATUSES}})
    return JSONResponse({"type": "FeatureCollection", "features": features},
                        headers={"Cache-Control": "public, max-age=60"})


# --- tracking ----------------------------------------------------------------------------------


def _may_track(report: Report, staff: reports.Staff | None, key: str | None) -> bool:
    return report.public or reports.track_key_valid(report, key) or (staff is not None and staff.sees(report))


def _is_reporter(report: Report, principal: Principal | None, key: str | None) -> bool:
    return reports.track_key_valid(report, key) or (
        principal is not None and report.reporter_id is not None and report.reporter_id == principal.user_id)


def _tracked(db: Session, ticket: str, principal: Principal | None, key: str | None) -> Report:
    report = reports.get_by_ticket(db_session=db, ticket=ticket)
    if not _may_track(report, _staff(db, principal), key):
        raise NotFound("Report not found")
    return report


def _tracking_page(request: Request, db: Session, settings: Settings, report: Report, principal: Principal | None,
                   key: str | None, error: str | None = None, status_code: int = 200, new: bool = False) -> Response:
    lat, lon = reports.coarse(report.lat, report.lon, settings.report_public_grid_m)
    return render(request, "reports/track.html", {
        "report": report, "steps": reports.history(db_session=db, report=report, public_only=True),
        "photos": reports.report_photos(db_session=db, report=report), "coarse": (lat, lon),
        "is_reporter": _is_reporter(report, principal, key), "key": key, "new": new, "error": error,
        "emergency_number": reports.EMERGENCY_NUMBER, "lang": current_language.get(),
        "is_open": report.status_enum in OPEN_STATUSES,
    }, status_code=status_code)


@router.get("/laporan/{ticket}", dependencies=Public)
def track(ticket: str, request: Request, db: SessionDep, settings: SettingsDep, principal: PrincipalDep,
          kunci: str | None = None, baru: bool = False):
    report = _tracked(db, ticket, principal, kunci)
    return _tracking_page(request, db, settings, report, principal, kunci, new=baru)


def _form_key(form: FormData) -> str | None:
    value = form.get(KEY_PARAM)
    return value if isinstance(value, str) and value else None


@router.post("/laporan/{ticket}/konfirmasi", dependencies=Public)
def confirm(ticket: str, request: Request, db: SessionDep, settings: SettingsDep, principal: PrincipalDep,
            form: FormDep):
    key = _form_key(form)
    report = _tracked(db, ticket, principal, key)
    if not _is_reporter(report, principal, key):
        raise NotFound("Report not found")
    try:
        reports.confirm(db_session=db, report=report, actor=actor_of(request, principal))
    except DomainError as exc:
        db.rollback()
        return _tracking_page(request, db, settings, report, principal, key, translated(exc), exc.status_code)
    return RedirectResponse(f"/laporan/{report.ticket}" + (f"?{KEY_PARAM}={key}" if key else ""), status_code=303)


@router.post("/laporan/{ticket}/sanggah", dependencies=Public)
def dispute(ticket: str, request: Request, db: SessionDep, settings: SettingsDep, principal: PrincipalDep,
            form: FormDep):
    key = _form_key(form)
    report = _tracked(db, ticket, principal, key)
    if not _is_reporter(report, principal, key):
        raise NotFound("Report not found")
    try:
        reports.dispute(db_session=db, report=report, reason=str(form.get("reason", "")),
                        actor=actor_of(request, principal))
    except DomainError as exc:
        db.rollback()
        return _tracking_page(request, db, settings, report, principal, key, translated(exc), exc.status_code)
    return RedirectResponse(f"/laporan/{report.ticket}" + (f"?{KEY_PARAM}={key}" if key else ""), status_code=303)


@router.post("/laporan/{ticket}/dukung", dependencies=Public)
def support(ticket: str, request: Request, db: SessionDep, settings: SettingsDep, principal: PrincipalDep):
    """"Me too": once per person (per account, or per browser for visitors without one)."""
    report = _tracked(db, ticket, principal, None)
    if principal is not None:
        supporter = f"user:{principal.user_id}"
    else:
        browser = request.cookies.get(CSRF_COOKIE) or ""
        supporter = "browser:" + hashlib.sha256(browser.encode()).hexdigest()[:40]
    try:
        reports.support(db_session=db, report=report, supporter=supporter, actor=actor_of(request, principal))
    except DomainError as exc:
        db.rollback()
        return _tracking_page(request, db, settings, report, principal, None, translated(exc), exc.status_code)
    return RedirectResponse(f"/laporan/{report.ticket}", status_code=303)


@router.get("/laporan/{ticket}/foto/{number}.jpg", dependencies=Public)
def photo(ticket: str, number: int, db: SessionDep, settings: SettingsDep, principal: PrincipalDep,
          kunci: str | None = None):
    report = _tracked(db, ticket, principal, kunci)
    row = db.query(Photo).filter_by(report_id=report.id, number=number).one_or_none()
    if row is None:
        raise NotFound("Photo not found")
    cache = "public, max-age=3600" if report.public else "private, no-store"
    return FileResponse(settings.media_dir / row.path, media_type="image/jpeg", headers={"Cache-Control": cache})


# --- the catalogue (admins) --------------------------------------------------------------------

CatalogueAdmin = Annotated[Principal, Depends(require(Permission.catalogue_manage))]


def _catalogue_page(request: Request, db: Session, notice: str | None = None, error: str | None = None,
                    created_key: tuple[str, str | None] | None = None, status_code: int = 200) -> Response:
    from siskamling.reports import channels, webhooks
    from siskamling.reports.models import RoutingRule

    rules = db.query(RoutingRule).all()
    paths = {r.area_path for r in rules} | {u.area_path for u in catalogue.units(db_session=db) if u.area_path}
    names = dict(db.query(Area.path, Area.name).filter(Area.path.in_(paths)).all()) if paths else {}
    return render(request, "reports/catalogue.html", {
        "categories": catalogue.categories(db_session=db, active_only=False), "units": catalogue.units(db_session=db),
        "members": {u.id: catalogue.members(db_session=db, unit_id=u.id) for u in catalogue.units(db_session=db)},
        "rules": sorted(rules, key=lambda r: (r.area_path, r.category.code if r.category else "")),
        "area_names": names, "clients": channels.clients(db_session=db),
        "deliveries": webhooks.log_for(db_session=db, limit=50), "notice": notice, "error": error,
        "created_key": created_key, "lang": current_language.get(),
    }, status_code=status_code)


@router.get("/reports/catalogue")
def catalogue_page(request: Request, db: SessionDep, admin: CatalogueAdmin):
    return _catalogue_page(request, db)


def _area_path(db: Session, code: str) -> str | None:
    code = code.strip()
    if not code:
        return None
    area = db.query(Area).filter_by(code=code).one_or_none()
    if area is None:
        raise NotFound("Unknown area: %(code)s", code=code)
    return area.path


@router.post("/reports/catalogue/{what}")
def catalogue_change(what: str, request: Request, db: SessionDep, settings: SettingsDep, admin: CatalogueAdmin,
                     form: FormDep):
    from siskamling.reports import channels, webhooks

    field = {k: str(v).strip() for k, v in form.items() if isinstance(v, str)}
    actor = actor_of(request, admin)
    created_key = None
    try:
        if what == "unit":
            catalogue.save_unit(db_session=db, code=field.get("code", ""), name=field.get("name", ""),
                                kind=field.get("kind", ""), area_path=_area_path(db, field.get("area", "")),
                                actor=actor)
            notice = _("Unit %(code)s saved") % {"code": field.get("code")}
        elif what == "member":
            user = accounts.get_user(db_session=db, username=field.get("username", ""))
            if user is None:
                raise Invalid("Unknown officer: %(name)s", name=field.get("username", ""))
            unit = catalogue.unit(db_session=db, code=field.get("unit", ""))
            catalogue.add_member(db_session=db, unit_row=unit, user_id=user.id, is_head=field.get("head") == "on",
                                 actor=actor)
            notice = _("%(user)s added to %(unit)s") % {"user": user.username, "unit": unit.name}
        elif what == "rule":
            path = _area_path(db, field.get("area", ""))
            if path is None:
                raise Invalid("Give the area the rule covers")
            code = field.get("category", "")
            row = catalogue.category(db_session=db, code=code, active_only=False) if code else None
            catalogue.set_rule(db_session=db, category_row=row, area_path=path,
                               unit_row=catalogue.unit(db_session=db, code=field.get("unit", "")), actor=actor)
            notice = _("Routing rule saved")
        elif what == "client":
            _client, key, secret = channels.create_client(db_session=db, settings=settings, name=field.get("name", ""),
                                                          webhook_url=field.get("webhook") or None, actor=actor)
            created_key, notice = (key, secret), _("Client created: copy its key now, it is not shown again")
        elif what == "retry":
            webhooks.retry_now(db_session=db, delivery_id=int(field.get("delivery") or 0))
            notice = _("The delivery will be sent again")
        else:
            raise NotFound("Page not found")
    except (DomainError, ValueError) as exc:
        db.rollback()
        message = translated(exc) if isinstance(exc, DomainError) else str(exc)
        return _catalogue_page(request, db, error=message, status_code=getattr(exc, "status_code", 422))
    return _catalogue_page(request, db, notice=notice, created_key=created_key)


# --- staff -------------------------------------------------------------------------------------


def _staff_required(db: SessionDep, principal: CurrentUser) -> reports.Staff:
    return reports.staff_of(db, principal)


StaffDep = Annotated[reports.Staff, Depends(_staff_required)]


@router.get("/reports")
def queue_page(request: Request, db: SessionDep, staff: StaffDep, status: str = "", category: str = "",
               unit: str = "", area: str = "", older: str = "", mine: bool = False, overdue: bool = False,
               sort: str = "new", page: int = 1):
    error = None
    f = reports.QueueFilter(status=[status] if status else [], category=category or None, unit=unit or None,
                            area=area or None, mine=mine, overdue=overdue, sort=sort, page=max(1, page))
    try:
        f.older_than_days = float(older) if older else None
        rows, more = reports.queue(db_session=db, staff=staff, f=f)
    except (DomainError, ValueError) as exc:
        error = translated(exc) if isinstance(exc, DomainError) else str(exc)
        rows, more = [], False
    officers = _assignable(db, staff)
    return render(request, "reports/queue.html", {
        "rows": rows, "more": more, "f": f, "error": error, "counts": reports.status_counts(db_session=db, staff=staff),
        "statuses": list(Status), "categories": catalogue.categories(db_session=db, active_only=False),
        "units": catalogue.units(db_session=db), "officers": officers, "lang": current_language.get(),
        "query": {"status": status, "category": category, "unit": unit, "area": area, "older": older, "sort": sort},
        "now": utcnow(), "marks": sla.marks(db_session=db, report_ids=[r.id for r in rows]),
    })


def _assignable(db: Session, staff: reports.Staff) -> list[tuple[str, str, str]]:
    """(username, name, unit) of the officers this user may assign reports to."""
    units = {u.id: u for u in catalogue.units(db_session=db)}
    out = []
    for unit_id, unit in units.items():
        if not (staff.manage_paths or unit_id in staff.head_unit_ids):
            continue
        for m in catalogue.members(db_session=db, unit_id=unit_id):
            out.append((m.user.username, m.user.full_name, unit.name))
    return out


@router.post("/reports/assign")
def bulk_assign(request: Request, db: SessionDep, staff: StaffDep, principal: CurrentUser, form: FormDep):
    tickets = [t for t in form.getlist("ticket") if isinstance(t, str)]
    username = str(form.get("officer") or "")
    try:
        if not tickets:
            raise Invalid("Tick the reports to assign")
        user = accounts.get_user(db_session=db, username=username)
        if user is None:
            raise Invalid("Choose an officer")
        for ticket in tickets:
            report = reports.get_visible(db_session=db, staff=staff, ticket=ticket)
            reports.assign(db_session=db, staff=staff, report=report, officer_id=user.id,
                           actor=actor_of(request, principal))
    except DomainError as exc:
        db.rollback()
        return render(request, "core/error.html", {"status": exc.status_code, "message": translated(exc)},
                      status_code=exc.status_code)
    return RedirectResponse("/reports?assigned=%d" % len(tickets), status_code=303)


def _detail(request: Request, db: Session, settings: Settings, staff: reports.Staff, report: Report,
            error: str | None = None, status_code: int = 200) -> Response:
    holds = []
    for row in reports.footage(db_session=db, report=report):
        may_play = cameras.can(db, staff.principal, row.camera, Purpose.recordings)
        start, end = row.hold.starts_at.astimezone(WIB), row.hold.ends_at.astimezone(WIB)
        holds.append({"row": row, "may_play": may_play, "start": start.strftime("%Y-%m-%dT%H:%M:%S"),
                      "end": end.strftime("%Y-%m-%dT%H:%M:%S")})
    dupes = []
    if report.status_enum in OPEN_STATUSES and staff.manages(report):
        dupes = reports.nearby(db_session=db, settings=settings, category_code=report.category.code, lat=report.lat,
                               lon=report.lon, exclude_id=report.id)
    return render(request, "reports/detail.html", {
        "report": report, "steps": reports.history(db_session=db, report=report),
        "photos": reports.report_photos(db_session=db, report=report), "footage": holds,
        "viewers": reports.viewers(db_session=db, report=report), "dupes": dupes, "error": error,
        "clocks": sla.clocks(db_session=db, report=report),
        "shows_reporter": reports.shows_reporter(staff, report), "manages": staff.manages(report),
        "heads": staff.heads(report), "officer": report.officer_id == staff.principal.user_id,
        "moves": sorted(reports.TRANSITIONS[report.status_enum] - {Status.duplikat}),
        "units": [u for u in catalogue.units(db_session=db) if u.id != report.unit_id],
        "officers": [(m.user.username, m.user.full_name) for m in catalogue.members(db_session=db,
                                                                                     unit_id=report.unit_id)]
        if report.unit_id else [], "lang": current_language.get(),
    }, status_code=status_code)


@router.get("/reports/{ticket}")
def detail(ticket: str, request: Request, db: SessionDep, settings: SettingsDep, staff: StaffDep):
    report = reports.get_visible(db_session=db, staff=staff, ticket=ticket)
    if staff.is_staff:
        reports.record_view(db_session=db, report=report, user_id=staff.principal.user_id)
    return _detail(request, db, settings, staff, report)


@router.post("/reports/{ticket}/{action}")
def act(ticket: str, action: str, request: Request, db: SessionDep, settings: SettingsDep, staff: StaffDep,
        principal: CurrentUser, form: FormDep):
    report = reports.get_visible(db_session=db, staff=staff, ticket=ticket)
    actor = actor_of(request, principal)
    note = str(form.get("note") or "")
    try:
        if action == "status":
            try:
                to = Status(str(form.get("status")))
            except ValueError:
                raise Invalid("Unknown status: %(status)s", status=str(form.get("status"))) from None
            reports.change_status(db_session=db, staff=staff, report=report, to=to, note=note, actor=actor,
                                  public=form.get("internal") != "on")
        elif action == "handover":
            unit = catalogue.unit(db_session=db, code=str(form.get("unit") or ""))
            reports.hand_over(db_session=db, staff=staff, report=report, unit=unit, reason=note, actor=actor)
        elif action == "assign":
            user = accounts.get_user(db_session=db, username=str(form.get("officer") or ""))
            if user is None:
                raise Invalid("Choose an officer")
            reports.assign(db_session=db, staff=staff, report=report, officer_id=user.id, actor=actor)
        elif action == "comment":
            reports.comment(db_session=db, staff=staff, report=report, note=note, actor=actor,
                            public=form.get("internal") != "on")
        elif action == "merge":
            into = reports.get_visible(db_session=db, staff=staff, ticket=str(form.get("into") or ""))
            reports.merge(db_session=db, staff=staff, report=report, into=into, actor=actor)
        else:
            raise NotFound("Page not found")
    except DomainError as exc:
        db.rollback()
        report = reports.get_visible(db_session=db, staff=staff, ticket=ticket)
        return _detail(request, db, settings, staff, report, translated(exc), exc.status_code)
    return RedirectResponse(f"/reports/{report.ticket}", status_code=303)
