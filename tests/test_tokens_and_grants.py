"""API tokens (hashed, revocable, scoped like their owner) and grants with time windows."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from siskamling.accounts import service as accounts
from siskamling.accounts.models import ApiToken
from siskamling.audit.models import AuditEvent
from siskamling.audit.service import Actor
from siskamling.core.errors import Invalid, NotFound
from siskamling.core.time import utcnow
from tests.conftest import KEL_A, KEL_B
from tests.helpers import html


def test_token_is_shown_once_and_stored_hashed(login_as, db):
    b = login_as("bob")
    page = html(b.post("/account/tokens", {"name": "laptop pos ronda"}))
    raw = page.select_one("#new-token").text
    assert raw.startswith("skm_")
    row = db.scalar(select(ApiToken).where(ApiToken.name == "laptop pos ronda"))
    assert raw not in (row.token_hash, row.prefix) and len(row.token_hash) == 64
    again = html(b.get("/account"))
    assert again.select_one("#new-token") is None and raw not in str(again)


def test_token_acts_with_its_owners_scope(client, token_for):
    headers = token_for("bob")
    assert client.get("/api/v1/me", headers=headers).json()["username"] == "bob"
    assert client.get(f"/api/v1/areas/{KEL_A}.001.001", headers=headers).status_code == 200
    assert client.get(f"/api/v1/areas/{KEL_B}", headers=headers).status_code == 404


def test_revoked_token_stops_working(client, db, token_for):
    headers = token_for("bob")
    token_id = db.scalar(select(ApiToken.id).order_by(ApiToken.id.desc()).limit(1))
    assert client.delete(f"/api/v1/tokens/{token_id}", headers=headers).status_code == 204
    r = client.get("/api/v1/me", headers=headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthenticated"
    assert "token.revoked" in [e.action for e in db.scalars(select(AuditEvent))]


def test_token_of_someone_else_cannot_be_revoked(client, db, token_for):
    bob = token_for("bob")
    bob_token = db.scalar(select(ApiToken.id).order_by(ApiToken.id.desc()).limit(1))
    dina = token_for("dina")
    assert client.delete(f"/api/v1/tokens/{bob_token}", headers=dina).status_code == 404
    assert client.get("/api/v1/me", headers=bob).status_code == 200


def test_expired_token_is_refused(client, db):
    user = accounts.get_user(db_session=db, username="bob")
    _row, raw = accounts.create_token(db_session=db, user=user, name="short", actor=Actor.system("t"),
                                      expires_at=utcnow() + timedelta(hours=1))
    headers = {"Authorization": f"Bearer {raw}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    with time_machine.travel(utcnow() + timedelta(hours=2)):
        assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_a_satpam_duty_grant_only_works_during_duty(client, db, token_for):
    now = utcnow()
    accounts.create_user(db_session=db, username="yusuf", full_name="Yusuf", password="panjang sekali 123",
                         actor=Actor.system("t"))
    accounts.add_grant(db_session=db, username="yusuf", role="satpam", area_code=f"{KEL_A}.002",
                       starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=9), actor=Actor.system("t"))
    headers = token_for("yusuf")
    url = f"/api/v1/areas/{KEL_A}.002"
    assert client.get(url, headers=headers).status_code == 403, "before the shift: no area role at all"
    with time_machine.travel(now + timedelta(hours=2)):
        assert client.get(url, headers=headers).status_code == 200
    with time_machine.travel(now + timedelta(hours=10)):
        assert client.get(url, headers=headers).status_code == 403


def test_grant_covers_everything_below(client, token_for):
    headers = token_for("eko")  # ketua RW of B's RW 002
    assert client.get(f"/api/v1/areas/{KEL_B}.002.003", headers=headers).status_code == 200
    assert client.get(f"/api/v1/areas/{KEL_B}.001", headers=headers).status_code == 404
    assert client.get(f"/api/v1/areas/{KEL_B}", headers=headers).status_code == 404


def test_operator_grants_community_roles_in_their_area_only(login_as, db):
    b = login_as("alice")
    h = {"X-CSRF-Token": b.csrf}
    ok = b.client.post("/api/v1/grants", headers=h, json={"username": "warga", "role": "ketua_rw",
                                                          "area_code": f"{KEL_A}.003"})
    assert ok.status_code == 201
    outside = b.client.post("/api/v1/grants", headers=h, json={"username": "warga", "role": "ketua_rw",
                                                               "area_code": f"{KEL_B}.003"})
    assert outside.status_code == 404
    too_high = b.client.post("/api/v1/grants", headers=h, json={"username": "warga", "role": "admin",
                                                                "area_code": KEL_A})
    assert too_high.status_code == 403
    grant_id = ok.json()["id"]
    assert b.client.delete(f"/api/v1/grants/{grant_id}", headers=h).status_code == 204
    actions = [e.action for e in db.scalars(select(AuditEvent).order_by(AuditEvent.seq))][-2:]
    assert actions == ["grant.added", "grant.revoked"]


def test_grant_must_end_after_it_starts(db):
    now = utcnow()
    with pytest.raises(Invalid):
        accounts.add_grant(db_session=db, username="warga", role="satpam", area_code=KEL_A, starts_at=now,
                           ends_at=now - timedelta(hours=1), actor=Actor.system("t"))
    with pytest.raises(NotFound):
        accounts.add_grant(db_session=db, username="warga", role="satpam", area_code="99.99", actor=Actor.system("t"))
    with pytest.raises(Invalid):
        accounts.add_grant(db_session=db, username="warga", role="kapolri", area_code=KEL_A, actor=Actor.system("t"))


def test_admin_creates_users_with_a_clear_error_for_bad_input(client, token_for, db):
    h = token_for("admin")
    ok = client.post("/api/v1/users", headers=h, json={"username": "Siti", "full_name": "Siti A",
                                                       "password": "kata sandi panjang"})
    assert ok.status_code == 201 and ok.json()["username"] == "siti"
    dup = client.post("/api/v1/users", headers=h, json={"username": "siti", "full_name": "Siti B",
                                                        "password": "kata sandi panjang"})
    assert dup.status_code == 409 and dup.json()["error"]["message"]
    weak = client.post("/api/v1/users", headers=h, json={"username": "tono", "full_name": "Tono", "password": "123"})
    assert weak.status_code == 422
    assert accounts.get_user(db_session=db, username="tono") is None
    not_admin = client.post("/api/v1/users", headers=token_for("alice"),
                            json={"username": "x12", "full_name": "X", "password": "kata sandi panjang"})
    assert not_admin.status_code == 403
