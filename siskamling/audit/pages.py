"""Admins browse, filter and export the audit log."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from siskamling.areas import service as areas
from siskamling.audit import service as audit
from siskamling.audit.events import AuditExported
from siskamling.audit.service import AuditFilter
from siskamling.core.deps import SessionDep, actor_of, require
from siskamling.core.errors import Invalid, NotFound
from siskamling.core.permissions import Permission
from siskamling.core.scope import Principal, in_scope
from siskamling.core.time import WIB
from siskamling.core.web import render

router = APIRouter(include_in_schema=False)  # HTML pages; the JSON API is in api.py
Auditor = Annotated[Principal, Depends(require(Permission.audit_view))]


def parse_filter(db, principal: Principal, action: str | None, actor: str | None, object_type: str | None,
                 since: str | None, until: str | None, area: str | None = None) -> AuditFilter:
    """Dates are Jakarta calendar days (``until`` inclusive); ``area`` is an area code. An admin
    whose grants cover the whole city sees every event, those without an area included; any other
    admin sees the events of their areas only (the scope helper, as for every list)."""
    paths = principal.paths_for(Permission.audit_view)
    roots = areas.root_paths(db_session=db)
    city_wide = bool(roots) and all(in_scope(principal, Permission.audit_view, r) for r in roots)
    area_path = None
    if area:
        found = areas.get_by_code(db_session=db, code=area)
        if found is None or not in_scope(principal, Permission.audit_view, found.path):
            raise NotFound("Area not found")
        area_path = found.path
    return AuditFilter(action=action or None, actor=actor or None, object_type=object_type or None,
                       since=_day(since), until=_day(until, 1), area_path=area_path,
                       scope_paths=None if city_wide else paths)


def _day(value: str | None, add: int = 0) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.combine(date.fromisoformat(value) + timedelta(days=add), time(0), WIB)
    except ValueError:
        raise Invalid("Dates must be real calendar dates written as YYYY-MM-DD") from None



@router.get("/audit")
def audit_page(request: Request, db: SessionDep, principal: Auditor, action: str | None = None,
               actor: str | None = None, object_type: str | None = None, since: str | None = None,
               until: str | None = None, before: int | None = None):
    flt = parse_filter(db, principal, action, actor, object_type, since, until)
    rows = audit.list_events(db_session=db, flt=flt, limit=100, before_seq=before)
    return render(request, "audit/log.html", {
        "rows": rows, "filters": {"action": action or "", "actor": actor or "", "object_type": object_type or "",
                                  "since": since or "", "until": until or ""},
        "total": audit.count_events(db_session=db, flt=flt), "query": request.url.query,
    })


@router.get("/audit/export.csv")
def audit_export(request: Request, db: SessionDep, principal: Auditor, action: str | None = None,
                 actor: str | None = None, object_type: str | None = None, since: str | None = None,
                 until: str | None = None):
    flt = parse_filter(db, principal, action, actor, object_type, since, until)
    rows = [audit.csv_row(e) for e in audit.iter_events(db_session=db, flt=flt)]
    # The export itself is an audited act, committed with this request.
    audit.record(db_session=db, event=AuditExported(rows=len(rows), filters={
        k: v for k, v in dict(action=action, actor=actor, object_type=object_type, since=since, until=until).items() if v
    }), actor=actor_of(request, principal))
    filename = f"siskamling-audit-{datetime.now(WIB):%Y%m%d-%H%M}.csv"
    return StreamingResponse(_csv(rows), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _csv(rows: list[list]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(audit.CSV_COLUMNS)
    for row in rows:
        writer.writerow(row)
        if buf.tell() > 65536:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()
