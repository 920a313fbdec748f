"""One dataclass per audited action. The service that acts records the event in its own
transaction (``audit.service.record``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class AuditAction:
    action: ClassVar[str]
    object_type: ClassVar[str | None] = None

    def object_id(self) -> str | None:
        return None

    def data(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LoginSucceeded(AuditAction):
    action: ClassVar[str] = "auth.login"
    object_type: ClassVar[str] = "user"
    username: str
    mfa: bool = False

    def object_id(self) -> str:
        return self.username


@dataclass(frozen=True)
class LoginFailed(AuditAction):
    action: ClassVar[str] = "auth.login_failed"
    object_type: ClassVar[str] = "user"
    username: str
    reason: str  # bad_password, unknown_user, locked, inactive, bad_totp

    def object_id(self) -> str:
        return self.username


@dataclass(frozen=True)
class AccountLocked(AuditAction):
    action: ClassVar[str] = "auth.locked"
    object_type: ClassVar[str] = "user"
    username: str
    until: str

    def object_id(self) -> str:
        return self.username


@dataclass(frozen=True)
class LoggedOut(AuditAction):
    action: ClassVar[str] = "auth.logout"
    object_type: ClassVar[str] = "user"
    username: str

    def object_id(self) -> str:
        return self.username


@dataclass(frozen=True)
class TotpEnrolled(AuditAction):
    action: ClassVar[str] = "auth.totp_enrolled"
    object_type: ClassVar[str] = "user"
    username: str

    def object_id(self) -> str:
        return self.username


@dataclass(frozen=True)
class UserCreated(AuditAction):
    action: ClassVar[str] = "user.created"
    object_type: ClassVar[str] = "user"
    username: str

    def object_id(self) -> str:
        return self.username


@dataclass(frozen=True)
class PasswordChanged(AuditAction):
    action: ClassVar[str] = "user.password_changed"
    object_type: ClassVar[str] = "user"
    username: str

    def object_id(self) -> str:
        return self.username


@dataclass(frozen=True)
class UserDisabled(AuditAction):
    action: ClassVar[str] = "user.disabled"
    object_type: ClassVar[str] = "user"
    username: str

    def object_id(self) -> str:
        return self.username


@dataclass(frozen=True)
class UserEnabled(AuditAction):
    action: ClassVar[str] = "user.enabled"
    object_type: ClassVar[str] = "user"
    username: str

    def object_id(self) -> str:
        return self.username


@dataclass(frozen=True)
class AccountUnlocked(AuditAction):
    action: ClassVar[str] = "user.unlocked"
    object_type: ClassVar[str] = "user"
    username: str

    def object_id(self) -> str:
        return self.username


@dataclass(frozen=True)
class TotpReset(AuditAction):
    action: ClassVar[str] = "user.totp_reset"
    object_type: ClassVar[str] = "user"
    username: str

    def object_id(self) -> str:
        return self.username


@dataclass(frozen=True)
class GrantAdded(AuditAction):
    action: ClassVar[str] = "grant.added"
    object_type: ClassVar[str] = "grant"
    grant_id: int
    username: str
    role: str
    area_code: str
    starts_at: str | None = None
    ends_at: str | None = None

    def object_id(self) -> str:
        return str(self.grant_id)


@dataclass(frozen=True)
class GrantRevoked(AuditAction):
    action: ClassVar[str] = "grant.revoked"
    object_type: ClassVar[str] = "grant"
    grant_id: int
    username: str
    role: str
    area_code: str

    def object_id(self) -> str:
        return str(self.grant_id)


@dataclass(frozen=True)
class TokenCreated(AuditAction):
    action: ClassVar[str] = "token.created"
    object_type: ClassVar[str] = "api_token"
    token_id: int
    name: str
    username: str

    def object_id(self) -> str:
        return str(self.token_id)


@dataclass(frozen=True)
class TokenRevoked(AuditAction):
    action: ClassVar[str] = "token.revoked"
    object_type: ClassVar[str] = "api_token"
    token_id: int
    name: str
    username: str

    def object_id(self) -> str:
        return str(self.token_id)


@dataclass(frozen=True)
class AreasImported(AuditAction):
    action: ClassVar[str] = "areas.imported"
    object_type: ClassVar[str] = "area"
    level: str
    source: str
    created: int
    updated: int
    features: int
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AuditExported(AuditAction):
    action: ClassVar[str] = "audit.exported"
    rows: int
    filters: dict[str, Any] = field(default_factory=dict)
