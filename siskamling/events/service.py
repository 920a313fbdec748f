"""Publishing events and reading the ones a user may receive."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.orm import Session

from siskamling.core.permissions import Permission
from siskamling.core.scope import Principal, path_condition
from siskamling.core.time import utcnow
from siskamling.events.models import Event

KEEP_DAYS = 7


_INSERT = insert(Event.__table__)


def publish(*, db_session: Session, kind: str, area_path: str, permission: Permission,
            payload: dict[str, Any], user_id: int | None = None) -> None:
    """An event for the holders of ``permission`` over ``area_path``; with ``user_id``, for that
    person only (whatever their permissions)."""
    # A plain INSERT (the outbox row is never changed): cheaper than the unit of work on hot paths.
    db_session.connection().execute(_INSERT, dict(kind=kind, area_path=area_path, permission=permission.value,
                                                  payload=payload, created_at=utcnow(), user_id=user_id))


def latest_id(*, db_session: Session) -> int:
    return db_session.scalar(select(func.max(Event.id))) or 0


def since(*, db_session: Session, principal: Principal, after_id: int, limit: int = 100) -> list[Event]:
    """New events for this user: each is delivered to holders of its permission over its area, or,
    when it names a user, to that user only."""
    terms = [Event.user_id.is_(None) & (Event.permission == p.value) & path_condition(Event.area_path, paths)
             for p in Permission if (paths := principal.paths_for(p))]
    terms.append(Event.user_id == principal.user_id)
    stmt = select(Event).where(Event.id > after_id, or_(*terms)).order_by(Event.id).limit(limit)
    return list(db_session.scalars(stmt))


def prune(*, db_session: Session) -> int:
    result = db_session.execute(delete(Event).where(Event.created_at < utcnow() - timedelta(days=KEEP_DAYS)))
    return result.rowcount or 0
