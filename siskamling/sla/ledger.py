"""The breach ledger as people use it: who may see which entries, appeals and their decisions,
and the monthly TKD deduction report (JSON, CSV, XLSX with formulas a finance clerk can check)."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, selectinload

from siskamling.accounts.models import User
from siskamling.audit import service as audit
from siskamling.audit.events import SlaAppealDecided, SlaAppealed
from siskamling.audit.service import Actor
from siskamling.core.errors import Conflict, Forbidden, Invalid, NotFound
from siskamling.core.permissions import Permission
from siskamling.core.time import WIB, utcnow
from siskamling.reports.models import Report, Unit
from siskamling.reports.service import Staff, under
from siskamling.sla import service as sla
from siskamling.sla.models import Appeal, Breach, Policy

GROUNDS = ("wrongly_routed", "force_majeure", "reporter_unreachable", "other")
MAX_ATTACHMENT = 5_000_000
ATTACHMENT_TYPES = {b"%PDF": ".pdf", b"\xff\xd8\xff": ".jpg", b"\x89PNG": ".png"}


# --- who sees what -----------------------------------------------------------------------------


def is_admin(staff: Staff) -> bool:
    """Deadline admins (the policy, the TKD report) see and decide on the whole ledger."""
    return staff.principal.can(Permission.sla_manage)


def visible(staff: Staff):
    """Entries a user may see: an admin all; an operator those of reports in their areas; a unit's
    head those charged to the unit; an officer their own."""
    if is_admin(staff):
        return Breach.id.is_not(None)
    terms = [Breach.officer_id == staff.principal.user_id]
    if staff.head_unit_ids:
        terms.append(Breach.unit_id.in_(staff.head_unit_ids))
    if staff.manage_paths:
        terms.append(Breach.report_id.in_(select(Report.id).where(or_(*[under(Report.area_path, p)
                                                                          for p in staff.manage_paths]))))
    return or_(*terms)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """A month (YYYY-MM) in Asia/Jakarta, as UTC instants [start, end)."""
    try:
        first = datetime.strptime(month, "%Y-%m").date()
    except ValueError:
        raise Invalid("Give the month as YYYY-MM, e.g. 2026-11") from None
    nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return (datetime.combine(first, datetime.min.time(), WIB), datetime.combine(nxt, datetime.min.time(), WIB))


def entries(*, db_session: Session, staff: Staff, month: str | None = None, limit: int = 500) -> list[Breach]:
    stmt = select(Breach).where(visible(staff)).options(
        selectinload(Breach.report), selectinload(Breach.officer), selectinload(Breach.unit),
        selectinload(Breach.appeal_rows))
    if month:
        start, end = month_bounds(month)
        stmt = stmt.where(Breach.breached_at >= start, Breach.breached_at < end)
    return list(db_session.scalars(stmt.order_by(Breach.breached_at.desc(), Breach.id.desc()).limit(limit)))


def get_entry(*, db_session: Session, staff: Staff, breach_id: int) -> Breach:
    row = db_session.scalar(select(Breach).where(Breach.id == breach_id, visible(staff)))
    if row is None:
        raise NotFound("No such ledger entry")
    return row


def appeal_of(breach: Breach) -> Appeal | None:
    """The entry's appeal, as loaded with it (lists load them in one query)."""
    return breach.appeal_rows[0] if breach.appeal_rows else None


def _appeal_row(db_session: Session, breach: Breach) -> Appeal | None:
    return db_session.scalar(select(Appeal).where(Appeal.breach_id == breach.id))


# --- appeals -----------------------------------------------------------------------------------


def may_appeal(staff: Staff, breach: Breach) -> bool:
    if breach.officer_id is not None:
        return breach.officer_id == staff.principal.user_id
    return breach.unit_id in staff.unit_ids  # charged to the unit: one of its members speaks for it


def may_decide(staff: Staff, breach: Breach, appeal: Appeal) -> bool:
    if appeal.by_id == staff.principal.user_id:
        return False  # nobody judges their own appeal
    return is_admin(staff) or breach.unit_id in staff.head_unit_ids


def _attachment(settings, breach: Breach, name: str, data: bytes) -> tuple[str, str]:
    if len(data) > MAX_ATTACHMENT:
        raise Invalid("The attachment is too large (at most 5 MB)")
    suffix = next((ext for magic, ext in ATTACHMENT_TYPES.items() if data.startswith(magic)), None)
    if suffix is None:
        raise Invalid("Attach a PDF, JPEG or PNG file")
    relative = f"appeals/{breach.id}{suffix}"
    target = settings.media_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return relative, Path(name or f"lampiran{suffix}").name[:200]


def appeal(*, db_session: Session, settings, staff: Staff, breach: Breach, grounds: str, reason: str, actor: Actor,
           attachment: tuple[str, bytes] | None = None) -> Appeal:
    if not may_appeal(staff, breach):
        raise Forbidden("Only the officer charged (or, for a unit, one of its members) may appeal")
    if _appeal_row(db_session, breach) is not None:
        raise Conflict("This entry has already been appealed")
    if grounds not in GROUNDS:
        raise Invalid("Choose the grounds of the appeal")
    reason = (reason or "").strip()
    if len(reason) < 10:
        raise Invalid("Explain the appeal (at least 10 characters)")
    path = name = None
    if attachment and attachment[1]:
        path, name = _attachment(settings, breach, *attachment)
    row = Appeal(breach_id=breach.id, by_id=staff.principal.user_id, grounds=grounds, reason=reason[:4000],
                 attachment_path=path, attachment_name=name, state="pending", created_at=utcnow())
    db_session.add(row)
    db_session.flush()
    db_session.expire(breach, ["appeal_rows"])
    audit.record(db_session=db_session, actor=actor, area_path=breach.report.area_path, event=SlaAppealed(
        ticket=breach.report.ticket, breach_id=breach.id, grounds=grounds))
    return row


def decide(*, db_session: Session, staff: Staff, breach: Breach, accept: bool, reason: str, actor: Actor) -> Appeal:
    row = _appeal_row(db_session, breach)
    if row is None:
        raise NotFound("This entry has no appeal")
    if not may_decide(staff, breach, row):
        raise Forbidden("Only the unit's head or an admin decides an appeal, and not on their own")
    if row.state != "pending":
        raise Conflict("This appeal was already decided")
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise Invalid("Give the reason for the decision (at least 5 characters)")
    row.state = "accepted" if accept else "rejected"
    row.decided_by_id, row.decided_at, row.decision_reason = staff.principal.user_id, utcnow(), reason[:4000]
    db_session.flush()
    audit.record(db_session=db_session, actor=actor, area_path=breach.report.area_path, event=SlaAppealDecided(
        ticket=breach.report.ticket, breach_id=breach.id, decision=row.state, reason=row.decision_reason))
    return row


# --- the TKD report ----------------------------------------------------------------------------


@dataclass
class OfficerLine:
    officer_id: int
    username: str
    name: str
    units: set[str] = field(default_factory=set)
    counted: int = 0
    voided: int = 0
    deduction: float = 0.0


@dataclass
class TkdReport:
    month: str
    generated_at: datetime
    rule: dict[str, Any]
    rule_version: int
    policy_versions: list[int]
    lines: list[OfficerLine]
    breaches: list[dict[str, Any]]


def deduction(rule: dict[str, Any], counted: int) -> float:
    if counted <= 0:
        return 0.0
    if rule["mode"] == "flat":
        return float(rule["percent"])
    return float(min(rule["cap"], counted * rule["percent"]))


def tkd_report(*, db_session: Session, month: str, now: datetime | None = None) -> TkdReport:
    """Per officer, the month's breaches (by breach time in Asia/Jakarta) that count under the
    current policy's rule: of the kinds it counts, charged to a person, not voided by an accepted
    appeal. Breaches charged to a unit without an officer are listed but charge nobody."""
    start, end = month_bounds(month)
    policy: Policy = sla.current_policy(db_session)
    rule = policy.tkd or sla.DEFAULT_POLICY["tkd"]
    rows = db_session.execute(
        select(Breach.id, Breach.kind, Breach.officer_id, Breach.unit_id, Breach.policy_version, Breach.due_at,
               Breach.breached_at, Report.ticket, Appeal.state, User.username, User.full_name, Unit.name)
        .join(Report, Report.id == Breach.report_id)
        .outerjoin(Appeal, Appeal.breach_id == Breach.id)
        .outerjoin(User, User.id == Breach.officer_id)
        .outerjoin(Unit, Unit.id == Breach.unit_id)
        .where(and_(Breach.breached_at >= start, Breach.breached_at < end))
        .order_by(User.username, Breach.breached_at)).all()
    lines: dict[int, OfficerLine] = {}
    listed = []
    for r in rows:
        voided = r.state == "accepted"
        counts = r.kind in rule["kinds"] and r.officer_id is not None and not voided
        listed.append({"breach_id": r.id, "ticket": r.ticket, "kind": r.kind, "officer": r.username,
                       "unit": r.name, "due_at": r.due_at.astimezone(WIB).isoformat(timespec="minutes"),
                       "breached_at": r.breached_at.astimezone(WIB).isoformat(timespec="minutes"),
                       "policy_version": r.policy_version, "appeal": r.state, "counts": counts})
        if r.officer_id is None:
            continue
        line = lines.get(r.officer_id)
        if line is None:
            line = lines[r.officer_id] = OfficerLine(r.officer_id, r.username, r.full_name)
        if r.name:
            line.units.add(r.name)
        if counts:
            line.counted += 1
        elif voided:
            line.voided += 1
    for line in lines.values():
        line.deduction = deduction(rule, line.counted)
    return TkdReport(month=month, generated_at=now or utcnow(), rule=rule, rule_version=policy.version,
                     policy_versions=sorted({b["policy_version"] for b in listed}),
                     lines=sorted(lines.values(), key=lambda x: x.username), breaches=listed)


def rule_text(report: TkdReport) -> str:
    r = report.rule
    kinds = "+".join(r["kinds"])
    if r["mode"] == "flat":
        return f"flat {r['percent']:g}% in a month with any counted breach ({kinds}); rule of policy version " \
               f"{report.rule_version}"
    return f"{r['percent']:g}% per counted breach ({kinds}), at most {r['cap']:g}% a month; rule of policy " \
           f"version {report.rule_version}"


def as_json(report: TkdReport) -> dict[str, Any]:
    return {"month": report.month, "generated_at": report.generated_at.isoformat(timespec="seconds"),
            "rule": report.rule | {"policy_version": report.rule_version, "text": rule_text(report)},
            "breach_policy_versions": report.policy_versions,
            "officers": [{"username": x.username, "name": x.name, "units": sorted(x.units), "breaches_counted": x.counted,
                          "breaches_voided": x.voided, "deduction_percent": x.deduction} for x in report.lines],
            "breaches": report.breaches}


def as_csv(report: TkdReport) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow([f"# TKD deductions {report.month}", rule_text(report),
                f"breach policy versions {','.join(map(str, report.policy_versions)) or '-'}"])
    w.writerow(["username", "name", "units", "breaches_counted", "breaches_voided", "deduction_percent"])
    for x in report.lines:
        w.writerow([x.username, x.name, "; ".join(sorted(x.units)), x.counted, x.voided, f"{x.deduction:g}"])
    return out.getvalue()


def as_xlsx(report: TkdReport) -> bytes:
    """Two sheets: the officers, whose deduction is a formula over the count and the rule cells
    (so a clerk can check and recompute it), and every breach of the month. Written in openpyxl's
    streaming mode: 20,000 officers and their breaches in seconds, not tens of seconds."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Potongan TKD")
    for col, width in zip("ABCDEF", (18, 28, 32, 20, 26, 14), strict=True):
        ws.column_dimensions[col].width = width

    def bold(value, size: int | None = None) -> WriteOnlyCell:
        cell = WriteOnlyCell(ws, value=value)
        cell.font = Font(bold=True, size=size) if size else Font(bold=True)
        return cell

    cap = report.rule["cap"] if report.rule["mode"] == "per_breach" else report.rule["percent"]
    ws.append([bold(f"Potongan TKD {report.month}", 13)])  # row 1
    ws.append(["Aturan", rule_text(report)])  # row 2
    ws.append(["Persen per pelanggaran", report.rule["percent"]])  # row 3: $B$3
    ws.append(["Batas per bulan", cap])  # row 4: $B$4
    ws.append(["Mode", report.rule["mode"]])
    ws.append(["Versi kebijakan pelanggaran", ", ".join(map(str, report.policy_versions)) or "-"])
    ws.append(["Dibuat", report.generated_at.astimezone(WIB).strftime("%Y-%m-%d %H:%M WIB")])
    ws.append([])
    ws.append([bold(h) for h in ("Username", "Nama", "Unit", "Pelanggaran dihitung", "Dibatalkan (banding diterima)",
                                 "Potongan (%)")])  # row 9
    first = row = 10
    for x in report.lines:
        formula = f"=IF(D{row}>0,$B$3,0)" if report.rule["mode"] == "flat" else f"=MIN($B$4,D{row}*$B$3)"
        ws.append([x.username, x.name, "; ".join(sorted(x.units)), x.counted, x.voided, formula])
        row += 1
    if report.lines:
        ws.append([bold("Jumlah"), None, None, f"=SUM(D{first}:D{row - 1})", f"=SUM(E{first}:E{row - 1})", None])
    detail = wb.create_sheet("Pelanggaran")
    detail.append(["Tiket", "Jenis", "Petugas", "Unit", "Tenggat", "Lewat pada", "Versi kebijakan", "Banding",
                   "Dihitung"])
    for b in report.breaches:
        detail.append([b["ticket"], b["kind"], b["officer"] or "-", b["unit"] or "-", b["due_at"], b["breached_at"],
                       b["policy_version"], b["appeal"] or "-", "ya" if b["counts"] else "tidak"])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def previous_month(now: datetime | None = None) -> str:
    local = (now or utcnow()).astimezone(WIB)
    first = local.date().replace(day=1) - timedelta(days=1)
    return first.strftime("%Y-%m")
