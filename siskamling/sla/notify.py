"""Reminders and escalations to people, through pluggable notifiers (email by SMTP today).

The sweep writes a ``Notification`` row per recipient in its own transaction (so a reminder
claimed once is queued once); the scheduler sends what is due, outside any transaction, and
retries with backoff. A notifier is a class with ``send(recipient, subject, body)``; register
another channel in ``NOTIFIERS``.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siskamling.accounts.models import Grant, User
from siskamling.core import scheduler
from siskamling.core.config import Settings
from siskamling.core.db import database_now, session_scope
from siskamling.core.outbox import claim_due
from siskamling.core.permissions import Role
from siskamling.core.time import format_wib
from siskamling.reports.models import Report
from siskamling.sla.models import Notification

log = logging.getLogger(__name__)
CLAIM_S = 120
MAX_ATTEMPTS = 8
KIND_NAMES = {"first_action": "tindakan pertama", "resolution": "penyelesaian"}


class Notifier(Protocol):
    def send(self, recipient: str, subject: str, body: str) -> None: ...


class EmailNotifier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, recipient: str, subject: str, body: str) -> None:
        s = self.settings
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = s.smtp_from, recipient, subject
        message.set_content(body)
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=20) as smtp:
            if s.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if s.smtp_username:
                smtp.login(s.smtp_username, s.smtp_password)
            smtp.send_message(message)


NOTIFIERS: dict[str, type] = {"email": EmailNotifier}


def enabled(settings: Settings) -> bool:
    return bool(settings.smtp_host)


# --- who hears about what ----------------------------------------------------------------------


def _users(db_session: Session, ids: list[int]) -> list[User]:
    if not ids:
        return []
    found = {u.id: u for u in db_session.scalars(select(User).where(User.id.in_(ids), User.is_active.is_(True)))}
    return [found[i] for i in ids if i in found]


def _operators(db_session: Session, area_path: str) -> list[User]:
    """Operators whose grant covers the report's area (an ancestor or the area itself)."""
    parts = area_path.split("/")
    paths = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    return list(db_session.scalars(select(User).join(Grant, Grant.user_id == User.id).where(
        Grant.role == Role.operator.value, Grant.area_path.in_(paths), User.is_active.is_(True))
        .distinct()))


def _link(settings: Settings, report: Report) -> str:
    return f"{settings.public_url.rstrip('/')}/reports/{report.ticket}"


def _queue(db_session: Session, users: list[User], kind: str, report: Report, subject: str, body: str) -> int:
    seen: set[str] = set()
    for user in users:
        if not user.email or user.email in seen:
            continue
        seen.add(user.email)
        db_session.add(Notification(channel="email", user_id=user.id, recipient=user.email, subject=subject,
                                    body=f"Yth. {user.full_name},\n\n{body}", kind=kind, report_id=report.id))
    return len(seen)


def reminder(*, db_session: Session, settings: Settings, report: Report, kind: str, due_at: datetime,
             user_id: int, number: int) -> int:
    """To whoever holds the report: the officer assigned, or the unit's head."""
    if not enabled(settings):
        return 0
    users = _users(db_session, [user_id])
    subject = f"Pengingat {number}: laporan {report.ticket} jatuh tempo {format_wib(due_at)}"
    body = (f"Tenggat {KIND_NAMES.get(kind, kind)} laporan {report.ticket} jatuh pada {format_wib(due_at)}.\n"
            f"Buka laporan: {_link(settings, report)}\n\n"
            f"Pesan ini dikirim otomatis oleh Siskamling.")
    return _queue(db_session, users, "reminder", report, subject, body)


def escalation(*, db_session: Session, settings: Settings, report: Report, kind: str, due_at: datetime,
               head_ids: list[int]) -> int:
    """At a breach: to the unit's head(s) and the operators of the report's area."""
    if not enabled(settings):
        return 0
    users = _users(db_session, head_ids) + _operators(db_session, report.area_path)
    subject = f"Lewat tenggat: laporan {report.ticket} ({KIND_NAMES.get(kind, kind)})"
    body = (f"Tenggat {KIND_NAMES.get(kind, kind)} laporan {report.ticket} lewat pada {format_wib(due_at)} "
            f"dan sudah dicatat di buku pelanggaran.\nBuka laporan: {_link(settings, report)}\n\n"
            f"Pesan ini dikirim otomatis oleh Siskamling.")
    return _queue(db_session, users, "escalation", report, subject, body)


# --- sending -----------------------------------------------------------------------------------


def _claim(db_session: Session, limit: int) -> list[int]:
    return claim_due(db_session, Notification, limit, CLAIM_S)


def send_due(factory: sessionmaker[Session], settings: Settings, limit: int = 50) -> int:
    """Sends what is due; returns how many went out. No transaction is held while sending."""
    if not enabled(settings):
        return 0
    with session_scope(factory) as db:
        ids = _claim(db, limit)
    sent = 0
    for notification_id in ids:
        with session_scope(factory) as db:
            row = db.get(Notification, notification_id)
            channel, recipient, subject, body = row.channel, row.recipient, row.subject, row.body
        error = None
        try:
            NOTIFIERS[channel](settings).send(recipient, subject, body)
        except (OSError, smtplib.SMTPException, KeyError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        with session_scope(factory) as db:
            row = db.get(Notification, notification_id)
            now = database_now(db)
            row.attempts += 1
            row.claimed_until, row.last_error = None, error
            if error is None:
                row.state, row.sent_at = "sent", now
                sent += 1
            elif row.attempts >= MAX_ATTEMPTS:
                row.state = "failed"
                log.warning("notification %s to %s failed for good: %s", notification_id, recipient, error)
            else:
                row.next_attempt_at = now + timedelta(seconds=min(3600, 30 * 2 ** (row.attempts - 1)))
    return sent


@scheduler.every("notifications", 10.0)
def _send_job(app) -> None:
    send_due(app.state.session_factory, app.state.settings)
