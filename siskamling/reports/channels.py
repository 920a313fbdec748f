"""Applications that push reports in (Open311 clients, the city app) and the replay protection
their retries rely on."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siskamling.audit import service as audit
from siskamling.audit.events import CatalogueChanged
from siskamling.audit.service import Actor
from siskamling.core import cache
from siskamling.core.config import Settings
from siskamling.core.errors import Conflict, Invalid, NotFound
from siskamling.core.security import SecretBox, new_token, sha256_hex
from siskamling.core.time import utcnow
from siskamling.reports.models import IdempotencyRecord, IntakeClient

KEY_PREFIX = "sk_app_"
LAST_USED_EVERY = timedelta(minutes=1)


def create_client(*, db_session: Session, settings: Settings, name: str, webhook_url: str | None,
                  actor: Actor) -> tuple[IntakeClient, str, str | None]:
    """A new client: returns it with its api key and webhook secret, shown once."""
    name = (name or "").strip()
    if not 2 <= len(name) <= 100:
        raise Invalid("A client needs a name (2–100 characters)")
    if db_session.scalar(select(IntakeClient.id).where(IntakeClient.name == name)):
        raise Conflict("A client named %(name)s already exists", name=name)
    if webhook_url and not webhook_url.startswith(("https://", "http://")):
        raise Invalid("The webhook address must be an http(s) URL")
    key = new_token(KEY_PREFIX)
    secret = new_token("whsec_") if webhook_url else None
    client = IntakeClient(name=name, key_prefix=key[:12], key_hash=sha256_hex(key), webhook_url=webhook_url or None,
                          webhook_secret_enc=SecretBox(settings.secret_key).seal(secret) if secret else None)
    db_session.add(client)
    db_session.flush()
    cache.changed(db_session)
    audit.record(db_session=db_session, actor=actor, event=CatalogueChanged(kind="client", name=name, change="created"))
    return client, key, secret


def clients(*, db_session: Session) -> list[IntakeClient]:
    return list(db_session.scalars(select(IntakeClient).order_by(IntakeClient.name)))


@dataclass(frozen=True)
class ClientRef:
    """The client a request came from: who it is, for the report's channel and the audit log."""

    id: int
    name: str
    stale: bool = False  # its "last used" time is due for an update (``touch``)


_BY_KEY_HASH = select(IntakeClient.id, IntakeClient.name, IntakeClient.active, IntakeClient.last_used_at).where(
    IntakeClient.key_hash == bindparam("key_hash"))  # every intake request: built once, columns only
_TOUCH = update(IntakeClient).where(IntakeClient.id == bindparam("client_id")).values(last_used_at=bindparam("now"))


_recent_keys = cache.Recent()
_touched: dict[int, datetime] = {}  # client id -> when this process last wrote its "last used"


def resolve(*, db_session: Session, key: str | None, touch_now: bool = True) -> ClientRef | None:
    """The active client holding this key (read at most every few seconds per process: a client
    disabled elsewhere is refused within ``core.cache.TTL_S``). Its "last used" time is updated
    once a minute, not on every request: here, or (``touch_now=False``, when ``db_session`` is a
    reader) by ``touch``."""
    if not key:
        return None
    key_hash = sha256_hex(key.strip())

    def load():
        row = db_session.connection().execute(_BY_KEY_HASH, {"key_hash": key_hash}).first()
        return (row.id, row.name, row.active, row.last_used_at) if row is not None else None

    found = _recent_keys.get((cache.db_key(db_session), key_hash), load, db_session)
    if found is None or not found[2]:
        return None
    client_id, name, _active, last_used = found
    last_used = max(filter(None, (last_used, _touched.get(client_id))), default=None)
    client = ClientRef(client_id, name, last_used is None or utcnow() - last_used > LAST_USED_EVERY)
    if touch_now:
        touch(db_session=db_session, client=client)
    return client


def touch(*, db_session: Session, client: ClientRef) -> None:
    if client.stale:
        now = utcnow()
        db_session.connection().execute(_TOUCH, {"client_id": client.id, "now": now})
        cache.on_commit(db_session, lambda: _touched.__setitem__(client.id, now))


def set_active(*, db_session: Session, name: str, active: bool, actor: Actor) -> IntakeClient:
    client = db_session.scalar(select(IntakeClient).where(IntakeClient.name == name))
    if client is None:
        raise NotFound("Unknown client: %(name)s", name=name)
    client.active = active
    cache.changed(db_session)
    audit.record(db_session=db_session, actor=actor, event=CatalogueChanged(
        kind="client", name=name, change="enabled" if active else "disabled"))
    return client


def body_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def idempotent(*, db_session: Session, client: ClientRef, key: str | None, body: Any,
               act: Callable[[], tuple[int, dict[str, Any]]]) -> tuple[int, dict[str, Any], bool]:
    """Runs ``act`` once per (client, key): a retry with the same body gets the stored answer and
    changes nothing (third value True); the same key with another body is refused. The record is
    written in the same transaction as what ``act`` does, so a crash leaves neither."""
    key = (key or "").strip()
    if not key:
        raise Invalid("An Idempotency-Key header is required")
    if len(key) > 100:
        raise Invalid("The Idempotency-Key is too long (at most 100 characters)")
    digest = body_hash(body)
    seen = db_session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.client_id == client.id,
                                                             IdempotencyRecord.key == key))
    if seen is not None:
        if seen.request_sha256 != digest:
            raise Conflict("This Idempotency-Key was already used for a different request")
        return seen.status_code, seen.response, True
    status, response = act()
    try:
        with db_session.begin_nested():
            db_session.add(IdempotencyRecord(client_id=client.id, key=key, request_sha256=digest,
                                             status_code=status, response=response))
    except IntegrityError:
        # Two retries raced on PostgreSQL: the other one committed first. Ours must not count.
        raise Conflict("This request is already being processed; retry to get its answer") from None
    return status, response, False
