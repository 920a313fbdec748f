"""Camera request pages (ask, follow, support, review with the score's parts), the public
figures per kelurahan, and the admins' placement plans (run, map, compare, export)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from siskamling.audit import service as audit
from siskamling.audit.events import PlanExported
from siskamling.cameras.models import Camera, SiteType
from siskamling.core.config import Settings
from siskamling.core.deps import CurrentUser, FormDep, SessionDep, SettingsDep, actor_of, public, require
from siskamling.core.errors import DomainError, Forbidden, Invalid, NotFound
from siskamling.core.i18n import gettext as _
from siskamling.core.permissions import REQUESTER_ROLES, Permission
from siskamling.core.scope import Principal, scoped
from siskamling.core.web import form_amount, form_float, render, translated
from siskamling.placement import assess, plans
from siskamling.placement import service as requests_
from siskamling.placement.models import REASONS, RequestPhoto, RequestStatus
from siskamling.placement.service import MAX_PHOTOS, REASON_SITE, TRANSITIONS

router = APIRouter(include_in_schema=False)
Planner = Annotated[Principal, Depends(require(Permission.placement_plan))]
BASE = "/permintaan-kamera"
PLANS = "/rencana-kamera"


# --- asking ------------------------------------------------------------------------------------


def _form_page(request: Request, form: dict[str, Any], error: str | None = None, status_code: int = 200) -> Response:
    settings: Settings = request.app.state.settings
    return render(request, "placement/form.html", {
        "form": form, "error": error, "reasons": REASONS, "site_types": list(SiteType), "max_photos": MAX_PHOTOS,
        "max_mb": settings.report_photo_max_mb, "reason_site": {k: str(v) for k, v in REASON_SITE.items()},
    }, status_code=status_code)


def _may_ask_somewhere(principal: Principal) -> bool:
    return any(g.role in REQUESTER_ROLES for g in principal.grants)


@router.get(BASE + "/baru")
def request_form(request: Request, principal: CurrentUser):
    if not _may_ask_somewhere(principal):
        raise Forbidden("Only the ketua RT/RW, FKDM or the kelurahan operator of this area may ask for a camera here")
    return _form_page(request, {"reason": "", "site_type": "", "description": "", "lat": "", "lon": "", "hours": ""})


@router.get(BASE + "/sekitar")
def nearby(request: Request, db: SessionDep, settings: SettingsDep, principal: CurrentUser,
           lat: float | None = None, lon: float | None = None):
    rows = [] if lat is None or lon is None else requests_.nearby(db_session=db, settings=settings, lat=lat, lon=lon,
                                                                  viewer=principal)
    return render(request, "placement/_nearby.html", {"rows": rows, "radius": settings.request_group_radius_m})


@router.post(BASE)
def submit(request: Request, db: SessionDep, settings: SettingsDep, principal: CurrentUser, form: FormDep):
    values = {k: str(form.get(k, "") or "") for k in ("reason", "site_type", "description", "lat", "lon", "hours")}
    uploads = [f for f in form.getlist("photos") if isinstance(f, UploadFile) and f.filename]
    try:
        if len(uploads) > MAX_PHOTOS:
            raise Invalid("At most %(n)s photos per request", n=MAX_PHOTOS)
        limit = int(settings.report_photo_max_mb * 1_000_000)
        files = [(u.filename or "photo", u.file.read(limit + 1)) for u in uploads]
        data = requests_.NewRequest(lat=form_float(values["lat"], _("Latitude")),
                                    lon=form_float(values["lon"], _("Longitude")),
                                    reason=values["reason"], description=values["description"],
                                    site_type=values["site_type"] or None, hours=requests_.parse_hours(values["hours"]))
        req = requests_.file_request(db_session=db, settings=settings, principal=principal, data=data,
                                     actor=actor_of(request, principal), photo_files=files)
    except DomainError as exc:
        db.rollback()
        return _form_page(request, values, translated(exc), exc.status_code if exc.status_code != 404 else 422)
    return RedirectResponse(f"{BASE}/{req.code}?baru=1", status_code=303)


# --- following and reviewing -------------------------------------------------------------------


@router.get(BASE)
def listing(request: Request, db: SessionDep, settings: SettingsDep, principal: CurrentUser, status: str = ""):
    error = None
    try:
        rows = requests_.listing(db_session=db, principal=principal, status=status)
    except DomainError as exc:
        error, rows = translated(exc), []
    groups = requests_.groups(rows, settings.request_group_radius_m)
    names = {r.area_id: requests_.area_name(db, r.area_id) for r in rows}
    return render(request, "placement/list.html", {
        "groups": groups, "names": names, "status": status, "statuses": list(RequestStatus), "error": error,
        "may_ask": _may_ask_somewhere(principal),
        "may_plan": principal.can(Permission.placement_plan), "user_id": principal.user_id,
    }, status_code=400 if error else 200)


def _detail(request: Request, db: Session, settings: Settings, principal: Principal, code: str,
            error: str | None = None, status_code: int = 200) -> Response:
    req = requests_.get_visible(db_session=db, principal=principal, code=code)
    reviewer = requests_.may_review(principal, req)
    near = requests_.nearby(db_session=db, settings=settings, lat=req.lat, lon=req.lon, exclude_id=req.id,
                            viewer=principal)
    return render(request, "placement/detail.html", {
        "r": req, "error": error, "new": request.query_params.get("baru") == "1",
        "area": requests_.area_name(db, req.area_id), "steps": requests_.history(db_session=db, req=req),
        "photos": requests_.request_photos(db_session=db, req=req), "reviewer": reviewer,
        "moves": sorted(TRANSITIONS[RequestStatus(req.status)]) if reviewer else [],
        "is_requester": req.requester_id == principal.user_id, "near": near,
        "may_support": requests_.may_support(db, principal, req) and req.requester_id != principal.user_id,
        "supported": requests_.supported_by(db_session=db, req=req, user_id=principal.user_id),
        "parts": (req.score_parts or {}).get("parts", {}), "hours": requests_.format_hours(req.hours or []),
    }, status_code=status_code)


@router.get(BASE + "/{code}")
def detail(code: str, request: Request, db: SessionDep, settings: SettingsDep, principal: CurrentUser):
    return _detail(request, db, settings, principal, code)


def _act(request: Request, db: Session, settings: Settings, principal: Principal, code: str, act) -> Response:
    try:
        act(requests_.get_visible(db_session=db, principal=principal, code=code))
    except NotFound:
        raise
    except DomainError as exc:
        db.rollback()
        return _detail(request, db, settings, principal, code, translated(exc), exc.status_code)
    return RedirectResponse(f"{BASE}/{code}", status_code=303)


@router.post(BASE + "/{code}/dukung")
def support(code: str, request: Request, db: SessionDep, settings: SettingsDep, principal: CurrentUser):
    def act(req):
        requests_.support(db_session=db, settings=settings, principal=principal, req=req,
                          actor=actor_of(request, principal))

    return _act(request, db, settings, principal, code, act)


@router.post(BASE + "/{code}/status")
def change_status(code: str, request: Request, db: SessionDep, settings: SettingsDep, principal: CurrentUser,
                  form: FormDep):
    to = str(form.get("to", ""))

    def act(req):
        if to not in set(RequestStatus):
            raise Invalid("Unknown status %(status)s", status=to)
        requests_.change_status(db_session=db, settings=settings, principal=principal, req=req, to=RequestStatus(to),
                                reason=str(form.get("reason", "") or ""), camera_code=str(form.get("camera", "") or ""),
                                actor=actor_of(request, principal))

    return _act(request, db, settings, principal, code, act)


@router.post(BASE + "/{code}/nilai")
def reassess(code: str, request: Request, db: SessionDep, settings: SettingsDep, principal: CurrentUser):
    def act(req):
        if not requests_.may_review(principal, req):
            raise Forbidden("Only the area's operators and admins review camera requests")
        assess.store(db_session=db, settings=settings, req=req)

    return _act(request, db, settings, principal, code, act)


@router.get(BASE + "/{code}/foto/{number}.jpg")
def photo(code: str, number: int, db: SessionDep, settings: SettingsDep, principal: CurrentUser):
    req = requests_.get_visible(db_session=db, principal=principal, code=code)
    row = db.query(RequestPhoto).filter_by(request_id=req.id, number=number).one_or_none()
    if row is None:
        raise NotFound("Photo not found")
    return FileResponse(settings.media_dir / row.path, media_type="image/jpeg",
                        headers={"Cache-Control": "private, no-store"})


@router.get("/statistik-kamera", dependencies=[Depends(public)])
def public_figures(request: Request, db: SessionDep):
    rows = requests_.public_figures(db_session=db)
    accept = request.headers.get("accept", "")
    if "application/json" in accept and "text/html" not in accept:
        response: Response = JSONResponse(rows)
    else:
        response = render(request, "placement/figures.html", {"rows": rows, "statuses": list(RequestStatus)})
    response.headers["Vary"] = "Accept"
    return response


# --- plans (admins) ----------------------------------------------------------------------------


def _plans_page(request: Request, db: Session, form: dict[str, Any], error: str | None = None,
                status_code: int = 200) -> Response:
    return render(request, "placement/plans.html", {
        "plans": plans.listing(db_session=db), "form": form, "error": error, "site_types": list(SiteType),
    }, status_code=status_code)


def _default_form(settings: Settings) -> dict[str, Any]:
    return {"name": "", "mode": "count", "count": "10", "budget": "", "area_code": "", "since": "", "until": "",
            "radius_m": f"{settings.placement_coverage_radius_m:g}", "unit_cost": f"{settings.placement_unit_cost:.0f}",
            "site_costs": json.dumps(settings.placement_site_costs) if settings.placement_site_costs else "",
            "include_requests": True, "include_generated": True, "method": "auto",
            "time_limit": f"{min(30.0, settings.placement_time_limit_seconds):g}"}


@router.get(PLANS)
def plans_page(request: Request, db: SessionDep, settings: SettingsDep, admin: Planner):
    return _plans_page(request, db, _default_form(settings))


def _inputs(form: dict[str, Any]) -> plans.PlanInputs:
    costs: dict[str, float] = {}
    if form.get("site_costs"):
        try:
            costs = json.loads(form["site_costs"])
        except json.JSONDecodeError:
            raise Invalid('Costs per site type must be JSON, e.g. {"taman_24_jam": 45000000}') from None
        if not isinstance(costs, dict) or not all(isinstance(v, int | float) for v in costs.values()):
            raise Invalid('Costs per site type must be JSON, e.g. {"taman_24_jam": 45000000}')
    mode = form.get("mode", "count")
    count = form_amount(form.get("count"), _("Number of cameras")) if mode == "count" else None
    if count is not None and count != int(count):
        raise Invalid("The number of cameras must be a whole number")
    return plans.PlanInputs(
        name=form.get("name", ""), mode=mode, count=None if count is None else int(count),
        budget=form_amount(form.get("budget"), _("Budget")) if mode == "budget" else None,
        area_code=(form.get("area_code") or "").strip() or None,
        radius_m=form_float(form.get("radius_m"), _("Coverage radius")), since=form.get("since") or None,
        until=form.get("until") or None, include_requests=bool(form.get("include_requests")),
        include_generated=bool(form.get("include_generated")),
        unit_cost=form_amount(form.get("unit_cost"), _("Cost of one camera site")), site_costs=costs,
        method=form.get("method", "auto"), time_limit=form_float(form.get("time_limit"), _("Time limit")))


@router.post(PLANS)
def plan_run(request: Request, db: SessionDep, settings: SettingsDep, admin: Planner, form: FormDep):
    values = {k: str(form.get(k, "") or "") for k in _default_form(settings)}
    values["include_requests"] = form.get("include_requests") == "on"
    values["include_generated"] = form.get("include_generated") == "on"
    try:
        plan = plans.make_plan(db_session=db, settings=settings, inputs=_inputs(values), actor=actor_of(request, admin))
    except DomainError as exc:
        db.rollback()
        return _plans_page(request, db, values, translated(exc), exc.status_code)
    return RedirectResponse(f"{PLANS}/{plan.id}", status_code=303)


@router.get(PLANS + "/banding")
def plan_compare(request: Request, db: SessionDep, admin: Planner, a: int, b: int):
    comparison = plans.compare(plans.get(db_session=db, plan_id=a), plans.get(db_session=db, plan_id=b))
    return render(request, "placement/compare.html", {"c": comparison})


@router.get(PLANS + "/{plan_id}")
def plan_page(plan_id: int, request: Request, db: SessionDep, admin: Planner):
    plan = plans.get(db_session=db, plan_id=plan_id)
    return render(request, "placement/plan.html", {
        "plan": plan, "rows": plans.site_rows(db, plan), "others": [p for p in plans.listing(db_session=db) if p.id != plan.id],
    })


@router.get(PLANS + "/{plan_id}/lokasi.geojson")
def plan_geojson(plan_id: int, db: SessionDep, admin: Planner):
    plan = plans.get(db_session=db, plan_id=plan_id)
    features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [s.lon, s.lat]},
                 "properties": {"rank": s.rank, "kind": s.kind, "request": s.request.code if s.request else None,
                                "site_type": s.site_type, "cost": s.cost, "gain": s.gain}} for s in plan.sites]
    # Existing cameras through the scope helper, as every camera list: those the planner manages.
    visible = scoped(select(Camera.code, Camera.lat, Camera.lon).where(Camera.enabled.is_(True)), admin,
                     Permission.camera_manage, Camera.area_path)
    cameras = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {"kind": "camera", "code": code}} for code, lat, lon in db.execute(visible)]
    return JSONResponse({"type": "FeatureCollection", "radius_m": plan.inputs.get("radius_m"),
                         "features": features + cameras})


@router.get(PLANS + "/{plan_id}/ekspor.{fmt}")
def plan_export(plan_id: int, fmt: str, request: Request, db: SessionDep, admin: Planner):
    plan = plans.get(db_session=db, plan_id=plan_id)
    if fmt == "csv":
        body, media = plans.export_csv(db, plan), "text/csv; charset=utf-8"
    elif fmt == "xlsx":
        body, media = plans.export_xlsx(db, plan), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        raise NotFound("Export as csv or xlsx")
    audit.record(db_session=db, actor=actor_of(request, admin), area_path=None,
                 event=PlanExported(plan_id=plan.id, format=fmt))
    return Response(body, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="rencana-kamera-{plan.id}.{fmt}"'})


@router.post(PLANS + "/{plan_id}/ulang")
def plan_rerun(plan_id: int, request: Request, db: SessionDep, settings: SettingsDep, admin: Planner):
    plan = plans.get(db_session=db, plan_id=plan_id)
    try:
        new = plans.rerun(db_session=db, settings=settings, plan=plan, actor=actor_of(request, admin))
    except DomainError as exc:
        db.rollback()
        return _plans_page(request, db, _default_form(settings), translated(exc), exc.status_code)
    return RedirectResponse(f"{PLANS}/{new.id}", status_code=303)
