"""The audit log: typed events in the same transaction as the change, a hash chain that names
the first tampered row, and the admin page with filters and CSV export."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from siskamling.accounts import service as accounts
from siskamling.audit import service as audit
from siskamling.audit.events import GrantAdded
from siskamling.audit.models import AuditEvent
from siskamling.audit.service import Actor
from siskamling.core.errors import NotFound
from tests.conftest import KEL_A, PASSWORD
from tests.helpers import html


def test_chain_of_the_loaded_data_verifies(db):
    result = audit.verify_chain(db_session=db)
    assert result.ok and result.checked >= 20


def test_each_event_carries_the_previous_hash(db):
    a = audit.record(db_session=db, event=GrantAdded(grant_id=1, username="x", role="satpam", area_code="99"),
                     actor=Actor.system("t"))
    b = audit.record(db_session=db, event=GrantAdded(grant_id=2, username="y", role="satpam", area_code="99"),
                     actor=Actor.system("t"))
    assert b.prev_hash == a.hash and b.seq == a.seq + 1
    assert audit.compute_hash(b) == b.hash


def test_a_failed_change_leaves_no_audit_event(db):
    before = db.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
    savepoint = db.begin_nested()
    with pytest.raises(NotFound):
        accounts.add_grant(db_session=db, username="nobody", role="satpam", area_code=KEL_A, actor=Actor.system("t"))
    savepoint.rollback()
    assert db.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1)) == before


def test_updates_and_deletes_are_refused_by_the_database(db):
    savepoint = db.begin_nested()
    with pytest.raises(DBAPIError, match="append-only"):
        db.execute(text("UPDATE audit_event SET actor_label = 'someone else' WHERE seq = 3"))
    savepoint.rollback()
    savepoint = db.begin_nested()
    with pytest.raises(DBAPIError, match="append-only"):
        db.execute(text("DELETE FROM audit_event WHERE seq = 3"))
    savepoint.rollback()


def drop_guard(db):
    """What someone with direct database access could do first."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_no_change"))
    else:
        db.execute(text("DROP TRIGGER audit_event_no_update"))
        db.execute(text("DROP TRIGGER audit_event_no_delete"))


def test_verify_names_the_first_edited_row(db):
    drop_guard(db)
    db.execute(text("UPDATE audit_event SET data = '{\"username\": \"mallory\"}' WHERE seq = 7"))
    db.execute(text("UPDATE audit_event SET actor_label = 'x' WHERE seq = 12"))
    result = audit.verify_chain(db_session=db)
    assert not result.ok
    assert result.first_bad_seq == 7 and result.checked == 6
    assert "does not match its hash" in result.reason


def test_verify_notices_a_deleted_row(db):
    drop_guard(db)
    db.execute(text("DELETE FROM audit_event WHERE seq = 5"))
    result = audit.verify_chain(db_session=db)
    assert (result.ok, result.first_bad_seq) == (False, 5)
    assert "missing" in result.reason


def test_verify_notices_a_rewritten_chain_tail(db):
    """Recomputing one row's own hash is not enough: the next row's prev_hash still disagrees."""
    drop_guard(db)
    db.execute(text("UPDATE audit_event SET actor_label = 'mallory' WHERE seq = 4"))
    db.expire_all()
    row = db.scalar(select(AuditEvent).where(AuditEvent.seq == 4))
    db.execute(text("UPDATE audit_event SET hash = :h WHERE seq = 4"), {"h": audit.compute_hash(row)})
    result = audit.verify_chain(db_session=db)
    assert (result.ok, result.first_bad_seq) == (False, 5)


def test_admin_filters_the_log_page(login_as, browser, db):
    browser.post("/login", {"username": "bob", "password": "wrong password!"})
    page = html(login_as("admin").get("/audit", params={"action": "auth.login_failed"}))
    rows = page.select("#audit tbody tr")
    assert rows and all(r.select("td")[2].text == "auth.login_failed" for r in rows)
    assert "bob" in rows[0].text


def test_operator_cannot_open_the_audit_page(login_as):
    assert login_as("alice").get("/audit").status_code == 403


def test_csv_export_is_complete_and_audited(login_as, db):
    b = login_as("admin")
    r = b.get("/audit/export.csv", params={"action": "grant."})
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    expected = db.scalars(select(AuditEvent).where(AuditEvent.action.startswith("grant.")).order_by(AuditEvent.seq)).all()
    assert [int(row["seq"]) for row in rows] == [e.seq for e in expected]
    assert rows[0]["hash"] == expected[0].hash
    last = db.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
    assert last.action == "audit.exported" and last.actor_label == "admin"
    assert last.data == {"rows": len(rows), "filters": {"action": "grant."}}


def test_bad_filter_date_is_a_clear_error(login_as):
    r = login_as("admin").get("/api/v1/audit", params={"since": "27/11/2026"})
    assert r.status_code == 422
    assert r.json()["error"]["message"] == "Tanggal harus tanggal yang benar dengan format TTTT-BB-HH"


def test_api_pages_through_the_log(client, token_for):
    h = token_for("admin")
    first = client.get("/api/v1/audit", params={"limit": 5}, headers=h).json()
    assert len(first["events"]) == 5
    second = client.get("/api/v1/audit", params={"limit": 5, "before": first["next_before"]}, headers=h).json()
    assert second["events"][0]["seq"] == first["events"][-1]["seq"] - 1


def test_login_events_record_the_client_address(browser, db):
    browser.post("/login", {"username": "bob", "password": PASSWORD})
    event = db.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
    assert event.action == "auth.login" and event.ip == "testclient"


def test_filter_by_area_code(client, token_for):
    h = token_for("admin")
    events = client.get("/api/v1/audit", params={"area": KEL_A, "action": "grant."}, headers=h).json()["events"]
    assert events and all(e["area_path"].startswith("99/99.01/99.01.01/99.01.01.1001") for e in events)
    assert client.get("/api/v1/audit", params={"area": "99.77"}, headers=h).status_code == 404


def test_csv_export_defuses_spreadsheet_formulas(browser, login_as):
    browser.post("/login", {"username": '=HYPERLINK("http://evil.example")', "password": "x"})
    rows = list(csv.DictReader(io.StringIO(login_as("admin").get("/audit/export.csv",
                                                                  params={"action": "auth.login_failed"}).text)))
    assert rows[-1]["actor_label"].startswith("'=")
    assert rows[-1]["object_id"].startswith("'=")


def test_a_cut_off_tail_is_caught_with_a_recorded_head(db):
    intact = audit.verify_chain(db_session=db)
    drop_guard(db)
    db.execute(text("DELETE FROM audit_event WHERE seq = :s"), {"s": intact.head_seq})
    shorter = audit.verify_chain(db_session=db)
    assert shorter.ok, "alone, a chain without its newest row still verifies"
    checked = audit.check_head(db_session=db, result=shorter, seq=intact.head_seq, digest=intact.head_hash)
    assert not checked.ok and "removed" in checked.reason


@pytest.mark.parametrize("grants", [["99.01.01"], ["99.01.01", "99.02.02"]])
def test_an_admin_below_city_level_sees_only_their_areas_events(client, db, token_for, grants):
    accounts.create_user(db_session=db, username="kota.admin", full_name="Admin Kecamatan", password=PASSWORD,
                         actor=Actor.system("t"))
    for code in grants:
        accounts.add_grant(db_session=db, username="kota.admin", role="admin", area_code=code, actor=Actor.system("t"))
    db.commit()
    events = client.get("/api/v1/audit", params={"limit": 1000}, headers=token_for("kota.admin")).json()["events"]
    paths = [e["area_path"] for e in events]
    assert paths, "their own grants are events in their areas"
    allowed = tuple("99/" + c[:5] + "/" + c for c in grants)
    assert all(p and p.startswith(allowed) for p in paths), "no other area's events, and none without an area"
    city = client.get("/api/v1/audit", params={"limit": 1000}, headers=token_for("admin")).json()["events"]
    assert any(e["area_path"] is None for e in city), "a city-wide admin also sees events without an area"
