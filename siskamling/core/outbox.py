"""Outbox rows (webhook deliveries, notifications) claimed by one sender at a time: each node's
scheduler takes the due rows with a conditional UPDATE, so several nodes never send one twice,
and a claim lapses after ``hold_s`` if its node dies mid-send."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from siskamling.core.db import database_now


def claim_due(db_session: Session, model, limit: int, hold_s: float) -> list[int]:
    """Ids of up to ``limit`` pending rows of ``model`` due now, claimed for this sender. The model
    has ``id``, ``state``, ``next_attempt_at`` and ``claimed_until``."""
    now = database_now(db_session)
    free = or_(model.claimed_until.is_(None), model.claimed_until < now)
    due = list(db_session.scalars(select(model.id).where(model.state == "pending", model.next_attempt_at <= now, free)
                                  .order_by(model.next_attempt_at, model.id).limit(limit)))
    claimed = []
    for row_id in due:
        done = db_session.execute(update(model).where(model.id == row_id, model.state == "pending", free)
                                  .values(claimed_until=now + timedelta(seconds=hold_s)))
        if done.rowcount:
            claimed.append(row_id)
    return claimed
