"""Deadline pages: the breach ledger with appeals, the TKD report (admins) and the policy with
the city's days off (admins)."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from siskamling.core.deps import CurrentUser, FormDep, SessionDep, SettingsDep, actor_of, require
from siskamling.core.errors import DomainError, Invalid, NotFound
from siskamling.core.permissions import Permission
from siskamling.core.scope import Principal
from siskamling.core.web import render, translated
from siskamling.reports import service as reports
from siskamling.reports.pages import StaffDep  # the report pages' own: who may see and do what
from siskamling.sla import ledger
from siskamling.sla import service as sla
from siskamling.sla.calendar import national_holidays
from siskamling.sla.models import DayOff

router = APIRouter(include_in_schema=False)
SlaAdmin = Annotated[Principal, Depends(require(Permission.sla_manage))]




@router.get("/sla/ledger")
def ledger_page(request: Request, db: SessionDep, staff: StaffDep, month: str = ""):
    error = None
    try:
        rows = ledger.entries(db_session=db, staff=staff, month=month or None)
    except DomainError as exc:
        error, rows = translated(exc), []
    return render(request, "sla/ledger.html", {"rows": rows, "month": month, "error": error,
                                               "appeal_of": ledger.appeal_of,
                                               "admin": ledger.is_admin(staff)},
                  status_code=400 if error else 200)


def _entry(request: Request, db, staff: reports.Staff, breach_id: int, error: str | None = None,
           status_code: int = 200) -> Response:
    row = ledger.get_entry(db_session=db, staff=staff, breach_id=breach_id)
    appeal = ledger.appeal_of(row)
    return render(request, "sla/entry.html", {
        "b": row, "appeal": appeal, "error": error, "grounds": ledger.GROUNDS,
        "may_appeal": appeal is None and ledger.may_appeal(staff, row),
        "may_decide": appeal is not None and appeal.state == "pending" and ledger.may_decide(staff, row, appeal),
    }, status_code=status_code)


@router.get("/sla/breaches/{breach_id}")
def entry_page(request: Request, breach_id: int, db: SessionDep, staff: StaffDep):
    return _entry(request, db, staff, breach_id)


def _act_on_entry(request: Request, db, staff: reports.Staff, breach_id: int, act) -> Response:
    """Runs ``act(entry)``; bad input shows the entry again with the error, nothing stored."""
    try:
        act(ledger.get_entry(db_session=db, staff=staff, breach_id=breach_id))
    except NotFound:
        raise
    except DomainError as exc:
        db.rollback()
        return _entry(request, db, staff, breach_id, error=translated(exc), status_code=exc.status_code)
    return RedirectResponse(f"/sla/breaches/{breach_id}", status_code=303)


@router.post("/sla/breaches/{breach_id}/appeal")
def appeal_submit(request: Request, breach_id: int, db: SessionDep, settings: SettingsDep, staff: StaffDep,
                  principal: CurrentUser, form: FormDep):
    # A plain function (run in the threadpool): the form was read on the event loop, the database
    # work is not done there.
    upload = form.get("attachment")
    attachment = None
    if isinstance(upload, UploadFile) and upload.filename:
        attachment = (upload.filename, upload.file.read(ledger.MAX_ATTACHMENT + 1))
    return _act_on_entry(request, db, staff, breach_id, lambda row: ledger.appeal(
        db_session=db, settings=settings, staff=staff, breach=row, grounds=str(form.get("grounds", "")),
        reason=str(form.get("reason", "")), attachment=attachment, actor=actor_of(request, principal)))


@router.post("/sla/breaches/{breach_id}/decide")
def appeal_decide(request: Request, breach_id: int, db: SessionDep, staff: StaffDep, principal: CurrentUser,
                  form: FormDep):
    decision = str(form.get("decision", ""))

    def act(row) -> None:
        if decision not in ("accept", "reject"):
            raise Invalid("Accept or reject the appeal")
        ledger.decide(db_session=db, staff=staff, breach=row, accept=decision == "accept",
                      reason=str(form.get("reason", "")), actor=actor_of(request, principal))

    return _act_on_entry(request, db, staff, breach_id, act)


@router.get("/sla/breaches/{breach_id}/attachment")
def appeal_attachment(breach_id: int, db: SessionDep, settings: SettingsDep, staff: StaffDep):
    row = ledger.get_entry(db_session=db, staff=staff, breach_id=breach_id)
    appeal = ledger.appeal_of(row)
    if appeal is None or not appeal.attachment_path:
        raise NotFound("No attachment")
    return FileResponse(settings.media_dir / appeal.attachment_path, filename=appeal.attachment_name,
                        headers={"Cache-Control": "private, no-store"})


# --- performance (operators, admins) ----------------------------------------------------------

Manager = Annotated[Principal, Depends(require(Permission.report_manage))]


@router.get("/sla/performance")
def performance_page(request: Request, db: SessionDep, manager: Manager, by: str = "unit", months: int = 12):
    from siskamling.sla import performance

    staff = reports.staff_of(db, manager)
    try:
        result = performance.performance(db_session=db, staff=staff, by=by, months=months)
    except DomainError as exc:
        return render(request, "sla/performance.html", {"result": None, "by": by, "months": months,
                                                        "error": translated(exc)}, status_code=exc.status_code)
    peak = max((m.volume for m in result.months), default=0) or 1
    return render(request, "sla/performance.html", {"result": result, "by": by, "months": months, "error": None,
                                                    "peak": peak, "prior": performance.PRIOR_WEIGHT})


# --- TKD (admins) ------------------------------------------------------------------------------


@router.get("/sla/tkd")
def tkd_page(request: Request, db: SessionDep, admin: SlaAdmin, month: str = "", format: str = ""):
    month = month or ledger.previous_month()
    try:
        report = ledger.tkd_report(db_session=db, month=month)
    except DomainError as exc:
        return render(request, "sla/tkd.html", {"report": None, "month": month, "error": translated(exc)},
                      status_code=400)
    if format == "xlsx":
        return Response(ledger.as_xlsx(report), headers={"Content-Disposition": f'attachment; filename="tkd-{month}.xlsx"'},
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    if format == "csv":
        return Response(ledger.as_csv(report), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="tkd-{month}.csv"'})
    if format == "json":
        return Response(json.dumps(ledger.as_json(report), ensure_ascii=False), media_type="application/json")
    return render(request, "sla/tkd.html", {"report": report, "month": month, "error": None,
                                            "rule_text": ledger.rule_text(report)})


# --- policy and days off (admins) --------------------------------------------------------------


def _policy_page(request: Request, db, error: str | None = None, draft: str | None = None, status_code: int = 200):
    current = sla.current_policy(db)
    body = {"rules": current.rules, "pause_statuses": current.pause_statuses, "handover": current.handover,
            "reminder_days": current.reminder_days, "tkd": current.tkd or sla.DEFAULT_POLICY["tkd"]}
    year = date.today().year
    return render(request, "sla/policy.html", {
        "policy": current, "draft": draft or json.dumps(body, indent=2, ensure_ascii=False), "error": error,
        "days_off": db.query(DayOff).order_by(DayOff.day).all(), "national": national_holidays(year), "year": year,
    }, status_code=status_code)


@router.get("/sla/policy")
def policy_page(request: Request, db: SessionDep, admin: SlaAdmin):
    return _policy_page(request, db)


@router.post("/sla/policy")
def policy_save(request: Request, db: SessionDep, admin: SlaAdmin, form: FormDep):
    text = str(form.get("policy", ""))
    try:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise Invalid("The policy is not valid JSON (line %(line)s): %(error)s", line=exc.lineno,
                          error=exc.msg) from None
        if not isinstance(data, dict):
            raise Invalid("The policy is a JSON object")
        sla.save_policy(db_session=db, data=data, note=str(form.get("note", "")), actor=actor_of(request, admin))
    except DomainError as exc:
        db.rollback()
        return _policy_page(request, db, error=translated(exc), draft=text, status_code=exc.status_code)
    return RedirectResponse("/sla/policy", status_code=303)


@router.post("/sla/days-off")
def day_off_add(request: Request, db: SessionDep, admin: SlaAdmin, form: FormDep):
    try:
        try:
            day = date.fromisoformat(str(form.get("day", "")))
        except ValueError:
            raise Invalid("Give the date as YYYY-MM-DD") from None
        sla.add_day_off(db_session=db, day=day, name=str(form.get("name", "")), actor=actor_of(request, admin))
    except DomainError as exc:
        db.rollback()
        return _policy_page(request, db, error=translated(exc), status_code=exc.status_code)
    return RedirectResponse("/sla/policy", status_code=303)
