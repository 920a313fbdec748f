"""Delivering the webhook outbox: each status change of a report that came from the city app is
POSTed to the app, signed, and retried with exponential backoff until it is accepted or the
attempts run out. Any number of nodes may run this at once: a delivery is claimed with a
conditional UPDATE before it is sent.

Signature (as Stripe does it): header ``X-Siskamling-Signature: t=<unix time>,v1=<hex>`` where
``v1 = HMAC-SHA256(secret, "<t>.<body>")``; receivers check it and refuse old timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from siskamling.core import scheduler
from siskamling.core.config import Settings
from siskamling.core.db import database_now, session_scope
from siskamling.core.outbox import claim_due
from siskamling.reports.models import IntakeClient, WebhookDelivery
from siskamling.reports.service import open_webhook_secret

log = logging.getLogger(__name__)

FIRST_RETRY_S = 30
MAX_RETRY_S = 6 * 3600
CLAIM_S = 120


def sign(secret: str, body: bytes, at: int | None = None) -> str:
    at = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def verify(secret: str, body: bytes, header: str, tolerance_s: int = 300, now: int | None = None) -> bool:
    """What a receiver does (also used by our tests)."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        at = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((now or int(time.time())) - at) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, at), header)


def backoff(attempts: int) -> float:
    return min(MAX_RETRY_S, FIRST_RETRY_S * 2 ** max(0, attempts - 1))


def _claim(db_session: Session, limit: int) -> list[int]:
    return claim_due(db_session, WebhookDelivery, limit, CLAIM_S)


def deliver_due(factory: sessionmaker[Session], settings: Settings, http: httpx.Client | None = None,
                limit: int = 50) -> int:
    """Sends what is due; returns how many were accepted. No transaction is held while sending."""
    with session_scope(factory) as db:
        ids = _claim(db, limit)
    if not ids:
        return 0
    own = http is None
    http = http or httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False)
    delivered = 0
    try:
        for delivery_id in ids:
            with session_scope(factory) as db:
                row = db.get(WebhookDelivery, delivery_id)
                client = db.get(IntakeClient, row.client_id)
                url, payload = client.webhook_url, row.payload
                secret = open_webhook_secret(settings, client) or ""
            body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
            status, error = None, None
            if not url or not client.active:
                error = "client has no webhook address or is disabled"
            else:
                try:
                    response = http.post(url, content=body, headers={
                        "Content-Type": "application/json", "X-Siskamling-Event": payload.get("event", ""),
                        "X-Siskamling-Delivery": str(delivery_id), "X-Siskamling-Signature": sign(secret, body)})
                    status = response.status_code
                    if not 200 <= status < 300:
                        error = f"HTTP {status}: {response.text[:200]}"
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"[:500]
            with session_scope(factory) as db:
                row = db.get(WebhookDelivery, delivery_id)
                now = database_now(db)
                row.attempts += 1
                row.last_status, row.last_error, row.claimed_until = status, error, None
                if error is None:
                    row.state, row.delivered_at = "delivered", now
                    delivered += 1
                elif row.attempts >= settings.webhook_max_attempts:
                    row.state = "failed"
                    log.warning("webhook delivery %s failed for good after %s attempts: %s", delivery_id,
                                row.attempts, error)
                else:
                    row.next_attempt_at = now + timedelta(seconds=backoff(row.attempts))
    finally:
        if own:
            http.close()
    return delivered


@scheduler.every("webhooks", 2.0)
def _deliver_job(app) -> None:
    deliver_due(app.state.session_factory, app.state.settings)


def log_for(*, db_session: Session, client_id: int | None = None, limit: int = 200) -> list[WebhookDelivery]:
    stmt = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)
    if client_id is not None:
        stmt = stmt.where(WebhookDelivery.client_id == client_id)
    return list(db_session.scalars(stmt))


def retry_now(*, db_session: Session, delivery_id: int) -> None:
    """An admin sends a failed delivery again (the receiver was fixed)."""
    db_session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(
        state="pending", next_attempt_at=database_now(db_session), claimed_until=None))
