"""JSON API for camera requests (ask, follow, support, review, the score's parts) and placement
plans (make, read, export): the same services and rules as the pages."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from siskamling.core.deps import CurrentUser, SessionDep, SettingsDep, actor_of, require
from siskamling.core.errors import Invalid
from siskamling.core.permissions import Permission
from siskamling.core.scope import Principal
from siskamling.placement import plans
from siskamling.placement import service as requests_
from siskamling.placement.models import CameraRequest, Plan, RequestStatus

router = APIRouter(prefix="/api/v1", tags=["camera requests"])
Planner = Annotated[Principal, Depends(require(Permission.placement_plan))]


class PhotoIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filename: str = Field("photo.jpg", max_length=200)
    content_base64: str


class RequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)
    lat: float
    lon: float
    reason: str = Field(description="rawan_kriminalitas, taman_24_jam, rawan_banjir, sekolah, pasar, gang_gelap, lainnya")
    description: str = Field(max_length=4000)
    site_type: str | None = Field(None, description="a camera site type; default: the one the reason suggests")
    hours: str = Field("", max_length=100, description="spans of hours (WIB) that matter, e.g. '18-24, 0-5'")
    photos: list[PhotoIn] = Field(default_factory=list)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    status: RequestStatus
    reason: str | None = Field(None, max_length=2000)
    camera: str | None = Field(None, max_length=40, description="the installed camera's code (for terpasang)")


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)
    name: str
    count: int | None = None
    budget: float | None = None
    unit_cost: float | None = None
    site_costs: dict[str, float] = Field(default_factory=dict)
    area_code: str | None = None
    radius_m: float | None = None
    since: str | None = None
    until: str | None = None
    include_requests: bool = True
    include_generated: bool = True
    method: str = "auto"
    time_limit: float | None = None


def request_out(db: Session, principal: Principal, req: CameraRequest, full: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "code": req.code, "status": req.status, "status_reason": req.status_reason, "reason": req.reason,
        "site_type": req.site_type, "description": req.description, "lat": req.lat, "lon": req.lon,
        "area": requests_.area_name(db, req.area_id), "hours": req.hours, "support_count": req.support_count,
        "score": req.score, "camera": req.camera.code if req.camera else None,
        "mine": req.requester_id == principal.user_id, "created_at": req.created_at.isoformat(),
        "updated_at": req.updated_at.isoformat(),
    }
    if full:
        out["score_parts"] = (req.score_parts or {}).get("parts", {})
        # Who decided is for the reviewers; who backed a request is never shown (as on the page).
        reviewer = requests_.may_review(principal, req)
        out["history"] = [{"at": s.at.isoformat(), "status_from": s.status_from, "status_to": s.status_to,
                           "note": s.note, "by": s.actor_label if reviewer and s.status_to else None}
                          for s in requests_.history(db_session=db, req=req)]
    return out


@router.get("/camera-requests")
def list_requests(db: SessionDep, principal: CurrentUser, status: str = "", mine: bool = False):
    """The requests the user may see (their own, their area's), best score first."""
    rows = requests_.listing(db_session=db, principal=principal, status=status, mine=mine)
    return [request_out(db, principal, r) for r in rows]


@router.post("/camera-requests", status_code=201)
def create_request(body: RequestIn, request: Request, db: SessionDep, settings: SettingsDep, principal: CurrentUser):
    files = []
    for photo in body.photos:
        try:
            files.append((photo.filename, base64.b64decode(photo.content_base64, validate=True)))
        except (binascii.Error, ValueError):
            raise Invalid("A photo is not valid base64") from None
    req = requests_.file_request(db_session=db, settings=settings, principal=principal, actor=actor_of(request, principal),
                                 photo_files=files, data=requests_.NewRequest(
                                     lat=body.lat, lon=body.lon, reason=body.reason, description=body.description,
                                     site_type=body.site_type, hours=requests_.parse_hours(body.hours)))
    return request_out(db, principal, req, full=True)


@router.get("/camera-requests/{code}")
def get_request(code: str, db: SessionDep, principal: CurrentUser):
    return request_out(db, principal, requests_.get_visible(db_session=db, principal=principal, code=code), full=True)


@router.post("/camera-requests/{code}/support")
def support_request(code: str, request: Request, db: SessionDep, settings: SettingsDep, principal: CurrentUser):
    req = requests_.get_visible(db_session=db, principal=principal, code=code)
    requests_.support(db_session=db, settings=settings, principal=principal, req=req,
                      actor=actor_of(request, principal))
    return request_out(db, principal, req, full=True)


@router.post("/camera-requests/{code}/status")
def decide_request(code: str, body: DecisionIn, request: Request, db: SessionDep, settings: SettingsDep,
                   principal: CurrentUser):
    req = requests_.get_visible(db_session=db, principal=principal, code=code)
    requests_.change_status(db_session=db, settings=settings, principal=principal, req=req, to=body.status,
                            reason=body.reason, camera_code=body.camera, actor=actor_of(request, principal))
    return request_out(db, principal, req, full=True)


def plan_out(db: Session, plan: Plan, with_sites: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": plan.id, "name": plan.name, "method": plan.method, "status": plan.status, "value": plan.value,
        "bound": plan.bound, "gap": plan.gap, "greedy_value": plan.greedy_value, "total_weight": plan.total_weight,
        "already_covered": plan.already_covered, "demand_points": plan.demand_points, "candidates": plan.candidates,
        "cost": plan.cost, "seconds": plan.seconds, "rerun_of": plan.rerun_of_id, "inputs": plan.inputs,
        "created_at": plan.created_at.isoformat(), "created_by": plan.created_by,
    }
    if with_sites:
        out["sites"] = [dict(zip(plans.HEADER, row, strict=True)) for row in plans.site_rows(db, plan)]
    return out


@router.get("/plans")
def list_plans(db: SessionDep, admin: Planner):
    return [plan_out(db, p, with_sites=False) for p in plans.listing(db_session=db)]


@router.post("/plans", status_code=201)
def create_plan(body: PlanIn, request: Request, db: SessionDep, settings: SettingsDep, admin: Planner):
    if (body.count is None) == (body.budget is None):
        raise Invalid("Give either count or budget")
    inputs = plans.PlanInputs(mode="count" if body.count is not None else "budget", **body.model_dump())
    plan = plans.make_plan(db_session=db, settings=settings, inputs=inputs, actor=actor_of(request, admin))
    return JSONResponse(plan_out(db, plan), status_code=201)


@router.get("/plans/{plan_id}")
def get_plan(plan_id: int, db: SessionDep, admin: Planner):
    return plan_out(db, plans.get(db_session=db, plan_id=plan_id))

