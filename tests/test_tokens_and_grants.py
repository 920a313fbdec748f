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


def test_operator_cannot_revoke_roles_they_could_not_give(login_as, db):
    from siskamling.accounts.models import Grant

    admin_here = accounts.add_grant(db_session=db, username="warga", role="admin", area_code=KEL_A,
                                    actor=Actor.system("t"))
    alice_own = db.scalar(select(Grant.id).where(Grant.role == "operator", Grant.area_path.like(f"%/{KEL_A}")))
    db.commit()
    b = login_as("alice")
    h = {"X-CSRF-Token": b.csrf}
    for grant_id in (admin_here.id, alice_own):
        assert b.client.delete(f"/api/v1/grants/{grant_id}", headers=h).status_code == 403
        assert b.post(f"/users/grants/{grant_id}/revoke").status_code == 403
        assert db.get(Grant, grant_id).revoked_at is None


def test_the_same_grant_twice_is_a_conflict(db):
    from siskamling.core.errors import Conflict

    accounts.add_grant(db_session=db, username="warga", role="fkdm", area_code=KEL_A, actor=Actor.system("t"))
    with pytest.raises(Conflict):
        accounts.add_grant(db_session=db, username="warga", role="fkdm", area_code=KEL_A, actor=Actor.system("t"))


def test_operator_sees_only_the_grants_in_their_own_area(client, db, token_for):
    accounts.add_grant(db_session=db, username="bob", role="fkdm", area_code=KEL_B, actor=Actor.system("t"))
    db.commit()
    users = {u["username"]: u for u in client.get("/api/v1/users", headers=token_for("charlie")).json()}
    assert [g["area_code"] for g in users["bob"]["grants"]] == [KEL_B], "Bob's role in A is none of Charlie's business"


def test_a_token_cannot_mint_tokens(client, token_for, login_as):
    r = client.post("/api/v1/tokens", json={"name": "forever"}, headers=token_for("alice"))
    assert r.status_code == 403
    b = login_as("alice")
    past = b.client.post("/api/v1/tokens", json={"name": "old", "expires_at": "2020-01-01T00:00:00+07:00"},
                         headers={"X-CSRF-Token": b.csrf})
    assert past.status_code == 422


def test_disabled_user_loses_sessions_and_tokens(client, db, login_as, token_for):
    b = login_as("bob")
    headers = token_for("bob")
    accounts.set_active(db_session=db, user=accounts.get_user(db_session=db, username="bob"), active=False,
                        actor=Actor.system("t"))
    db.commit()
    assert b.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    assert "user.disabled" in [e.action for e in db.scalars(select(AuditEvent))]
