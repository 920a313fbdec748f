"""Login (password, then TOTP for admins and operators), logout, and the account page."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import quote

import segno
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from markupsafe import Markup

from siskamling.accounts import service as accounts
from siskamling.accounts.models import LoginSession
from siskamling.areas import service as areas
from siskamling.audit.service import Actor
from siskamling.core import metrics
from siskamling.core.deps import (
    SESSION_COOKIE,
    CurrentUser,
    SessionDep,
    SettingsDep,
    actor_of,
    client_ip,
    login_pending,
    public,
    require,
)
from siskamling.core.errors import DomainError, Invalid, NotFound
from siskamling.core.i18n import gettext as _
from siskamling.core.permissions import GRANTABLE_BY, Permission
from siskamling.core.scope import Principal
from siskamling.core.time import WIB, utcnow
from siskamling.core.web import render, translated

router = APIRouter(include_in_schema=False)  # HTML pages; the JSON API is in api.py
PendingSession = Annotated[LoginSession, Depends(login_pending)]
TOTP_SETUP_COOKIE = "siskamling_totp_setup"


def safe_next(value: str | None) -> str:
    """Only a path on this site: never an open redirect."""
    return value if value and value.startswith("/") and not value.startswith("//") else "/"


def _set_session_cookie(response, settings, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=settings.session_cookie_secure,
                        max_age=int(settings.session_hours * 3600))


@router.get("/login", dependencies=[Depends(public)])
def login_form(request: Request, next: str = "/"):
    return render(request, "accounts/login.html", {"next": safe_next(next)})


@router.post("/login", dependencies=[Depends(public)])
def login(request: Request, db: SessionDep, settings: SettingsDep, username: Annotated[str, Form()] = "",
          password: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/"):
    ip = client_ip(request)
    result = accounts.authenticate(db_session=db, settings=settings, username=username.strip().lower(),
                                   password=password, ip=ip)
    if not result.ok:
        metrics.logins.labels(result.reason).inc()
        message = (_("This account is locked after too many failed attempts. Try again later.")
                   if result.reason == "locked" else _("Wrong username or password."))
        return render(request, "accounts/login.html", {"error": message, "next": safe_next(next),
                      "username": username}, status_code=401 if result.reason != "locked" else 423)
    user = result.user
    mfa = accounts.needs_mfa(db_session=db, user=user)
    token = accounts.start_session(db_session=db, settings=settings, user=user, mfa_passed=not mfa, ip=ip,
                                   user_agent=request.headers.get("user-agent"))
    if mfa:
        target = "/login/totp" if user.totp_secret_enc else "/account/totp/setup"
        target += f"?next={quote(safe_next(next), safe='/')}"
    else:
        accounts.complete_login(db_session=db, user=user, actor=Actor(user.id, user.username, ip), mfa=False)
        metrics.logins.labels("ok").inc()
        target = safe_next(next)
    response = RedirectResponse(target, status_code=303)
    _set_session_cookie(response, settings, token)
    return response


@router.get("/login/totp")
def totp_form(request: Request, session_row: PendingSession, next: str = "/"):
    if session_row.user.totp_secret_enc is None:
        return RedirectResponse("/account/totp/setup", status_code=303)
    return render(request, "accounts/totp.html", {"next": safe_next(next)})


@router.post("/login/totp")
def totp_verify(request: Request, db: SessionDep, settings: SettingsDep, session_row: PendingSession,
                code: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/"):
    user = session_row.user
    actor = Actor(user.id, user.username, client_ip(request))
    if user.locked_until is not None and user.locked_until > utcnow():
        return render(request, "accounts/login.html", {"error": _(
            "This account is locked after too many failed attempts. Try again later.")}, status_code=423)
    if not accounts.verify_totp(db_session=db, settings=settings, user=user, code=code):
        accounts.register_failure(db_session=db, settings=settings, user=user, actor=actor, reason="bad_totp")
        metrics.logins.labels("bad_totp").inc()
        return render(request, "accounts/totp.html", {"error": _("That code is not valid. Check your authenticator's clock and try again."),
                      "next": safe_next(next)}, status_code=401)
    accounts.mark_mfa_passed(db_session=db, session_row=session_row)
    accounts.complete_login(db_session=db, user=user, actor=actor, mfa=True)
    metrics.logins.labels("ok").inc()
    return RedirectResponse(safe_next(next), status_code=303)


@router.get("/account/totp/setup")
def totp_setup_form(request: Request, settings: SettingsDep, session_row: PendingSession, next: str = "/"):
    user = session_row.user
    if user.totp_secret_enc:
        # A stolen session must not be able to move the second factor to another phone:
        # an enrolled key is replaced only by an administrator (`siskamling users reset-totp`).
        return RedirectResponse("/" if session_row.mfa_passed else "/login/totp", status_code=303)
    secret = request.cookies.get(TOTP_SETUP_COOKIE) or accounts.new_totp_secret()
    uri = accounts.totp_uri(settings=settings, user=user, secret=secret)
    qr = Markup(segno.make(uri, error="m").svg_inline(scale=4, dark="#111"))
    response = render(request, "accounts/totp_setup.html", {"secret": secret, "qr": qr, "next": safe_next(next)})
    # The candidate secret lives in a short, HttpOnly cookie until the user proves they stored it.
    response.set_cookie(TOTP_SETUP_COOKIE, secret, max_age=600, httponly=True, samesite="strict",
                        secure=settings.session_cookie_secure)
    return response


@router.post("/account/totp/setup")
def totp_setup(request: Request, db: SessionDep, settings: SettingsDep, session_row: PendingSession,
               code: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/"):
    user = session_row.user
    secret = request.cookies.get(TOTP_SETUP_COOKIE)
    if user.totp_secret_enc:
        return RedirectResponse("/" if session_row.mfa_passed else "/login/totp", status_code=303)
    actor = Actor(user.id, user.username, client_ip(request))
    if not secret or not accounts.enroll_totp(db_session=db, settings=settings, user=user, secret=secret,
                                              code=code, actor=actor):
        return RedirectResponse(f"/account/totp/setup?error=1&next={quote(safe_next(next), safe='/')}", status_code=303)
    if not session_row.mfa_passed:
        accounts.mark_mfa_passed(db_session=db, session_row=session_row)
        accounts.complete_login(db_session=db, user=user, actor=actor, mfa=True)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.delete_cookie(TOTP_SETUP_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, db: SessionDep, session_row: PendingSession):
    accounts.end_session(db_session=db, session_row=session_row,
                         actor=Actor(session_row.user_id, session_row.user.username, client_ip(request)))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/account")
def account(request: Request, db: SessionDep, principal: CurrentUser):
    tokens = accounts.list_tokens(db_session=db, user_id=principal.user_id)
    return render(request, "accounts/account.html", {"tokens": tokens, "new_token": None})


@router.post("/account/tokens")
def account_create_token(request: Request, db: SessionDep, principal: CurrentUser, name: Annotated[str, Form()] = ""):
    user = accounts.get_user(db_session=db, username=principal.username)
    if user is None:
        raise NotFound("User not found")
    _token, raw = accounts.create_token(db_session=db, user=user, name=name, actor=actor_of(request, principal))
    tokens = accounts.list_tokens(db_session=db, user_id=principal.user_id)
    return render(request, "accounts/account.html", {"tokens": tokens, "new_token": raw}, status_code=201)


@router.post("/account/tokens/{token_id}/revoke")
def account_revoke_token(token_id: int, request: Request, db: SessionDep, principal: CurrentUser):
    accounts.revoke_token(db_session=db, user_id=principal.user_id, token_id=token_id,
                          actor=actor_of(request, principal))
    return RedirectResponse("/account", status_code=303)


UserViewer = Annotated[Principal, Depends(require(Permission.user_view))]
Granter = Annotated[Principal, Depends(require(Permission.grant_manage))]
UserManager = Annotated[Principal, Depends(require(Permission.user_manage))]


def _users_page(request: Request, db, principal: Principal, error: str | None = None, status_code: int = 200,
                form: dict | None = None):
    users = accounts.list_users(db_session=db, principal=principal)
    grantable = sorted({role for r in principal.roles for role in GRANTABLE_BY.get(r, ())})
    rows = [(u, [(g, accounts.may_grant(principal, g.role, g.area_path)) for g in accounts.visible_grants(principal, u)])
            for u in users]
    return render(request, "accounts/users.html", {
        "rows": rows, "grantable": grantable, "error": error, "form": form or {},
        "can_grant": principal.can(Permission.grant_manage), "can_create": principal.can(Permission.user_manage),
        "area_choices": areas.grant_choices(db_session=db, principal=principal),
    }, status_code=status_code)


@router.get("/users")
def users_page(request: Request, db: SessionDep, principal: UserViewer):
    return _users_page(request, db, principal)


def _wib(value: str, field: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=WIB)
    except ValueError:
        raise Invalid("%(field)s is not a valid date and time", field=field) from None


@router.post("/users/grants")
def users_add_grant(request: Request, db: SessionDep, principal: Granter, username: Annotated[str, Form()] = "",
                    role: Annotated[str, Form()] = "", area_code: Annotated[str, Form()] = "",
                    starts_at: Annotated[str, Form()] = "", ends_at: Annotated[str, Form()] = ""):
    form = {"username": username, "role": role, "area_code": area_code, "starts_at": starts_at, "ends_at": ends_at}
    try:
        accounts.add_grant(db_session=db, username=username.strip().lower(), role=role, area_code=area_code.strip(),
                           starts_at=_wib(starts_at, _("Start")), ends_at=_wib(ends_at, _("End")),
                           actor=actor_of(request, principal), granter=principal)
    except DomainError as exc:
        # Validation happens before anything is written: re-show the form with the reason.
        return _users_page(request, db, principal, translated(exc), exc.status_code, form)
    return RedirectResponse("/users", status_code=303)


@router.post("/users/grants/{grant_id}/revoke")
def users_revoke_grant(grant_id: int, request: Request, db: SessionDep, principal: Granter):
    accounts.revoke_grant(db_session=db, grant_id=grant_id, actor=actor_of(request, principal), granter=principal)
    return RedirectResponse("/users", status_code=303)


@router.post("/users")
def users_create(request: Request, db: SessionDep, principal: UserManager, username: Annotated[str, Form()] = "",
                 full_name: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
                 unit: Annotated[str, Form()] = ""):
    try:
        accounts.create_user(db_session=db, username=username, full_name=full_name, password=password,
                             unit=unit or None, actor=actor_of(request, principal))
    except DomainError as exc:
        return _users_page(request, db, principal, translated(exc), exc.status_code,
                           {"new_username": username, "full_name": full_name, "unit": unit})
    return RedirectResponse("/users", status_code=303)

