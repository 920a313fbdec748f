"""One dataclass per audited action. The service that acts records the event in its own
transaction (``audit.service.record``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class AuditAction:
    action: ClassVar[str]
    object_type: ClassVar[str | None] = None
    id_field: ClassVar[str | None] = None  # the field that identifies the object acted on
    # Whether the change can end or change what a logged-in user may see (a logout, a revoked
    # grant, a camera's sharing): open live views and event streams check their access again
    # within seconds of such an entry (``audit.watch``).
    changes_access: ClassVar[bool] = False

    def object_id(self) -> str | None:
        return None if self.id_field is None else str(getattr(self, self.id_field))

    def data(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class UserAction(AuditAction):
    """An action about one user account; the object is the username."""

    object_type: ClassVar[str] = "user"
    id_field: ClassVar[str] = "username"
    username: str


@dataclass(frozen=True)
class LoginSucceeded(UserAction):
    action: ClassVar[str] = "auth.login"
    mfa: bool = False


@dataclass(frozen=True)
class LoginFailed(UserAction):
    action: ClassVar[str] = "auth.login_failed"
    reason: str  # bad_password, unknown_user, locked, inactive, bad_totp


@dataclass(frozen=True)
class AccountLocked(UserAction):
    action: ClassVar[str] = "auth.locked"
    until: str


@dataclass(frozen=True)
class LoggedOut(UserAction):
    action: ClassVar[str] = "auth.logout"
    changes_access: ClassVar[bool] = True


@dataclass(frozen=True)
class TotpEnrolled(UserAction):
    action: ClassVar[str] = "auth.totp_enrolled"


@dataclass(frozen=True)
class UserCreated(UserAction):
    action: ClassVar[str] = "user.created"


@dataclass(frozen=True)
class PasswordChanged(UserAction):
    action: ClassVar[str] = "user.password_changed"
    changes_access: ClassVar[bool] = True


@dataclass(frozen=True)
class UserDisabled(UserAction):
    action: ClassVar[str] = "user.disabled"
    changes_access: ClassVar[bool] = True


@dataclass(frozen=True)
class UserEnabled(UserAction):
    action: ClassVar[str] = "user.enabled"


@dataclass(frozen=True)
class AccountUnlocked(UserAction):
    action: ClassVar[str] = "user.unlocked"


@dataclass(frozen=True)
class TotpReset(UserAction):
    action: ClassVar[str] = "user.totp_reset"
    changes_access: ClassVar[bool] = True


@dataclass(frozen=True)
class GrantAdded(AuditAction):
    action: ClassVar[str] = "grant.added"
    changes_access: ClassVar[bool] = True
    object_type: ClassVar[str] = "grant"
    id_field: ClassVar[str] = "grant_id"
    grant_id: int
    username: str
    role: str
    area_code: str
    starts_at: str | None = None
    ends_at: str | None = None


@dataclass(frozen=True)
class GrantRevoked(AuditAction):
    action: ClassVar[str] = "grant.revoked"
    changes_access: ClassVar[bool] = True
    object_type: ClassVar[str] = "grant"
    id_field: ClassVar[str] = "grant_id"
    grant_id: int
    username: str
    role: str
    area_code: str


@dataclass(frozen=True)
class TokenCreated(AuditAction):
    action: ClassVar[str] = "token.created"
    object_type: ClassVar[str] = "api_token"
    id_field: ClassVar[str] = "token_id"
    token_id: int
    name: str
    username: str


@dataclass(frozen=True)
class TokenRevoked(AuditAction):
    action: ClassVar[str] = "token.revoked"
    object_type: ClassVar[str] = "api_token"
    id_field: ClassVar[str] = "token_id"
    token_id: int
    name: str
    username: str


@dataclass(frozen=True)
class AreasImported(AuditAction):
    action: ClassVar[str] = "areas.imported"
    changes_access: ClassVar[bool] = True
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


@dataclass(frozen=True)
class CameraAction(AuditAction):
    """An action about one camera; the object is its code."""

    object_type: ClassVar[str] = "camera"
    id_field: ClassVar[str] = "code"
    code: str


@dataclass(frozen=True)
class CameraRegistered(CameraAction):
    action: ClassVar[str] = "camera.registered"
    name: str
    area_code: str
    share_level: str
    live_roles: list[str]
    recording_roles: list[str]


@dataclass(frozen=True)
class CameraChanged(CameraAction):
    action: ClassVar[str] = "camera.changed"
    changes_access: ClassVar[bool] = True
    changed: list[str]  # field names; credentials are named, never shown


@dataclass(frozen=True)
class CameraProbed(CameraAction):
    """A camera manager checked the camera's connection: the probe's status for the main stream
    (and the sub-stream, if it has one). Never the address, the login or the probe's message."""

    action: ClassVar[str] = "camera.probed"
    status: str
    substream_status: str | None = None


@dataclass(frozen=True)
class CameraWallOpened(AuditAction):
    """Someone opened the camera wall: which cameras they could then watch."""

    action: ClassVar[str] = "camera.wall_opened"
    object_type: ClassVar[str] = "camera"
    cameras: list[str]


@dataclass(frozen=True)
class LiveViewStarted(CameraAction):
    action: ClassVar[str] = "camera.live_started"


@dataclass(frozen=True)
class LiveViewEnded(CameraAction):
    action: ClassVar[str] = "camera.live_ended"
    seconds: float
    reason: str


@dataclass(frozen=True)
class RecordingViewed(CameraAction):
    action: ClassVar[str] = "camera.recording_viewed"
    starts_at: str
    ends_at: str


@dataclass(frozen=True)
class EvidenceExported(AuditAction):
    action: ClassVar[str] = "evidence.exported"
    object_type: ClassVar[str] = "evidence_export"
    id_field: ClassVar[str] = "export_id"
    export_id: int
    code: str
    starts_at: str
    ends_at: str
    reason: str
    sha256: str


@dataclass(frozen=True)
class EvidenceDownloaded(AuditAction):
    action: ClassVar[str] = "evidence.downloaded"
    object_type: ClassVar[str] = "evidence_export"
    id_field: ClassVar[str] = "export_id"
    export_id: int
    file: str


@dataclass(frozen=True)
class HoldPlaced(AuditAction):
    action: ClassVar[str] = "evidence.hold_placed"
    object_type: ClassVar[str] = "evidence_hold"
    id_field: ClassVar[str] = "hold_id"
    hold_id: int
    code: str
    starts_at: str
    ends_at: str
    reason: str


@dataclass(frozen=True)
class HoldReleased(AuditAction):
    action: ClassVar[str] = "evidence.hold_released"
    object_type: ClassVar[str] = "evidence_hold"
    id_field: ClassVar[str] = "hold_id"
    hold_id: int
    code: str


# --- citizen reports ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportAction(AuditAction):
    """An action on one citizen report; the object is its ticket code."""

    object_type: ClassVar[str] = "report"
    id_field: ClassVar[str] = "ticket"
    ticket: str


@dataclass(frozen=True)
class ReportFiled(ReportAction):
    action: ClassVar[str] = "report.filed"
    category: str
    channel: str
    unit: str | None = None
    emergency: bool = False


@dataclass(frozen=True)
class ReportStatusChanged(ReportAction):
    action: ClassVar[str] = "report.status_changed"
    status_from: str
    status_to: str
    note: str | None = None


@dataclass(frozen=True)
class ReportHandedOver(ReportAction):
    """A unit passed the report on ("bukan kewenangan"), or an operator routed it."""

    action: ClassVar[str] = "report.handed_over"
    unit_from: str | None
    unit_to: str
    reason: str


@dataclass(frozen=True)
class ReportAssigned(ReportAction):
    action: ClassVar[str] = "report.assigned"
    officer: str


@dataclass(frozen=True)
class ReportMerged(ReportAction):
    action: ClassVar[str] = "report.merged"
    into: str


@dataclass(frozen=True)
class ReportConfirmed(ReportAction):
    action: ClassVar[str] = "report.confirmed"


@dataclass(frozen=True)
class ReportDisputed(ReportAction):
    action: ClassVar[str] = "report.disputed"
    reason: str


@dataclass(frozen=True)
class ReportsImported(AuditAction):
    action: ClassVar[str] = "report.imported"
    object_type: ClassVar[str] = "report"
    file: str
    count: int


@dataclass(frozen=True)
class CatalogueChanged(AuditAction):
    """An admin changed a category, unit, routing rule or intake client."""

    action: ClassVar[str] = "catalogue.changed"
    object_type: ClassVar[str] = "catalogue"
    id_field: ClassVar[str] = "name"
    kind: str  # category, unit, rule, client, member
    name: str
    change: str  # created, changed, removed


# --- deadlines ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlaBreached(ReportAction):
    """A report's deadline passed without the action it asked for: a ledger entry."""

    action: ClassVar[str] = "sla.breached"
    kind: str
    due_at: str
    officer_id: int | None = None
    unit_id: int | None = None
    policy_version: int = 0


@dataclass(frozen=True)
class SlaPolicyChanged(AuditAction):
    """An admin saved a new version of the deadline policy (version 0: a day off was declared)."""

    action: ClassVar[str] = "sla.policy_changed"
    object_type: ClassVar[str] = "sla_policy"
    id_field: ClassVar[str] = "version"
    version: int
    note: str | None = None


@dataclass(frozen=True)
class SlaAppealed(ReportAction):
    """An officer appealed a ledger entry."""

    action: ClassVar[str] = "sla.appealed"
    breach_id: int
    grounds: str


@dataclass(frozen=True)
class SlaAppealDecided(ReportAction):
    """The unit's head or an admin accepted (voiding the entry for deductions) or rejected an appeal."""

    action: ClassVar[str] = "sla.appeal_decided"
    breach_id: int
    decision: str
    reason: str


# --- camera requests and placement plans ---------------------------------------------------------


@dataclass(frozen=True)
class CameraRequestAction(AuditAction):
    """An action on one camera request; the object is its code."""

    object_type: ClassVar[str] = "camera_request"
    id_field: ClassVar[str] = "code"
    code: str


@dataclass(frozen=True)
class CameraRequested(CameraRequestAction):
    action: ClassVar[str] = "camera_request.filed"
    reason: str
    site_type: str


@dataclass(frozen=True)
class CameraRequestDecided(CameraRequestAction):
    """A reviewer moved the request on (survey, approval, refusal, deferral, installation)."""

    action: ClassVar[str] = "camera_request.status_changed"
    status_from: str
    status_to: str
    reason: str | None = None
    camera: str | None = None


@dataclass(frozen=True)
class CameraRequestSupported(CameraRequestAction):
    action: ClassVar[str] = "camera_request.supported"


@dataclass(frozen=True)
class IncidentsImported(AuditAction):
    action: ClassVar[str] = "incident.imported"
    object_type: ClassVar[str] = "incident"
    source: str
    file: str
    count: int


@dataclass(frozen=True)
class PlanCreated(AuditAction):
    action: ClassVar[str] = "placement.planned"
    object_type: ClassVar[str] = "placement_plan"
    id_field: ClassVar[str] = "plan_id"
    plan_id: int
    name: str
    sites: int
    value: float
    gap: float
    method: str


@dataclass(frozen=True)
class PlanExported(AuditAction):
    action: ClassVar[str] = "placement.exported"
    object_type: ClassVar[str] = "placement_plan"
    id_field: ClassVar[str] = "plan_id"
    plan_id: int
    format: str
