"""Importing historical reports (the migration path from an existing system): CSV or JSON lines,
with their original timestamps, status history and positions. Every row is checked first; any
bad row is reported by its line number and nothing is kept.

Fields (CSV columns or JSON keys): ``category``, ``description``, ``lat``, ``lon``, ``created_at``
(ISO 8601 with offset) are required; optional: ``ticket``, ``external_id``, ``occurred_at``,
``status`` (the final one; defaults to the last of the history, else menunggu), ``unit`` (a unit
code; else routed by the rules), ``public``, ``anonymous``, ``confidential``, ``reporter_name``,
``reporter_phone``, ``reporter_email``, ``attributes`` (object) and ``history``: a list of
``{"at", "status", "note", "unit", "by"}`` in time order (in CSV, that list as JSON text).
"""

from __future__ import annotations

import csv
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siskamling.areas import service as areas
from siskamling.areas.index import get_index
from siskamling.audit import service as audit
from siskamling.audit.events import ReportsImported
from siskamling.audit.service import Actor
from siskamling.core.errors import Invalid
from siskamling.reports import catalogue
from siskamling.reports.models import (
    CLOSED_STATUSES,
    TICKET_RE,
    Category,
    Channel,
    Report,
    Status,
    Step,
    Unit,
)
from siskamling.reports.service import TICKET_ALPHABET
from siskamling.sla import service as sla

TRUE = {"1", "true", "yes", "ya", "y"}
MAX_ERRORS = 50


@dataclass
class Row:
    line: int
    data: dict[str, Any]
    created: datetime | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def read_rows(path: Path) -> list[Row]:
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise Invalid("line %(n)s: not valid JSON (%(error)s)", n=n, error=exc.msg) from None
            if not isinstance(value, dict):
                raise Invalid("line %(n)s: each line must be a JSON object", n=n)
            rows.append(Row(n, value))
        return rows
    if path.suffix.lower() != ".csv":
        raise Invalid("Import reads .csv or .jsonl files")
    reader = csv.DictReader(text.splitlines())
    return [Row(n, {k.strip(): (v if v != "" else None) for k, v in rec.items() if k}) for n, rec in
            enumerate(reader, 2)]


def _time(value: Any, what: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{what} is not an ISO 8601 date and time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{what} needs a UTC offset (e.g. +07:00)")
    return parsed


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in TRUE


def _check(db_session: Session, row: Row, cats: dict[str, Category], units: dict[str, Unit],
           tickets: set[str]) -> None:
    d = row.data
    for name in ("category", "description", "lat", "lon", "created_at"):
        if d.get(name) in (None, ""):
            raise ValueError(f"{name} is missing")
    category = cats.get(str(d["category"]))
    if category is None:
        raise ValueError(f"unknown category {d['category']}")
    d["attributes"] = d.get("attributes") or {}
    if isinstance(d["attributes"], str):
        d["attributes"] = json.loads(d["attributes"])
    try:
        d["attributes"] = catalogue.check_answers(category, d["attributes"])
    except Invalid as exc:
        raise ValueError(str(exc)) from None
    try:
        d["lat"], d["lon"] = float(d["lat"]), float(d["lon"])
    except ValueError:
        raise ValueError("lat and lon must be numbers") from None
    row.created = _time(d["created_at"], "created_at")
    d["occurred_at"] = _time(d["occurred_at"], "occurred_at") if d.get("occurred_at") else row.created
    if len(str(d["description"]).strip()) < 3:
        raise ValueError("description is empty")
    ticket = d.get("ticket")
    if ticket is not None:
        ticket = str(ticket).strip().upper()
        if not TICKET_RE.match(ticket):
            raise ValueError("ticket must be 4–20 letters, digits or -")
        if ticket in tickets:
            raise ValueError(f"ticket {ticket} appears twice or already exists")
        tickets.add(ticket)
        d["ticket"] = ticket
    if d.get("unit") is not None and str(d["unit"]) not in units:
        raise ValueError(f"unknown unit {d['unit']}")
    history = d.get("history") or []
    if isinstance(history, str):
        history = json.loads(history)
    if not isinstance(history, list):
        raise ValueError("history must be a list")
    last = row.created
    for n, step in enumerate(history, 1):
        if not isinstance(step, dict) or "at" not in step or "status" not in step:
            raise ValueError(f"history step {n} needs at and status")
        at = _time(step["at"], f"history step {n}'s at")
        if at < last:
            raise ValueError(f"history step {n} is earlier than the one before it")
        if step["status"] not in Status.__members__:
            raise ValueError(f"history step {n}: unknown status {step['status']}")
        if step.get("unit") is not None and str(step["unit"]) not in units:
            raise ValueError(f"history step {n}: unknown unit {step['unit']}")
        row.history.append({**step, "at": at})
        last = at
    status = d.get("status") or (row.history[-1]["status"] if row.history else Status.menunggu.value)
    if status not in Status.__members__:
        raise ValueError(f"unknown status {status}")
    if row.history and row.history[-1]["status"] != status:
        raise ValueError("status differs from the last status of the history")
    d["status"] = status


def _ticket(created: datetime, taken: set[str]) -> str:
    while True:
        ticket = "LP" + created.strftime("%y%m%d") + "".join(secrets.choice(TICKET_ALPHABET) for _ in range(5))
        if ticket not in taken:
            taken.add(ticket)
            return ticket


def import_file(*, db_session: Session, path: Path, actor: Actor, settings) -> int:
    rows = read_rows(path)
    if not rows:
        raise Invalid("The file holds no reports")
    cats = {c.code: c for c in catalogue.categories(db_session=db_session, active_only=False)}
    units = {u.code: u for u in catalogue.units(db_session=db_session)}
    wanted = {str(r.data.get("ticket")).strip().upper() for r in rows if r.data.get("ticket")}
    taken = set(db_session.scalars(select(Report.ticket).where(Report.ticket.in_(wanted)))) if wanted else set()
    errors: list[str] = []
    seen: set[str] = set(taken)
    for row in rows:
        try:
            _check(db_session, row, cats, units, seen)
        except (ValueError, json.JSONDecodeError) as exc:
            errors.append(f"line {row.line}: {exc}")
            if len(errors) >= MAX_ERRORS:
                break
    if not errors:
        found = areas.locate_many(db_session=db_session, lats=[r.data["lat"] for r in rows],
                                  lons=[r.data["lon"] for r in rows], edge_tolerance_m=settings.locate_edge_tolerance_m)
        for row, area_id in zip(rows, found.area_id, strict=True):
            if int(area_id) < 0:
                errors.append(f"line {row.line}: the position is outside the service area")
            row.data["_area_id"] = int(area_id)
    if errors:
        more = "" if len(errors) < MAX_ERRORS else f" (stopped after {MAX_ERRORS})"
        raise Invalid("Nothing was imported. %(errors)s", errors="; ".join(errors) + more)
    index = get_index(db_session)
    clocks = (sla.current_policy(db_session), sla.work_calendar(db_session))
    for n, row in enumerate(rows, 1):
        _store(db_session, row, index.areas[row.data["_area_id"]].path, cats, units, actor, seen, clocks)
        if n % 2000 == 0:
            db_session.flush()
            db_session.expunge_all()
    db_session.flush()
    audit.record(db_session=db_session, actor=actor, event=ReportsImported(file=path.name, count=len(rows)))
    return len(rows)


def _store(db_session: Session, row: Row, area_path: str, cats, units, actor: Actor, taken: set[str],
           clocks: tuple) -> None:
    d = row.data
    category = cats[str(d["category"])]
    handed = [units[str(s["unit"])] for s in row.history if s.get("unit")]
    if d.get("unit"):
        unit = units[str(d["unit"])]
    elif handed:
        unit = handed[-1]  # where its last hop took it
    else:
        unit = catalogue.route(db_session=db_session, category_row=category, area_path=area_path)
    final = Status(d["status"])
    report = Report(
        ticket=d.get("ticket") or _ticket(row.created, taken), category_id=category.id,
        description=str(d["description"]).strip()[:4000], attributes=d["attributes"], lat=d["lat"], lon=d["lon"],
        area_id=d["_area_id"], area_path=area_path, status=final, unit_id=unit.id if unit else None,
        channel=Channel.import_, external_id=(str(d["external_id"])[:100] if d.get("external_id") else None),
        reporter_name=d.get("reporter_name"), reporter_phone=d.get("reporter_phone"),
        reporter_email=d.get("reporter_email"), anonymous=_flag(d.get("anonymous"), False),
        confidential=_flag(d.get("confidential"), False), public=_flag(d.get("public"), True),
        emergency=False, occurred_at=d["occurred_at"], created_at=row.created,
        updated_at=row.history[-1]["at"] if row.history else row.created,
    )
    db_session.add(report)
    db_session.flush()
    db_session.add(Step(report_id=report.id, at=row.created, kind="filed", status_to=Status.menunggu,
                        unit_to_id=unit.id if unit and not handed else None, actor_label="import", public=True))
    # Its deadlines run from its real time: the next sweep judges it by its real history.
    policy, calendar = clocks
    sla.start_deadlines(db_session=db_session, report_id=report.id, category=category, started_at=row.created,
                        calendar=calendar, policy=policy)
    status = Status.menunggu
    for step in row.history:
        to = Status(step["status"])
        step_unit = units.get(str(step["unit"])) if step.get("unit") else None
        kind = "handover" if step_unit is not None else ("status" if to != status else "comment")
        db_session.add(Step(report_id=report.id, at=step["at"], kind=kind, status_from=status, status_to=to,
                            unit_to_id=step_unit.id if step_unit else None, actor_label=str(step.get("by") or "import"),
                            by_staff=True, note=step.get("note"), public=True))
        if report.first_action_at is None:
            report.first_action_at = step["at"]
        if to == Status.selesai:
            report.resolved_at = step["at"]
        if to in CLOSED_STATUSES:
            report.closed_at = step["at"]
        status = to
    if final in CLOSED_STATUSES and report.closed_at is None:
        report.closed_at = report.updated_at

