"""Request dependencies: the database session, who is asking, and the guards every route
declares. A route is either ``Depends(public)`` or guarded by ``require(...)``/``login_pending``;
``tests/test_scope.py`` walks the route table and fails on any route that is neither."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request, WebSocket, WebSocketException
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.requests import HTTPConnection

from siskamling.accounts import service as accounts
from siskamling.accounts.models import LoginSession
from siskamling.audit.service import Actor
from siskamling.core.config import Settings
from siskamling.core.db import session_scope
from siskamling.core.errors import Forbidden, Unauthenticated
from siskamling.core.permissions import Permission
from siskamling.core.scope import Principal
from siskamling.core.security import csrf_valid
from siskamling.core.time import utcnow

SESSION_COOKIE = "siskamling_session"
CSRF_COOKIE = "siskamling_csrf"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def get_db(request: Request) -> Iterator[Session]:
    with session_scope(request.app.state.session_factory) as session:
        yield session


# scope="function": commit before the response leaves, so a client that follows a redirect
# always sees what the request wrote.
SessionDep = Annotated[Session, Depends(get_db, scope="function")]


async def read_form(request: Request) -> FormData:
    """The submitted form, read on the event loop, so that the route taking it can be a plain
    function: database work belongs in the threadpool, never on the loop (on SQLite a loop waiting
    for the write lock cannot let the request holding it commit)."""
    return await request.form()


FormDep = Annotated[FormData, Depends(read_form)]


async def get_settings(request: Request) -> Settings:  # async: no thread hop for a lookup
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


class MfaRequired(Unauthenticated):
    def __init__(self, enrolled: bool) -> None:
        super().__init__("Two-factor verification required")
        self.enrolled = enrolled


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _login_session(request: HTTPConnection, db: Session, settings: Settings) -> LoginSession | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return accounts.resolve_session(db_session=db, settings=settings, token=token)


def get_principal(request: Request, db: SessionDep, settings: SettingsDep) -> Principal | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        user = accounts.resolve_token(db_session=db, raw=auth[7:].strip())
        if user is None:
            raise Unauthenticated("Invalid, expired or revoked API token")
        principal = accounts.principal_for(db_session=db, user=user, via_token=True)
    else:
        row = _login_session(request, db, settings)
        if row is None:
            return None
        if not row.mfa_passed and accounts.needs_mfa(db_session=db, user=row.user):
            request.state.pending_session = row
            return None
        request.state.login_session = row
        principal = accounts.principal_for(db_session=db, user=row.user)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal | None, Depends(get_principal)]


def _raise_unauthenticated(request: Request) -> None:
    pending = getattr(request.state, "pending_session", None)
    if pending is not None:
        raise MfaRequired(enrolled=pending.user.totp_secret_enc is not None)
    raise Unauthenticated("Please log in")


def require(permission: Permission | None = None):
    """Guard: a logged-in user (with a second factor where their role needs one) who holds
    ``permission`` somewhere. What they may see inside is decided by the scope helpers."""

    def guard(request: Request, principal: PrincipalDep) -> Principal:
        if principal is None:
            _raise_unauthenticated(request)
        if permission is not None and not principal.can(permission):
            raise Forbidden("You do not have access to this page")
        return principal

    guard.__siskamling_guard__ = permission or "login"  # type: ignore[attr-defined]
    return guard


def login_pending(request: Request, db: SessionDep, settings: SettingsDep) -> LoginSession:
    """Guard for the second login step: a session that passed the password but not yet TOTP."""
    row = _login_session(request, db, settings)
    if row is None:
        raise Unauthenticated("Please log in")
    return row


login_pending.__siskamling_guard__ = "login-pending"  # type: ignore[attr-defined]


async def public() -> None:
    """Marks a route as open to everyone. Use sparingly and deliberately. (Async: FastAPI runs a
    plain function dependency in the threadpool, a thread hop for nothing.)"""


public.__siskamling_public__ = True  # type: ignore[attr-defined]

CurrentUser = Annotated[Principal, Depends(require())]


def actor_of(request: Request, principal: Principal | None) -> Actor:
    if principal is None:
        return Actor(None, "anonymous", client_ip(request))
    return Actor(principal.user_id, principal.username, client_ip(request))


async def csrf_protect(connection: HTTPConnection) -> None:
    """Every state-changing request made with cookies carries a CSRF token, in the form field
    ``csrf_token`` or the ``X-CSRF-Token`` header (HTMX, fetch). Bearer-token API calls, the city
    app's key-authenticated channel and Open311 clients carry no cookies and need none. WebSockets are checked by their Origin instead (``ws_viewer``)."""
    if connection.scope["type"] != "http":
        return
    request = connection
    if request.method in SAFE_METHODS or request.headers.get("authorization", "").lower().startswith("bearer "):
        return
    # Applications authenticated by a key of their own (the city app's X-Api-Key, Open311's
    # api_key) act without cookies; a key a browser does not hold cannot be forged cross-site.
    if "x-api-key" in request.headers or request.url.path.startswith("/open311/"):
        return
    token = request.headers.get("x-csrf-token")
    if token is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        token = value if isinstance(value, str) else None
    if not csrf_valid(request.app.state.settings.secret_key, request.cookies.get(CSRF_COOKIE), token):
        raise Forbidden("The form has expired or did not come from this site. Reload the page and try again.")


def principal_for_session_token(db: Session, settings: Settings, token: str | None) -> Principal | None:
    """The user of a browser session (second factor passed where their role needs one), or None.
    Long-lived connections call this again while they stay open."""
    row = accounts.resolve_session(db_session=db, settings=settings, token=token) if token else None
    if row is None or (not row.mfa_passed and accounts.needs_mfa(db_session=db, user=row.user)):
        return None
    return accounts.principal_for(db_session=db, user=row.user)


def recheck_at(db: Session, principal: Principal, session_token: str | None, at_most_s: float) -> float:
    """When (``time.monotonic()``) a long-lived connection checks its access again unless the
    access watch wakes it first: the moment one of the user's grants starts or ends or the session
    expires, at the latest ``at_most_s`` from now."""
    now = utcnow()
    change = accounts.next_access_change(db_session=db, user_id=principal.user_id, session_token=session_token,
                                         after=now)
    wait = at_most_s if change is None else min(at_most_s, (change - now).total_seconds() + 0.2)
    return time.monotonic() + max(wait, 0.2)


def _short_lived_principal(connection: HTTPConnection) -> Principal | None:
    """Who a long-lived connection belongs to, read in a short transaction of its own: a socket or
    an event stream that stays open for an hour must not hold a database transaction (on SQLite,
    the write lock)."""
    with session_scope(connection.app.state.session_factory) as db:
        return principal_for_session_token(db, connection.app.state.settings, connection.cookies.get(SESSION_COOKIE))


def ws_viewer(websocket: WebSocket) -> Principal:
    """Guard for WebSockets: a logged-in browser session (second factor passed) from a page of
    this same site."""
    origin = websocket.headers.get("origin")
    scheme = "https" if websocket.url.scheme == "wss" else "http"
    if origin is None or origin != f"{scheme}://{websocket.headers.get('host')}":
        raise WebSocketException(code=1008, reason="cross-site connection refused")
    principal = _short_lived_principal(websocket)
    if principal is None:
        raise WebSocketException(code=1008, reason="login required")
    return principal


ws_viewer.__siskamling_guard__ = "websocket-login"  # type: ignore[attr-defined]


def stream_viewer(request: Request) -> Principal:
    """Guard for Server-Sent Event streams: like ``require()``, without holding a session open."""
    principal = _short_lived_principal(request)
    if principal is None:
        raise Unauthenticated("Please log in")
    return principal


stream_viewer.__siskamling_guard__ = "stream-login"  # type: ignore[attr-defined]
