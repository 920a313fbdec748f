"""The breach ledger as people use it: who may appeal and who decides, accepted appeals void an
entry for deductions but keep it visible, and the monthly TKD report (JSON, CSV, XLSX with
formulas) whose figures this test recomputes on its own from the ledger."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from siskamling.core.errors import Conflict, Forbidden, Invalid
from siskamling.reports import service as reports
from siskamling.sla import ledger
from siskamling.sla import service as sla
from siskamling.sla.models import Appeal, Breach
from tests.helpers import html
from tests.test_cli import city, env, run  # noqa: F401 - fixtures of a CLI database with two kelurahan
from tests.test_reports import ACTOR, staff
from tests.test_sla import file_at, wib

T0 = wib("2026-11-02T08:00:00")
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def admin_staff(db):
    return staff(db, "admin")


@pytest.fixture
def month(db, settings, desk):
    """November 2026: three reports nobody acted on (a first-action and a resolution breach each,
    charged to the kelurahan office's head), and one assigned in time but never resolved (a
    resolution breach charged to its officer)."""
    sla.save_policy(db_session=db, actor=ACTOR, data={
        "rules": [{"first_action": {"days": 6, "mode": "calendar_days"},
                   "resolution": {"days": 3, "mode": "calendar_days"}}],
        "tkd": {"mode": "per_breach", "percent": 4, "cap": 10, "kinds": ["first_action", "resolution"]}})
    ignored = [file_at(db, settings, T0 + timedelta(days=i)) for i in range(3)]
    assigned = file_at(db, settings, T0)
    reports.assign(db_session=db, staff=staff(db, "kasi"), report=assigned, officer_id=desk.officer.id, actor=ACTOR,
                   now=T0 + timedelta(hours=5))
    sla.sweep(db_session=db, now=wib("2026-11-20T00:00:00"))
    db.flush()
    return ignored, assigned


def entry_for(db, report, kind="first_action") -> Breach:
    return db.scalar(select(Breach).where(Breach.report_id == report.id, Breach.kind == kind))


def test_appeals_go_to_the_unit_head_or_an_admin_and_an_accepted_one_voids_the_entry(db, settings, desk, month):
    ignored, assigned = month
    theirs = entry_for(db, assigned, "resolution")
    assert theirs.officer_id == desk.officer.id and entry_for(db, assigned) is None, "assigning was the first action"
    petugas, kasi = staff(db, "petugas"), staff(db, "kasi")
    with pytest.raises(Forbidden):
        ledger.appeal(db_session=db, settings=settings, staff=petugas, breach=entry_for(db, ignored[0]),
                      grounds="other", reason="Bukan tanggung jawab saya sama sekali", actor=ACTOR)
    with pytest.raises(Invalid):
        ledger.appeal(db_session=db, settings=settings, staff=petugas, breach=theirs, grounds="other", reason="pendek",
                      actor=ACTOR)
    with pytest.raises(Invalid):
        ledger.appeal(db_session=db, settings=settings, staff=petugas, breach=theirs, grounds="other",
                      reason="Pelapor tidak bisa dihubungi tiga kali", attachment=("x.exe", b"MZ\x90\x00"),
                      actor=ACTOR)
    assert db.scalar(select(Appeal).where(Appeal.breach_id == theirs.id)) is None, "a refused appeal stores nothing"
    ledger.appeal(db_session=db, settings=settings, staff=petugas, breach=theirs, grounds="reporter_unreachable",
                  reason="Pelapor tidak bisa dihubungi tiga kali", attachment=("bukti.pdf", PDF), actor=ACTOR)
    with pytest.raises(Conflict):
        ledger.appeal(db_session=db, settings=settings, staff=petugas, breach=theirs, grounds="other",
                      reason="Sekali lagi dengan alasan lain", actor=ACTOR)
    with pytest.raises(Forbidden):
        ledger.decide(db_session=db, staff=petugas, breach=theirs, accept=True, reason="Saya setuju", actor=ACTOR)
    ledger.decide(db_session=db, staff=kasi, breach=theirs, accept=True, reason="Nomor pelapor memang salah",
                  actor=ACTOR)
    with pytest.raises(Conflict):
        ledger.decide(db_session=db, staff=kasi, breach=theirs, accept=False, reason="Berubah pikiran", actor=ACTOR)
    # The head's own appeal: not theirs to decide; an admin rejects it.
    own = entry_for(db, ignored[0])
    ledger.appeal(db_session=db, settings=settings, staff=kasi, breach=own, grounds="force_majeure",
                  reason="Banjir besar menutup kantor kelurahan", actor=ACTOR)
    with pytest.raises(Forbidden):
        ledger.decide(db_session=db, staff=kasi, breach=own, accept=True, reason="Memang banjir", actor=ACTOR)
    ledger.decide(db_session=db, staff=admin_staff(db), breach=own, accept=False,
                  reason="Kantor buka kembali hari kedua", actor=ACTOR)
    db.expire_all()
    assert [a.state for a in db.scalars(select(Appeal).order_by(Appeal.id))] == ["accepted", "rejected"]
    assert len(ledger.entries(db_session=db, staff=admin_staff(db), month="2026-11")) == 7, "voided stays visible"


def recompute(db, month: str, rule: dict) -> dict[str, float]:
    """The deductions, from the ledger rows, by this test's own reading of the rule."""
    start, end = wib(f"{month}-01T00:00:00"), wib("2026-12-01T00:00:00")
    counted: dict[str, int] = {}
    for b in db.scalars(select(Breach)):
        if not start <= b.breached_at < end or b.officer_id is None:
            continue
        appeal = db.scalar(select(Appeal).where(Appeal.breach_id == b.id))
        counted.setdefault(b.officer.username, 0)
        if b.kind in rule["kinds"] and not (appeal and appeal.state == "accepted"):
            counted[b.officer.username] += 1
    if rule["mode"] == "flat":
        return {u: (rule["percent"] if n else 0.0) for u, n in counted.items()}
    return {u: min(rule["cap"], n * rule["percent"]) for u, n in counted.items()}


def test_the_monthly_tkd_report_matches_an_independent_count(db, settings, desk, month):
    _ignored, assigned = month
    ledger.appeal(db_session=db, settings=settings, staff=staff(db, "petugas"), breach=entry_for(db, assigned,
                  "resolution"), grounds="wrongly_routed", reason="Laporan ini milik Dinas SDA", actor=ACTOR)
    ledger.decide(db_session=db, staff=staff(db, "kasi"), breach=entry_for(db, assigned, "resolution"), accept=True,
                  reason="Benar, salah rute", actor=ACTOR)
    report = ledger.tkd_report(db_session=db, month="2026-11")
    got = {x.username: x.deduction for x in report.lines}
    rule = sla.current_policy(db).tkd
    assert got == recompute(db, "2026-11", rule) == {"kasi": 10.0, "petugas": 0.0}, "6 x 4 % capped at 10 %"
    assert {x.username: (x.counted, x.voided) for x in report.lines} == {"kasi": (6, 0), "petugas": (0, 1)}
    assert report.rule_version == sla.current_policy(db).version and report.policy_versions == [report.rule_version]
    # The spreadsheet: rule cells, a formula per officer, and the breaches sheet.
    book = load_workbook(io.BytesIO(ledger.as_xlsx(report)))
    sheet = book["Potongan TKD"]
    assert sheet["B3"].value == 4 and sheet["B4"].value == 10
    assert f"policy version {report.rule_version}" in sheet["B2"].value
    rows = {sheet.cell(r, 1).value: r for r in range(10, sheet.max_row + 1)}
    kasi_row = rows["kasi"]
    assert sheet.cell(kasi_row, 6).value == f"=MIN($B$4,D{kasi_row}*$B$3)" and sheet.cell(kasi_row, 4).value == 6
    assert min(sheet["B4"].value, sheet.cell(kasi_row, 4).value * sheet["B3"].value) == 10
    assert book["Pelanggaran"].max_row == 1 + 7
    # The same in CSV and JSON.
    assert "kasi,Kasi,Kantor Kelurahan Sukamaju,6,0,10" in ledger.as_csv(report)
    body = ledger.as_json(report)
    assert body["rule"]["policy_version"] == report.rule_version and len(body["breaches"]) == 7
    # Jakarta's 2018 practice: a flat 10 % for anyone slow in the month.
    sla.save_policy(db_session=db, actor=ACTOR, data={
        "rules": [{"first_action": {"days": 6, "mode": "calendar_days"}}],
        "tkd": {"mode": "flat", "percent": 10, "kinds": ["first_action", "resolution"]}})
    flat = ledger.tkd_report(db_session=db, month="2026-11")
    assert {x.username: x.deduction for x in flat.lines} == recompute(db, "2026-11", sla.current_policy(db).tkd) \
        == {"kasi": 10.0, "petugas": 0.0}
    sheet = load_workbook(io.BytesIO(ledger.as_xlsx(flat)))["Potongan TKD"]
    kasi_row = {sheet.cell(r, 1).value: r for r in range(10, sheet.max_row + 1)}["kasi"]
    assert sheet.cell(kasi_row, 6).value == f"=IF(D{kasi_row}>0,$B$3,0)"


def test_ledger_pages_appeal_and_decide_in_the_browser(login_as, db, settings, desk, month):
    _ignored, assigned = month
    db.commit()
    entry = entry_for(db, assigned, "resolution")
    petugas = login_as("petugas")
    page = html(petugas.get("/sla/ledger"))
    assert [tr["data-breach"] for tr in page.select("#ledger tbody tr[data-breach]")] == [str(entry.id)], \
        "an officer sees their own entries only"
    r = petugas.post(f"/sla/breaches/{entry.id}/appeal", data={"grounds": "other", "reason": "pendek"})
    assert r.status_code == 422 and html(r).select_one("#entry-error")
    r = petugas.post(f"/sla/breaches/{entry.id}/appeal", data={"grounds": "reporter_unreachable",
                                                                "reason": "Pelapor tidak menjawab telepon"},
                     files={"attachment": ("bukti.pdf", PDF, "application/pdf")})
    assert r.status_code == 303
    assert petugas.get(f"/sla/breaches/{entry.id}/attachment").content == PDF
    kasi = login_as("kasi")
    page = html(kasi.get(f"/sla/breaches/{entry.id}"))
    assert page.select_one("#appeal-state")["data-state"] == "pending" and page.select_one("#decide-form")
    r = kasi.post(f"/sla/breaches/{entry.id}/decide", data={"decision": "accept", "reason": "Nomor memang salah"})
    assert r.status_code == 303
    assert html(kasi.get(f"/sla/breaches/{entry.id}")).select_one("#appeal-state")["data-state"] == "accepted"
    assert login_as("charlie").get(f"/sla/breaches/{entry.id}").status_code == 404, "another kelurahan's operator"
    assert petugas.get("/sla/tkd").status_code == 403
    admin = login_as("admin")
    page = html(admin.get("/sla/tkd?month=2026-11"))
    cells = {tr["data-officer"]: tr.select_one(".deduction").get_text() for tr in page.select("#tkd tbody tr")}
    assert cells == {"kasi": "10 %", "petugas": "0 %"}
    xlsx = admin.get("/sla/tkd?month=2026-11&format=xlsx")
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert load_workbook(io.BytesIO(xlsx.content))["Potongan TKD"]["B3"].value == 4
    assert admin.get("/sla/tkd?month=2026-13").status_code == 400


def test_admins_change_the_policy_and_days_off_on_its_page(login_as, db, desk):
    admin = login_as("admin")
    before = sla.current_policy(db).version
    r = admin.post("/sla/policy", data={"policy": "{not json"})
    assert r.status_code == 422 and "JSON" in html(r).select_one("#policy-error").get_text()
    body = {"rules": [{"first_action": {"days": 6, "mode": "working_days"}}], "reminder_days": [3, 5]}
    r = admin.post("/sla/policy", data={"policy": json.dumps(body), "note": "hari kerja"})
    assert r.status_code == 303
    db.expire_all()
    assert sla.current_policy(db).version == before + 1
    assert sla.current_policy(db).rules[0]["first_action"]["mode"] == "working_days"
    r = admin.post("/sla/days-off", data={"day": "2026-12-24", "name": "Cuti bersama Natal"})
    assert r.status_code == 303
    assert html(admin.get("/sla/policy")).select_one('#days-off li[data-day="2026-12-24"]')
    assert admin.post("/sla/days-off", data={"day": "24/12/2026", "name": "x"}).status_code == 422
    assert login_as("alice").get("/sla/policy").status_code == 403


def test_tkd_report_from_the_command_line(city, run, tmp_path):  # noqa: F811 - pytest fixtures
    lines = [{"ticket": f"OLD-{i}", "category": "sampah", "description": "Sampah menumpuk di pinggir jalan",
              "lat": -0.995, "lon": 100.005, "created_at": f"2026-11-0{i + 1}T08:00:00+07:00"} for i in range(3)]
    path = tmp_path / "old.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    assert run("reports", "import", str(path)).exit_code == 0
    swept = run("sla", "sweep", "--at", "2026-12-01T00:00:00+07:00")
    assert swept.exit_code == 0 and "3 breached" in swept.output
    again = run("sla", "sweep", "--at", "2026-12-01T00:05:00+07:00")
    assert "0 breached" in again.output
    out = run("tkd", "report", "--month", "2026-11", "--format", "json", "-o", "-")
    body = json.loads(out.output)
    assert len(body["breaches"]) == 3 and body["officers"] == [], "no unit, no head: listed, charged to nobody"
    assert body["rule"]["policy_version"] == 1
    target = tmp_path / "tkd.xlsx"
    assert run("tkd", "report", "--month", "2026-11", "-o", str(target)).exit_code == 0
    assert load_workbook(target)["Pelanggaran"].max_row == 4
    bad = run("tkd", "report", "--month", "November")
    assert bad.exit_code == 1 and "YYYY-MM" in bad.output
    assert run("sla", "sweep", "--at", "2026-12-01 00:00").exit_code == 2


def test_a_month_is_a_month_in_jakarta(db, settings, desk):
    """A breach at 03:00 WIB on 1 December is still 30 November in UTC: it counts in December."""
    early_dec = wib("2026-11-25T03:00:00")  # filed; due 6 days later at 03:00 WIB on 1 December
    report = file_at(db, settings, early_dec)
    sla.sweep(db_session=db, now=wib("2026-12-05T00:00:00"))
    assert ledger.tkd_report(db_session=db, month="2026-11").breaches == []
    assert [b["ticket"] for b in ledger.tkd_report(db_session=db, month="2026-12").breaches] == [report.ticket]
