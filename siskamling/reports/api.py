"""JSON API for reports: staff work (queue, status, handover, assignment, merge), filing as a
logged-in user, duplicate suggestions, and the channel the city app (JAKI-style) pushes into."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from siskamling.accounts import service as accounts
from siskamling.audit.service import Actor
from siskamling.core.config import Settings
from siskamling.core.db import reader_session
from siskamling.core.deps import CurrentUser, SessionDep, SettingsDep, actor_of, client_ip, public
from siskamling.core.errors import Invalid, NotFound, Unauthenticated
from siskamling.core.web import run_intake
from siskamling.reports import catalogue, channels, schemas
from siskamling.reports import service as reports
from siskamling.reports.models import Channel, Report, Status
from siskamling.sla import service as sla

router = APIRouter(prefix="/api/v1", tags=["reports"])


def staff_dep(db: SessionDep, principal: CurrentUser) -> reports.Staff:
    return reports.staff_of(db, principal)


StaffDep = Annotated[reports.Staff, Depends(staff_dep)]


def app_client(request: Request, db: SessionDep) -> channels.ClientRef:
    """Guard for the city app's channel: its api key in ``X-Api-Key``. Read outside the request's
    write transaction and not held: a report then waits for its turn at intake without holding
    SQLite's write lock or a PostgreSQL connection. The routes that write mark the client used."""
    with reader_session(request.app.state.engine, db) as reader:
        client = channels.resolve(db_session=reader, key=request.headers.get("x-api-key"), touch_now=False)
    if db.in_transaction():
        db.commit()  # the reader was the request's own session (PostgreSQL): end its read now
    if client is None:
        raise Unauthenticated("A valid X-Api-Key header is required")
    return client


app_client.__siskamling_guard__ = "api-key"  # type: ignore[attr-defined]
AppClient = Annotated[channels.ClientRef, Depends(app_client)]


def tracking_url(request: Request, report: Report) -> str:
    return str(request.base_url).rstrip("/") + f"/laporan/{report.ticket}"


def report_out(request: Request, db: Session, staff: reports.Staff | None, report: Report,
               with_history: bool = False) -> schemas.ReportOut:
    reporter = None
    if reports.shows_reporter(staff, report):
        reporter = {"name": report.reporter_name, "phone": report.reporter_phone, "email": report.reporter_email,
                    "anonymous": report.anonymous, "confidential": report.confidential}
    history = deadlines = None
    if with_history and staff is not None and staff.is_staff:
        deadlines = [schemas.DeadlineOut(kind=c.kind, state=c.state, due_at=c.due_at,
                                         seconds_left=int(c.remaining.total_seconds()) if c.remaining else None,
                                         days=c.days, mode=c.mode, policy_version=c.policy_version)
                     for c in sla.clocks(db_session=db, report=report)]
    if with_history:
        history = [schemas.StepOut(at=s.at, kind=s.kind, status_from=s.status_from, status_to=s.status_to,
                                   unit_from=s.unit_from.name if s.unit_from else None,
                                   unit_to=s.unit_to.name if s.unit_to else None, note=s.note,
                                   by=s.actor_label if s.by_staff else None, public=s.public)
                   for s in reports.history(db_session=db, report=report, public_only=staff is None)]
    return schemas.ReportOut(
        ticket=report.ticket, status=report.status, category=report.category.code,
        category_name=report.category.name_id, description=report.description, attributes=report.attributes,
        lat=report.lat, lon=report.lon, area_code=report.area.code, area_name=report.area.name,
        unit=report.unit.name if report.unit else None,
        officer=report.officer.username if report.officer else None, emergency=report.emergency,
        public=report.public, channel=report.channel, external_id=report.external_id, reporter=reporter,
        support_count=report.support_count, photo_count=report.photo_count,
        duplicate_of=report.duplicate_of.ticket if report.duplicate_of else None, occurred_at=report.occurred_at,
        created_at=report.created_at, updated_at=report.updated_at, first_action_at=report.first_action_at,
        resolved_at=report.resolved_at, confirmed_at=report.confirmed_at, tracking_url=tracking_url(request, report),
        history=history, deadlines=deadlines,
    )


def decode_photos(items: list[schemas.PhotoIn]) -> list[tuple[str, bytes]]:
    out = []
    for n, item in enumerate(items, 1):
        try:
            out.append((item.filename or f"photo {n}", base64.b64decode(item.content_base64, validate=True)))
        except (binascii.Error, ValueError):
            raise Invalid("Photo %(n)s is not valid base64", n=n) from None
    return out


def new_report(data: schemas.ReportIn) -> reports.NewReport:
    return reports.NewReport(
        category=data.category, description=data.description, lat=data.lat, lon=data.lon, address=data.address,
        attributes=data.attributes, occurred_at=data.occurred_at, anonymous=data.reporter.anonymous,
        confidential=data.reporter.confidential, public=data.public, reporter_name=data.reporter.name,
        reporter_phone=data.reporter.phone, reporter_email=data.reporter.email,
        external_id=getattr(data, "external_id", None),
    )


def filed_out(request: Request, db: Session, settings: Settings, filed: reports.Filed) -> schemas.FiledOut:
    report = filed.report
    dupes = reports.nearby(db_session=db, settings=settings, category_code=report.category.code, lat=report.lat,
                           lon=report.lon, exclude_id=report.id)
    return schemas.FiledOut(ticket=report.ticket, status=report.status, tracking_url=tracking_url(request, report),
                            tracking_key=filed.track_key,
                            emergency_number=reports.EMERGENCY_NUMBER if report.emergency else None,
                            possible_duplicates=[r.ticket for r, _ in dupes if r.public])


# --- filing and finding --------------------------------------------------------------------------


@router.post("/reports", status_code=201, response_model=schemas.FiledOut, summary="File a report as yourself")
def file_report(data: schemas.ReportIn, request: Request, db: SessionDep, settings: SettingsDep,
                principal: CurrentUser) -> schemas.FiledOut:
    filed = reports.file_report(db_session=db, settings=settings, data=new_report(data),
                                actor=actor_of(request, principal), reporter=principal,
                                photo_files=decode_photos(data.photos))
    return filed_out(request, db, settings, filed)


@router.get("/reports", response_model=list[schemas.ReportOut], summary="The queue: reports you may see")
def queue(request: Request, db: SessionDep, staff: StaffDep,
          status: Annotated[list[str] | None, Query()] = None, category: str | None = None, unit: str | None = None,
          area: str | None = None, older_than_days: float | None = Query(None, ge=0), mine: bool = False,
          page: int = Query(1, ge=1), page_size: int = Query(50, ge=1, le=200)) -> JSONResponse:
    rows, more = reports.queue(db_session=db, staff=staff, f=reports.QueueFilter(
        status=status or [], category=category, unit=unit, area=area, older_than_days=older_than_days, mine=mine,
        page=page, page_size=page_size))
    body = [report_out(request, db, staff, r).model_dump(mode="json") for r in rows]
    headers = {"X-Has-More": "true" if more else "false"}
    if more:
        headers["Link"] = f'<{request.url.include_query_params(page=page + 1)}>; rel="next"'
    return JSONResponse(body, headers=headers)


@router.get("/reports/nearby", response_model=list[schemas.NearbyOut], dependencies=[Depends(public)],
            summary="Open public reports like this one nearby (support it instead of filing a duplicate)")
def nearby(db: SessionDep, settings: SettingsDep, category: str, lat: float, lon: float) -> list[schemas.NearbyOut]:
    found = reports.nearby(db_session=db, settings=settings, category_code=category, lat=lat, lon=lon)
    return [schemas.NearbyOut(ticket=r.ticket, status=r.status, distance_m=round(d / 10) * 10,
                              support_count=r.support_count, created_at=r.created_at,
                              description=r.description[:200]) for r, d in found if r.public]


def _visible(db: Session, staff: reports.Staff, ticket: str) -> Report:
    return reports.get_visible(db_session=db, staff=staff, ticket=ticket)


@router.get("/reports/{ticket}", response_model=schemas.ReportOut, summary="One report with its history")
def get_report(ticket: str, request: Request, db: SessionDep, staff: StaffDep) -> schemas.ReportOut:
    report = _visible(db, staff, ticket)
    if staff.is_staff:
        reports.record_view(db_session=db, report=report, user_id=staff.principal.user_id)
    return report_out(request, db, staff, report, with_history=True)


@router.post("/reports/{ticket}/status", response_model=schemas.ReportOut, summary="Move a report on")
def set_status(ticket: str, data: schemas.StatusIn, request: Request, db: SessionDep, staff: StaffDep,
               principal: CurrentUser) -> schemas.ReportOut:
    report = _visible(db, staff, ticket)
    try:
        to = Status(data.status)
    except ValueError:
        raise Invalid("Unknown status: %(status)s", status=data.status) from None
    reports.change_status(db_session=db, staff=staff, report=report, to=to, note=data.note,
                          actor=actor_of(request, principal), public=data.public)
    return report_out(request, db, staff, report, with_history=True)


@router.post("/reports/{ticket}/handover", response_model=schemas.ReportOut,
             summary="Hand a report to another unit (bukan kewenangan)")
def handover(ticket: str, data: schemas.HandoverIn, request: Request, db: SessionDep, staff: StaffDep,
             principal: CurrentUser) -> schemas.ReportOut:
    report = _visible(db, staff, ticket)
    unit = catalogue.unit(db_session=db, code=data.unit)
    reports.hand_over(db_session=db, staff=staff, report=report, unit=unit, reason=data.reason,
                      actor=actor_of(request, principal))
    return report_out(request, db, staff, report, with_history=True)


def _officer_id(db: Session, username: str) -> int:
    user = accounts.get_user(db_session=db, username=username)
    if user is None:
        raise Invalid("Unknown officer: %(name)s", name=username)
    return user.id


@router.post("/reports/{ticket}/assign", response_model=schemas.ReportOut, summary="Assign an officer (disposisi)")
def assign(ticket: str, data: schemas.AssignIn, request: Request, db: SessionDep, staff: StaffDep,
           principal: CurrentUser) -> schemas.ReportOut:
    report = _visible(db, staff, ticket)
    reports.assign(db_session=db, staff=staff, report=report, officer_id=_officer_id(db, data.officer),
                   actor=actor_of(request, principal))
    return report_out(request, db, staff, report, with_history=True)


@router.post("/reports/assign", summary="Assign many reports to one officer (all or none)")
def bulk_assign(data: schemas.BulkAssignIn, request: Request, db: SessionDep, staff: StaffDep,
                principal: CurrentUser) -> dict[str, Any]:
    officer_id = _officer_id(db, data.officer)
    actor = actor_of(request, principal)
    done = []
    for ticket in data.tickets:
        report = _visible(db, staff, ticket)
        reports.assign(db_session=db, staff=staff, report=report, officer_id=officer_id, actor=actor)
        done.append(report.ticket)
    return {"assigned": done, "officer": data.officer}


@router.post("/reports/{ticket}/comments", response_model=schemas.ReportOut, summary="Answer or note on a report")
def add_comment(ticket: str, data: schemas.CommentIn, request: Request, db: SessionDep, staff: StaffDep,
                principal: CurrentUser) -> schemas.ReportOut:
    report = _visible(db, staff, ticket)
    reports.comment(db_session=db, staff=staff if staff.is_staff else None, report=report, note=data.note,
                    actor=actor_of(request, principal), public=data.public)
    return report_out(request, db, staff, report, with_history=True)


@router.post("/reports/{ticket}/merge", response_model=schemas.ReportOut, summary="Merge a duplicate into another")
def merge(ticket: str, data: schemas.MergeIn, request: Request, db: SessionDep, staff: StaffDep,
          principal: CurrentUser) -> schemas.ReportOut:
    report = _visible(db, staff, ticket)
    into = _visible(db, staff, data.into)
    reports.merge(db_session=db, staff=staff, report=report, into=into, actor=actor_of(request, principal))
    return report_out(request, db, staff, report, with_history=True)


# --- the city app's channel ------------------------------------------------------------------------


def _app_actor(request: Request, client: channels.ClientRef) -> Actor:
    return Actor(None, f"app:{client.name}", client_ip(request))


@router.post("/channels/app/reports", status_code=201, response_model=schemas.FiledOut, tags=["city app"],
             summary="The city app pushes a report (Idempotency-Key header required)")
async def app_report(data: schemas.AppReportIn, request: Request, db: SessionDep, settings: SettingsDep,
                     client: AppClient) -> JSONResponse:
    # Photos are decoded and re-encoded first, in the general threadpool: not in the intake's
    # few threads, where five large photos would hold up every other report of the process.
    cleaned = (await run_in_threadpool(reports.clean_photos, settings, decode_photos(data.photos))
               if data.photos else [])
    return await run_intake(request, _app_report_filed, data, request, db, settings, client, cleaned)


def _app_report_filed(data: schemas.AppReportIn, request: Request, db: Session, settings: Settings,
                      client: channels.ClientRef, cleaned: list) -> JSONResponse:
    with reader_session(request.app.state.engine, db) as reader:
        def act() -> tuple[int, dict[str, Any]]:
            filed = reports.file_report(db_session=db, settings=settings, data=new_report(data),
                                        actor=_app_actor(request, client), channel=Channel.app, client=client,
                                        cleaned_photos=cleaned, reader=reader)
            channels.touch(db_session=db, client=client)
            return 201, filed_out(request, db, settings, filed).model_dump(mode="json")

        status, body, replayed = channels.idempotent(db_session=db, client=client,
                                                     key=request.headers.get("idempotency-key"),
                                                     body=data.model_dump(mode="json"), act=act)
        db.commit()  # in this thread: the write lock is not held across the hop back to the event loop
    return JSONResponse(body, status_code=status, headers={"Idempotent-Replayed": "true" if replayed else "false"})


def _app_report(db: Session, client: channels.ClientRef, external_id: str) -> Report:
    report = db.scalar(select(Report).where(Report.client_id == client.id, Report.external_id == external_id))
    if report is None:
        raise NotFound("Report not found")
    return report


@router.get("/channels/app/reports/{external_id}", response_model=schemas.ReportOut, tags=["city app"],
            summary="A report the app sent, with its public history")
def app_get(external_id: str, request: Request, db: SessionDep, client: AppClient) -> schemas.ReportOut:
    out = report_out(request, db, None, _app_report(db, client, external_id), with_history=True)
    return out


@router.post("/channels/app/reports/{external_id}/updates", response_model=schemas.ReportOut, tags=["city app"],
             summary="The reporter, through the app, comments, confirms the fix or disputes it")
def app_update(external_id: str, data: schemas.AppUpdateIn, request: Request, db: SessionDep,
               client: AppClient) -> JSONResponse:
    report = _app_report(db, client, external_id)
    actor = _app_actor(request, client)

    def act() -> tuple[int, dict[str, Any]]:
        if data.kind == "confirm":
            reports.confirm(db_session=db, report=report, actor=actor)
        elif data.kind == "dispute":
            reports.dispute(db_session=db, report=report, reason=data.note or "", actor=actor)
        else:
            reports.comment(db_session=db, staff=None, report=report, note=data.note or "", actor=actor, public=True)
        channels.touch(db_session=db, client=client)
        return 200, report_out(request, db, None, report, with_history=True).model_dump(mode="json")

    status, body, replayed = channels.idempotent(db_session=db, client=client,
                                                 key=request.headers.get("idempotency-key"),
                                                 body={"report": external_id, **data.model_dump(mode="json")}, act=act)
    return JSONResponse(body, status_code=status, headers={"Idempotent-Replayed": "true" if replayed else "false"})

