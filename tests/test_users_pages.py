"""Operators give community roles (e.g. a satpam's duty) from the web; bad input changes nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from siskamling.accounts.models import Grant
from siskamling.core.time import format_wib
from tests.conftest import KEL_A, KEL_B
from tests.helpers import html


def grant_count(db):
    return db.scalar(select(func.count(Grant.id)))


def test_operator_gives_a_duty_grant_in_wib(login_as, db):
    b = login_as("alice")
    page = html(b.get("/users"))
    roles = [o["value"] for o in page.select("#grant-form select[name=role] option")]
    assert "satpam" in roles and "admin" not in roles
    assert all(o["value"].startswith(KEL_A) for o in page.select("#area-choices option"))
    r = b.post("/users/grants", {"username": "warga", "role": "satpam", "area_code": f"{KEL_A}.002",
                                 "starts_at": "2030-01-05T18:00", "ends_at": "2030-01-06T06:00"})
    assert r.status_code == 303
    grant = db.scalar(select(Grant).order_by(Grant.id.desc()).limit(1))
    assert (format_wib(grant.starts_at), format_wib(grant.ends_at)) == ("2030-01-05 18:00 WIB", "2030-01-06 06:00 WIB")
    assert grant.starts_at.hour == 11, "stored in UTC"
    row = html(b.get("/users")).select_one("tr[data-username=warga]")
    assert "Satpam" in row.text and "2030-01-06 06:00 WIB" in row.text


def test_bad_grant_is_explained_and_changes_nothing(login_as, db):
    b = login_as("alice")
    before = grant_count(db)
    for data, status in [
        ({"username": "warga", "role": "satpam", "area_code": f"{KEL_B}.001"}, 404),
        ({"username": "ghost", "role": "satpam", "area_code": KEL_A}, 404),
        ({"username": "warga", "role": "admin", "area_code": KEL_A}, 403),
        ({"username": "warga", "role": "satpam", "area_code": KEL_A, "starts_at": "2030-01-06T06:00",
          "ends_at": "2030-01-05T18:00"}, 422),
        ({"username": "warga", "role": "satpam", "area_code": KEL_A, "ends_at": "kemarin"}, 422),
    ]:
        r = b.post("/users/grants", data)
        assert r.status_code == status, data
        page = html(r)
        assert page.select_one(".error[role=alert]").text.strip()
        assert page.select_one("#grant-form input[name=username]")["value"] == data["username"], "the form keeps input"
    assert grant_count(db) == before


def test_operator_revokes_only_inside_their_area(login_as, db):
    bob_grant = db.scalar(select(Grant.id).where(Grant.area_path.like("%/99.01.01.1001/001/001")))
    dina_grant = db.scalar(select(Grant.id).where(Grant.area_path.like("%/99.01.01.1002/001/001")))
    b = login_as("alice")
    assert b.post(f"/users/grants/{dina_grant}/revoke").status_code == 404
    assert b.post(f"/users/grants/{bob_grant}/revoke").status_code == 303
    assert db.get(Grant, bob_grant).revoked_at is not None and db.get(Grant, dina_grant).revoked_at is None


def test_only_admins_create_users(login_as, db):
    assert html(login_as("alice").get("/users")).select_one("#user-form") is None
    assert login_as("alice").post("/users", {"username": "nina", "full_name": "Nina",
                                             "password": "kata sandi panjang"}).status_code == 403
    admin = login_as("admin")
    bad = admin.post("/users", {"username": "nina", "full_name": "Nina", "password": "pendek"})
    assert bad.status_code == 422 and html(bad).select_one(".error").text
    assert admin.post("/users", {"username": "nina", "full_name": "Nina",
                                 "password": "kata sandi panjang"}).status_code == 303
