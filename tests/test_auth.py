"""Logging in: passwords, lockout, the second factor for admins and operators, sessions, CSRF."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import time_machine
from sqlalchemy import select

from siskamling.accounts import service as accounts
from siskamling.accounts.models import LoginSession
from siskamling.audit.models import AuditEvent
from siskamling.core.deps import SESSION_COOKIE
from siskamling.core.time import utcnow
from tests.conftest import PASSWORD, totp_now
from tests.helpers import html


def last_events(db, n=3):
    return [e.action for e in db.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(n))]


def test_community_member_logs_in_with_password(browser, db):
    r = browser.post("/login", {"username": "bob", "password": PASSWORD, "next": "/areas"})
    assert r.status_code == 303 and r.headers["location"] == "/areas"
    cookie = r.headers["set-cookie"]
    assert SESSION_COOKIE in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    page = html(browser.get("/"))
    assert page.select_one(".who").text == "Bob"
    assert last_events(db, 1) == ["auth.login"]


def test_session_cookie_is_secure_outside_tests(settings):
    from siskamling.core.config import Settings

    assert Settings.model_fields["session_cookie_secure"].default is True


def test_wrong_password_is_refused_and_audited(browser, db):
    r = browser.post("/login", {"username": "bob", "password": "nope nope nope"})
    assert r.status_code == 401
    assert html(r).select_one(".error").text.strip()
    assert last_events(db, 1) == ["auth.login_failed"]
    assert db.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).data["reason"] == "bad_password"
    assert SESSION_COOKIE not in browser.client.cookies


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(browser, db):
    unknown = browser.post("/login", {"username": "nobody", "password": PASSWORD})
    wrong = browser.post("/login", {"username": "bob", "password": "wrong password!"})
    assert unknown.status_code == wrong.status_code == 401
    assert html(unknown).select_one(".error").text == html(wrong).select_one(".error").text


def test_lockout_after_repeated_failures(browser, db, settings):
    for _ in range(settings.login_max_failures):
        browser.post("/login", {"username": "bob", "password": "wrong password!"})
    r = browser.post("/login", {"username": "bob", "password": PASSWORD})
    assert r.status_code == 423, "the right password does not open a locked account"
    assert "auth.locked" in [e.action for e in db.scalars(select(AuditEvent))]
    with time_machine.travel(utcnow() + timedelta(minutes=settings.login_lockout_minutes + 1)):
        assert browser.post("/login", {"username": "bob", "password": PASSWORD}).status_code == 303


def test_operator_needs_the_second_factor(browser, db):
    r = browser.post("/login", {"username": "alice", "password": PASSWORD, "next": "/areas"})
    assert r.headers["location"].startswith("/login/totp")
    # Password alone opens nothing: every page sends her back to the second step.
    blocked = browser.get("/areas", follow_redirects=False)
    assert blocked.status_code == 303 and blocked.headers["location"] == "/login/totp"
    assert browser.get("/api/v1/me").status_code == 401
    bad = browser.post("/login/totp", {"code": "000000", "next": "/areas"})
    assert bad.status_code == 401
    ok = browser.post("/login/totp", {"code": totp_now("alice"), "next": "/areas"})
    assert ok.status_code == 303 and ok.headers["location"] == "/areas"
    assert browser.get("/api/v1/me").json()["username"] == "alice"
    assert last_events(db, 1) == ["auth.login"]
    assert db.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).data["mfa"] is True


def test_a_totp_code_cannot_be_replayed(browser, app, db):
    from tests.conftest import make_browser

    code = totp_now("alice")
    browser.post("/login", {"username": "alice", "password": PASSWORD})
    assert browser.post("/login/totp", {"code": code}).status_code == 303
    other = make_browser(app)
    other.post("/login", {"username": "alice", "password": PASSWORD})
    assert other.post("/login/totp", {"code": code}).status_code == 401


def test_new_operator_must_enrol_totp_before_anything_else(browser, db, settings):
    from siskamling.audit.service import Actor

    accounts.create_user(db_session=db, username="hana", full_name="Hana", password=PASSWORD, actor=Actor.system("t"))
    accounts.add_grant(db_session=db, username="hana", role="operator", area_code="99.02", actor=Actor.system("t"))
    r = browser.post("/login", {"username": "hana", "password": PASSWORD})
    assert r.headers["location"].startswith("/account/totp/setup")
    page = html(browser.get("/account/totp/setup"))
    secret = page.select_one("#totp-secret").text
    assert page.select_one(".qr svg") is not None
    assert browser.post("/account/totp/setup", {"code": "123456"}).headers["location"].startswith("/account/totp/setup?error")
    done = browser.post("/account/totp/setup", {"code": pyotp.TOTP(secret).now(), "next": "/areas"})
    assert done.headers["location"] == "/areas"
    assert browser.get("/api/v1/me").json()["username"] == "hana"
    user = accounts.get_user(db_session=db, username="hana")
    assert user.totp_secret_enc and secret not in user.totp_secret_enc, "the key is stored encrypted"


def test_logout_ends_the_session(browser, db):
    browser.post("/login", {"username": "bob", "password": PASSWORD})
    token = browser.client.cookies.get(SESSION_COOKIE)
    assert browser.post("/logout").status_code == 303
    row = db.scalar(select(LoginSession).order_by(LoginSession.id.desc()).limit(1))
    assert row.ended_at is not None
    browser.client.cookies.set(SESSION_COOKIE, token)  # a stolen copy of the cookie
    assert browser.get("/api/v1/me").status_code == 401
    assert last_events(db, 1) == ["auth.logout"]


def test_forms_without_csrf_token_are_refused(browser, db):
    before = len(db.scalars(select(AuditEvent)).all())
    r = browser.client.post("/login", data={"username": "bob", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403
    assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
    forged = browser.client.post("/login", data={"username": "bob", "password": PASSWORD, "csrf_token": "x" * 64},
                                 follow_redirects=False)
    assert forged.status_code == 403
    assert len(db.scalars(select(AuditEvent)).all()) == before


def test_logged_in_json_calls_need_the_csrf_header(login_as):
    b = login_as("alice")
    assert b.client.post("/api/v1/tokens", json={"name": "x"}).status_code == 403
    ok = b.client.post("/api/v1/tokens", json={"name": "x"}, headers={"X-CSRF-Token": b.csrf})
    assert ok.status_code == 201


def test_every_page_form_carries_a_csrf_token(login_as):
    b = login_as("admin")
    for url in ["/", "/account", "/areas/99", "/audit", "/users", "/login"]:
        page = html(b.get(url))
        for form in page.select("form[method=post]"):
            assert form.select_one("input[name=csrf_token]")["value"] == b.csrf, (url, form.get("action"))


def test_expired_session_is_refused(login_as, db):
    b = login_as("bob")
    assert b.get("/api/v1/me").status_code == 200
    with time_machine.travel(utcnow() + timedelta(hours=13)):
        assert b.get("/api/v1/me").status_code == 401


def test_open_redirect_after_login_is_refused(browser):
    r = browser.post("/login", {"username": "bob", "password": PASSWORD, "next": "//evil.example/x"})
    assert r.headers["location"] == "/"


def test_an_enrolled_key_cannot_be_replaced_from_a_session(login_as, db):
    from siskamling.accounts.pages import TOTP_SETUP_COOKIE

    b = login_as("alice")
    before = accounts.get_user(db_session=db, username="alice").totp_secret_enc
    r = b.get("/account/totp/setup", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    # A thief with the session brings a key of their own and a valid code for it.
    thief = pyotp.random_base32()
    b.client.cookies.set(TOTP_SETUP_COOKIE, thief)
    assert b.post("/account/totp/setup", {"code": pyotp.TOTP(thief).now()}).status_code == 303
    db.expire_all()
    assert accounts.get_user(db_session=db, username="alice").totp_secret_enc == before


def test_reset_totp_makes_the_user_enrol_again(browser, db):
    from siskamling.audit.service import Actor

    accounts.reset_totp(db_session=db, user=accounts.get_user(db_session=db, username="alice"), actor=Actor.system("t"))
    db.commit()
    r = browser.post("/login", {"username": "alice", "password": PASSWORD})
    assert r.headers["location"].startswith("/account/totp/setup")
