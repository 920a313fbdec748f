"""Appending to and verifying the hash-chained audit log."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Select, func, insert, select
from sqlalchemy.orm import Session

from siskamling.audit.events import AuditAction
from siskamling.audit.models import AuditEvent
from siskamling.core.scope import path_condition
from siskamling.core.time import utcnow

GENESIS = "0" * 64
# Any constant: PostgreSQL advisory lock that serialises appends across nodes.
_PG_LOCK_KEY = 0x5155_4144  # "SQAD"


@dataclass(frozen=True)
class Actor:
    """Who did it: a user, or the system (CLI, scheduler) with a label."""

    id: int | None
    label: str
    ip: str | None = None

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(id=None, label=label)


def _canonical(event) -> str:
    body = {
        "seq": event.seq,
        "occurred_at": event.occurred_at.isoformat(timespec="microseconds"),
        "action": event.action,
        "actor_id": event.actor_id,
        "actor_label": event.actor_label,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "area_path": event.area_path,
        "ip": event.ip,
        "data": event.data,
        "prev_hash": event.prev_hash,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def compute_hash(event) -> str:
    """For an AuditEvent or a plain row with the same columns."""
    return hashlib.sha256(_canonical(event).encode()).hexdigest()


def _lock_chain(db_session: Session) -> None:
    # SQLite transactions already start with BEGIN IMMEDIATE, so writers are serialised.
    if db_session.get_bind().dialect.name == "postgresql":
        db_session.execute(select(func.pg_advisory_xact_lock(_PG_LOCK_KEY)))


def record(
    *, db_session: Session, event: AuditAction, actor: Actor, area_path: str | None = None
) -> AuditEvent:
    """Append one event in the caller's transaction: it commits, or vanishes, with the change."""
    return AuditEvent(**append(db_session=db_session, entry=prepare(event=event, actor=actor, area_path=area_path)))


def prepare(*, event: AuditAction, actor: Actor, area_path: str | None = None) -> dict[str, Any]:
    """An entry's columns but its place in the chain, computed before the caller's write begins
    (report intake prepares its entry outside the write lock); ``append`` links and stores it."""
    return {
        "occurred_at": utcnow(),
        "action": event.action,
        "actor_id": actor.id,
        "actor_label": actor.label,
        "object_type": event.object_type,
        "object_id": event.object_id(),
        "area_path": area_path,
        "ip": actor.ip,
        "data": json.loads(json.dumps(event.data(), default=str)),
    }


def append(*, db_session: Session, entry: dict[str, Any]) -> dict[str, Any]:
    """Link a prepared entry to the head of the chain and insert it, in the caller's transaction;
    returns the stored columns."""
    _lock_chain(db_session)
    # Plain statements on the session's connection, not the unit of work: an append is on every
    # write path (report intake among them), and the row is never changed afterwards.
    connection = db_session.connection()
    last = connection.execute(_LAST).first()
    values = {**entry, "seq": (last.seq + 1) if last else 1, "prev_hash": last.hash if last else GENESIS}
    values["hash"] = compute_hash(SimpleNamespace(**values))
    connection.execute(_INSERT, values)
    return values


_LAST = select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
_INSERT = insert(AuditEvent.__table__)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None
    head_seq: int = 0
    head_hash: str = GENESIS


def verify_chain(*, db_session: Session, batch: int = 5000) -> VerifyResult:
    prev = GENESIS
    expected_seq = 1
    checked = 0
    for row in _iter_rows(db_session, batch):
        if row.seq != expected_seq:
            return VerifyResult(False, checked, expected_seq, f"row with seq {expected_seq} is missing")
        if row.prev_hash != prev:
            return VerifyResult(False, checked, row.seq, "prev_hash does not match the previous row's hash")
        if compute_hash(row) != row.hash:
            return VerifyResult(False, checked, row.seq, "row content does not match its hash")
        prev = row.hash
        expected_seq += 1
        checked += 1
    return VerifyResult(True, checked, head_seq=expected_seq - 1, head_hash=prev)


def check_head(*, db_session: Session, result: VerifyResult, seq: int, digest: str | None) -> VerifyResult:
    """Compare with a head recorded earlier: deleting the newest rows leaves an intact but shorter
    chain, which only an outside record can reveal."""
    if result.head_seq < seq:
        return VerifyResult(False, result.checked, result.head_seq + 1,
                            f"the log ends at seq {result.head_seq} but reached {seq} before: rows were removed")
    if digest:
        stored = db_session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == seq))
        if stored != digest:
            return VerifyResult(False, result.checked, seq, "the hash at the recorded head differs")
    return result


def _iter_rows(db_session: Session, batch: int) -> Iterator:
    """Plain rows in seq order, in batches, without filling the session's identity map."""
    table = AuditEvent.__table__
    last_seq = 0
    while True:
        rows = db_session.execute(
            select(*table.columns).where(table.c.seq > last_seq).order_by(table.c.seq).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last_seq = rows[-1].seq


@dataclass(frozen=True)
class AuditFilter:
    action: str | None = None
    actor: str | None = None
    object_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    area_path: str | None = None
    scope_paths: list[str] | None = None  # None: the whole city, events without an area included


def _filtered(stmt: Select, flt: AuditFilter) -> Select:
    if flt.action:
        stmt = stmt.where(AuditEvent.action.startswith(flt.action))
    if flt.actor:
        stmt = stmt.where(AuditEvent.actor_label == flt.actor)
    if flt.object_type:
        stmt = stmt.where(AuditEvent.object_type == flt.object_type)
    if flt.since:
        stmt = stmt.where(AuditEvent.occurred_at >= flt.since)
    if flt.until:
        stmt = stmt.where(AuditEvent.occurred_at < flt.until)
    if flt.area_path:
        stmt = stmt.where(path_condition(AuditEvent.area_path, [flt.area_path]))
    if flt.scope_paths is not None:
        stmt = stmt.where(path_condition(AuditEvent.area_path, flt.scope_paths))
    return stmt


def list_events(
    *, db_session: Session, flt: AuditFilter, limit: int = 100, before_seq: int | None = None
) -> list[AuditEvent]:
    stmt = _filtered(select(AuditEvent), flt).order_by(AuditEvent.seq.desc()).limit(limit)
    if before_seq:
        stmt = stmt.where(AuditEvent.seq < before_seq)
    return list(db_session.scalars(stmt))


def iter_events(*, db_session: Session, flt: AuditFilter) -> Iterator[AuditEvent]:
    stmt = _filtered(select(AuditEvent), flt).order_by(AuditEvent.seq)
    yield from db_session.scalars(stmt.execution_options(yield_per=2000))


def count_events(*, db_session: Session, flt: AuditFilter) -> int:
    return db_session.scalar(_filtered(select(func.count(AuditEvent.id)), flt)) or 0


CSV_COLUMNS = ["seq", "occurred_at", "action", "actor_label", "object_type", "object_id", "area_path", "ip", "data", "hash"]


def _cell(value: Any) -> Any:
    # A spreadsheet would run text starting with = + - @ as a formula (usernames are user input).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_row(event: AuditEvent) -> list[Any]:
    return [_cell(v) for v in _csv_values(event)]


def _csv_values(event: AuditEvent) -> list[Any]:
    return [
        event.seq,
        event.occurred_at.isoformat(),
        event.action,
        event.actor_label,
        event.object_type or "",
        event.object_id or "",
        event.area_path or "",
        event.ip or "",
        json.dumps(event.data, ensure_ascii=False, sort_keys=True),
        event.hash,
    ]
