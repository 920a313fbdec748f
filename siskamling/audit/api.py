"""JSON API over the audit log (admins)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from siskamling.audit import service as audit
from siskamling.audit.pages import Auditor, parse_filter
from siskamling.core.deps import SessionDep

router = APIRouter(prefix="/api/v1", tags=["audit"])


@router.get("/audit")
def list_audit(db: SessionDep, principal: Auditor, action: str | None = None, actor: str | None = None,
               object_type: str | None = None, since: str | None = None, until: str | None = None,
               area: str | None = None, before: int | None = None,
               limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    flt = parse_filter(db, principal, action, actor, object_type, since, until, area)
    rows = audit.list_events(db_session=db, flt=flt, limit=limit, before_seq=before)
    return {
        "events": [
            {"seq": e.seq, "occurred_at": e.occurred_at.isoformat(), "action": e.action, "actor": e.actor_label,
             "object_type": e.object_type, "object_id": e.object_id, "area_path": e.area_path, "data": e.data,
             "hash": e.hash}
            for e in rows
        ],
        "next_before": rows[-1].seq if len(rows) == limit else None,
    }
