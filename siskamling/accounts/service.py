"""Users, grants, login sessions, API tokens and two-factor authentication."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from siskamling.accounts.models import ApiToken, Grant, LoginSession, User
from siskamling.areas import service as areas
from siskamling.audit import events as ev
from siskamling.audit import service as audit
from siskamling.audit.service import Actor
from siskamling.core import security
from siskamling.core.config import Settings
from siskamling.core.errors import Conflict, Forbidden, Invalid, NotFound
from siskamling.core.permissions import GRANTABLE_BY, MFA_ROLES, Permission, Role
from siskamling.core.scope import Principal, ScopeGrant, in_scope, scoped
from siskamling.core.time import utcnow

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
TOKEN_PREFIX = "skm_"


# --- users -----------------------------------------------------------------------------------


def get_user(*, db_session: Session, username: str) -> User | None:
    return db_session.scalar(select(User).where(User.username == username.lower()))


def check_password_strength(password: str, username: str) -> None:
    if len(password) < security.MIN_PASSWORD_LENGTH:
        raise Invalid("Password must be at least %(n)s characters", n=security.MIN_PASSWORD_LENGTH)
    if username.lower() in password.lower():
        raise Invalid("Password must not contain the username")


def create_user(
    *, db_session: Session, username: str, full_name: str, password: str, actor: Actor,
    email: str | None = None, phone: str | None = None, unit: str | None = None,
) -> User:
    username = username.strip().lower()
    if not USERNAME_RE.match(username):
        raise Invalid("Username must be 3–64 characters: lowercase letters, digits, dot, dash, underscore")
    if not full_name.strip():
        raise Invalid("Full name is required")
    check_password_strength(password, username)
    if get_user(db_session=db_session, username=username):
        raise Conflict("Username %(username)s is already taken", username=username)
    user = User(username=username, full_name=full_name.strip(), email=email, phone=phone, unit=unit,
                password_hash=security.hash_password(password))
    db_session.add(user)
    db_session.flush()
    audit.record(db_session=db_session, event=ev.UserCreated(username=username), actor=actor)
    return user


def set_password(*, db_session: Session, user: User, password: str, actor: Actor) -> None:
    check_password_strength(password, user.username)
    user.password_hash = security.hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    _end_sessions(db_session, user)
    audit.record(db_session=db_session, event=ev.PasswordChanged(username=user.username), actor=actor)


def _end_sessions(db_session: Session, user: User) -> None:
    db_session.execute(update(LoginSession).where(LoginSession.user_id == user.id, LoginSession.ended_at.is_(None))
                       .values(ended_at=utcnow()))


def set_active(*, db_session: Session, user: User, active: bool, actor: Actor) -> None:
    """Disabling ends every session at once; API tokens stop working while the user is disabled."""
    if user.is_active == active:
        raise Conflict("%(username)s is already %(state)s", username=user.username,
                       state="active" if active else "disabled")
    user.is_active = active
    if not active:
        _end_sessions(db_session, user)
    event = ev.UserEnabled if active else ev.UserDisabled
    audit.record(db_session=db_session, event=event(username=user.username), actor=actor)


def unlock(*, db_session: Session, user: User, actor: Actor) -> None:
    user.failed_logins = 0
    user.locked_until = None
    audit.record(db_session=db_session, event=ev.AccountUnlocked(username=user.username), actor=actor)


def reset_totp(*, db_session: Session, user: User, actor: Actor) -> None:
    """For a lost phone: the user enrols a new key at their next login; current sessions end."""
    user.totp_secret_enc = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    _end_sessions(db_session, user)
    audit.record(db_session=db_session, event=ev.TotpReset(username=user.username), actor=actor)


def list_users(*, db_session: Session, principal: Principal) -> list[User]:
    """Users holding a grant inside the principal's user-view scope (admins: everyone)."""
    roots = areas.root_paths(db_session=db_session)
    if roots and all(in_scope(principal, Permission.user_manage, r) for r in roots):
        stmt = select(User)
    else:
        sub = scoped(select(Grant.user_id), principal, Permission.user_view, Grant.area_path)
        stmt = select(User).where(User.id.in_(sub))
    return list(db_session.scalars(stmt.options(selectinload(User.grants).selectinload(Grant.area)).order_by(User.username)))


def visible_grants(principal: Principal, user: User, at: datetime | None = None) -> list[Grant]:
    """The user's current and future grants that lie inside the principal's user-view scope:
    an operator sees what their own people do here, not what they do elsewhere."""
    at = at or utcnow()
    return [g for g in user.grants if g.revoked_at is None and (g.ends_at is None or g.ends_at > at)
            and in_scope(principal, Permission.user_view, g.area_path)]


def list_all_users(*, db_session: Session) -> list[User]:
    """Every user with every grant, for the machine operator's CLI."""
    return list(db_session.scalars(select(User).options(selectinload(User.grants).selectinload(Grant.area)).order_by(User.username)))


# --- grants ----------------------------------------------------------------------------------


def active_grants(*, db_session: Session, user_id: int, at: datetime | None = None) -> list[Grant]:
    at = at or utcnow()
    stmt = (
        select(Grant)
        .where(Grant.user_id == user_id, Grant.revoked_at.is_(None))
        .where((Grant.starts_at.is_(None)) | (Grant.starts_at <= at))
        .where((Grant.ends_at.is_(None)) | (Grant.ends_at > at))
        .options(selectinload(Grant.area))
    )
    return list(db_session.scalars(stmt))


def next_access_change(*, db_session: Session, user_id: int, session_token: str | None,
                       after: datetime | None = None) -> datetime | None:
    """The next moment the user's access changes by itself: one of their grants starts or ends
    (a satpam's duty) or their login session expires. A long-lived connection (live video, an
    event stream) checks its access again exactly then."""
    after = after or utcnow()
    mine = (Grant.user_id == user_id, Grant.revoked_at.is_(None))
    times = [
        db_session.scalar(select(func.min(Grant.starts_at)).where(*mine, Grant.starts_at > after)),
        db_session.scalar(select(func.min(Grant.ends_at)).where(*mine, Grant.ends_at > after)),
        db_session.scalar(select(LoginSession.expires_at).where(
            LoginSession.token_hash == security.sha256_hex(session_token))) if session_token else None,
    ]
    times = [t for t in times if t is not None]
    return min(times) if times else None


def principal_for(*, db_session: Session, user: User, via_token: bool = False) -> Principal:
    grants = tuple(
        ScopeGrant(Role(g.role), g.area_path, g.area.code) for g in active_grants(db_session=db_session, user_id=user.id)
    )
    return Principal(user.id, user.username, user.full_name, grants, via_token)


def needs_mfa(*, db_session: Session, user: User) -> bool:
    """Admins and operators need a second factor, including for grants that start later."""
    stmt = select(Grant.id).where(
        Grant.user_id == user.id, Grant.revoked_at.is_(None), Grant.role.in_(MFA_ROLES)
    )
    return db_session.scalar(stmt.limit(1)) is not None


def add_grant(
    *, db_session: Session, username: str, role: str, area_code: str, actor: Actor,
    granter: Principal | None = None, starts_at: datetime | None = None, ends_at: datetime | None = None,
) -> Grant:
    """``granter`` None means the CLI (an operator of the machine); otherwise the granter must hold
    a role that may give ``role`` over the area."""
    user = get_user(db_session=db_session, username=username)
    if user is None:
        raise NotFound("User %(username)s not found", username=username)
    try:
        role_ = Role(role)
    except ValueError:
        raise Invalid("Unknown role %(role)s", role=role) from None
    area = areas.get_by_code(db_session=db_session, code=area_code)
    if area is None or (granter and not in_scope(granter, Permission.grant_manage, area.path)):
        raise NotFound("Area %(code)s not found", code=area_code)
    if granter and not may_grant(granter, role_, area.path):
        raise Forbidden("You may not grant the role %(role)s", role=role_)
    if starts_at and ends_at and ends_at <= starts_at:
        raise Invalid("The grant must end after it starts")
    if ends_at and ends_at <= utcnow():
        raise Invalid("The grant's end time is already past")
    if _same_grant_exists(db_session, user.id, role_, area.id, starts_at, ends_at):
        raise Conflict("%(username)s already holds this role over this area", username=user.username)
    grant = Grant(user=user, role=role_, area=area, area_path=area.path, starts_at=starts_at, ends_at=ends_at,
                  created_by_id=actor.id)
    db_session.add(grant)
    db_session.flush()
    audit.record(
        db_session=db_session,
        event=ev.GrantAdded(grant_id=grant.id, username=user.username, role=role_, area_code=area.code,
                            starts_at=starts_at.isoformat() if starts_at else None,
                            ends_at=ends_at.isoformat() if ends_at else None),
        actor=actor, area_path=area.path,
    )
    return grant


def may_grant(granter: Principal, role: str, area_path: str) -> bool:
    """Granting and revoking need the same authority: a role over the area that may hand out ``role``."""
    return any(role in GRANTABLE_BY.get(r, ()) for r in granter.roles_over(area_path))


def _same_grant_exists(db_session: Session, user_id: int, role: Role, area_id: int, starts_at, ends_at) -> bool:
    stmt = select(Grant.id).where(Grant.user_id == user_id, Grant.role == role, Grant.area_id == area_id,
                                  Grant.revoked_at.is_(None))
    stmt = stmt.where(Grant.starts_at.is_(None) if starts_at is None else Grant.starts_at == starts_at)
    stmt = stmt.where(Grant.ends_at.is_(None) if ends_at is None else Grant.ends_at == ends_at)
    return db_session.scalar(stmt.limit(1)) is not None


def revoke_grant(*, db_session: Session, grant_id: int, actor: Actor, granter: Principal | None = None) -> Grant:
    grant = db_session.get(Grant, grant_id)
    if grant is None or (granter and not in_scope(granter, Permission.grant_manage, grant.area_path)):
        raise NotFound("Grant %(id)s not found", id=grant_id)
    if granter and not may_grant(granter, grant.role, grant.area_path):
        raise Forbidden("You may not revoke the role %(role)s", role=grant.role)
    if grant.revoked_at is not None:
        raise Conflict("Grant %(id)s is already revoked", id=grant_id)
    grant.revoked_at = utcnow()
    grant.revoked_by_id = actor.id
    audit.record(
        db_session=db_session,
        event=ev.GrantRevoked(grant_id=grant.id, username=grant.user.username, role=grant.role,
                              area_code=grant.area.code),
        actor=actor, area_path=grant.area_path,
    )
    return grant


# --- login -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    user: User | None = None
    reason: str | None = None  # bad_credentials | locked | inactive


def authenticate(*, db_session: Session, settings: Settings, username: str, password: str, ip: str | None) -> LoginResult:
    """Check a password. Failures are counted and audited in the caller's transaction, which the
    caller commits: a failed login must leave its trace, so this never raises for bad input."""
    now = utcnow()
    user = get_user(db_session=db_session, username=username or "")
    actor = Actor(user.id if user else None, (username or "")[:120], ip)
    if user is None:
        security.verify_password(None, password or "")
        _fail(db_session, actor, username, "unknown_user")
        return LoginResult(False, reason="bad_credentials")
    if user.locked_until and user.locked_until > now:
        _fail(db_session, actor, user.username, "locked")
        return LoginResult(False, reason="locked")
    if not security.verify_password(user.password_hash, password or ""):
        register_failure(db_session=db_session, settings=settings, user=user, actor=actor, reason="bad_password")
        return LoginResult(False, reason="locked" if user.locked_until else "bad_credentials")
    if not user.is_active:
        _fail(db_session, actor, user.username, "inactive")
        return LoginResult(False, reason="bad_credentials")
    if security.needs_rehash(user.password_hash):
        user.password_hash = security.hash_password(password)
    return LoginResult(True, user=user)


def register_failure(*, db_session: Session, settings: Settings, user: User, actor: Actor, reason: str) -> None:
    user.failed_logins = (user.failed_logins or 0) + 1
    _fail(db_session, actor, user.username, reason)
    if user.failed_logins >= settings.login_max_failures:
        user.locked_until = utcnow() + timedelta(minutes=settings.login_lockout_minutes)
        user.failed_logins = 0
        audit.record(db_session=db_session, event=ev.AccountLocked(username=user.username,
                     until=user.locked_until.isoformat()), actor=actor)


def _fail(db_session: Session, actor: Actor, username: str, reason: str) -> None:
    audit.record(db_session=db_session, event=ev.LoginFailed(username=(username or "")[:64], reason=reason), actor=actor)


def start_session(*, db_session: Session, settings: Settings, user: User, mfa_passed: bool, ip: str | None,
                  user_agent: str | None) -> str:
    """Returns the raw cookie token; the database keeps only its hash."""
    token = security.new_token()
    now = utcnow()
    db_session.add(LoginSession(
        token_hash=security.sha256_hex(token), user_id=user.id, mfa_passed=mfa_passed, created_at=now,
        last_seen_at=now, expires_at=now + timedelta(hours=settings.session_hours), ip=ip,
        user_agent=(user_agent or "")[:300],
    ))
    db_session.flush()
    return token


def complete_login(*, db_session: Session, user: User, actor: Actor, mfa: bool) -> None:
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = utcnow()
    audit.record(db_session=db_session, event=ev.LoginSucceeded(username=user.username, mfa=mfa), actor=actor)


def resolve_session(*, db_session: Session, settings: Settings, token: str) -> LoginSession | None:
    now = utcnow()
    row = db_session.scalar(
        select(LoginSession).where(LoginSession.token_hash == security.sha256_hex(token))
        .options(selectinload(LoginSession.user))
    )
    if row is None or row.ended_at is not None or row.expires_at <= now or not row.user.is_active:
        return None
    if (now - row.last_seen_at) > timedelta(minutes=1):
        # Sliding expiry, written at most once a minute per session.
        row.last_seen_at = now
        row.expires_at = now + timedelta(hours=settings.session_hours)
    return row


def end_session(*, db_session: Session, session_row: LoginSession, actor: Actor) -> None:
    session_row.ended_at = utcnow()
    audit.record(db_session=db_session, event=ev.LoggedOut(username=session_row.user.username), actor=actor)


# --- two-factor (TOTP) -----------------------------------------------------------------------


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(*, settings: Settings, user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=settings.totp_issuer)


def _totp_step(secret: str, code: str) -> int | None:
    """The time step a code matches (±1 step of clock drift), or None."""
    totp = pyotp.TOTP(secret)
    code = (code or "").strip().replace(" ", "")
    now = utcnow()
    for drift in (0, -1, 1):
        at = now + timedelta(seconds=30 * drift)
        if totp.verify(code, for_time=at, valid_window=0):
            return totp.timecode(at)
    return None


def enroll_totp(*, db_session: Session, settings: Settings, user: User, secret: str, code: str, actor: Actor) -> bool:
    step = _totp_step(secret, code)
    if step is None:
        return False
    user.totp_secret_enc = security.SecretBox(settings.secret_key).seal(secret)
    user.totp_enabled_at = utcnow()
    user.totp_last_step = step
    audit.record(db_session=db_session, event=ev.TotpEnrolled(username=user.username), actor=actor)
    return True


def verify_totp(*, db_session: Session, settings: Settings, user: User, code: str) -> bool:
    """A code is accepted once: a replayed code (same time step) is refused."""
    if not user.totp_secret_enc:
        return False
    secret = security.SecretBox(settings.secret_key).open(user.totp_secret_enc)
    step = _totp_step(secret, code)
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        return False
    user.totp_last_step = step
    return True


def current_totp(*, settings: Settings, user: User) -> str:
    """The code an authenticator would show now (used by the demo helper only)."""
    return pyotp.TOTP(security.SecretBox(settings.secret_key).open(user.totp_secret_enc)).now()


def mark_mfa_passed(*, db_session: Session, session_row: LoginSession) -> None:
    session_row.mfa_passed = True


# --- API tokens ------------------------------------------------------------------------------


def create_token(*, db_session: Session, user: User, name: str, actor: Actor,
                 expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise Invalid("Token name is required (at most 100 characters)")
    if expires_at is not None and expires_at <= utcnow():
        raise Invalid("The token's expiry time is already past")
    raw = security.new_token(TOKEN_PREFIX)
    token = ApiToken(user_id=user.id, name=name, prefix=raw[:12], token_hash=security.sha256_hex(raw),
                     expires_at=expires_at)
    db_session.add(token)
    db_session.flush()
    audit.record(db_session=db_session, event=ev.TokenCreated(token_id=token.id, name=name, username=user.username),
                 actor=actor)
    return token, raw


def list_tokens(*, db_session: Session, user_id: int) -> list[ApiToken]:
    return list(db_session.scalars(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc())))


def revoke_token(*, db_session: Session, user_id: int, token_id: int, actor: Actor) -> ApiToken:
    token = db_session.scalar(select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user_id))
    if token is None:
        raise NotFound("Token not found")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(db_session=db_session, event=ev.TokenRevoked(token_id=token.id, name=token.name,
                     username=token.user.username), actor=actor)
    return token


def resolve_token(*, db_session: Session, raw: str) -> User | None:
    now = utcnow()
    token = db_session.scalar(
        select(ApiToken).where(ApiToken.token_hash == security.sha256_hex(raw)).options(selectinload(ApiToken.user))
    )
    if token is None or token.revoked_at is not None or (token.expires_at and token.expires_at <= now):
        return None
    if not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
        token.last_used_at = now
    return token.user


def count_watchers(*, db_session: Session, paths: list[str]) -> dict[str, int]:
    """Active grants at or below each given area path (the people who watch that area)."""
    now = utcnow()
    # One row per distinct grant area (not per grant), then each is credited to the listed
    # areas it lies in.
    rows = db_session.execute(
        select(Grant.area_path, func.count(Grant.id)).where(Grant.revoked_at.is_(None))
        .where((Grant.starts_at.is_(None)) | (Grant.starts_at <= now))
        .where((Grant.ends_at.is_(None)) | (Grant.ends_at > now))
        .group_by(Grant.area_path)
    ).all()
    wanted = set(paths)
    counts = dict.fromkeys(paths, 0)
    for grant_path, n in rows:
        segments = grant_path.split("/")
        for i in range(1, len(segments) + 1):
            prefix = "/".join(segments[:i])
            if prefix in wanted:
                counts[prefix] += n
    return counts


def install_totp_secret(*, settings: Settings, user: User, secret: str) -> None:
    """Enrol a known secret without a code (demo accounts, whose secrets are printed)."""
    user.totp_secret_enc = security.SecretBox(settings.secret_key).seal(secret)
    user.totp_enabled_at = utcnow()
