"""Wakes long-lived connections (live video, event streams) when their user's access may have changed.

Every change that can end or alter what a logged-in user may see is audited in its own
transaction (``AuditAction.changes_access``: a logout, a revoked or added grant, a disabled
account, a camera's new sharing, an area import), and audit appends are serialised, so their
``seq`` grows in commit order. One ``AccessWatch`` per web process reads the head of the log every
``POLL_S`` while anyone is connected (one indexed query for the whole process, however many
connections) and wakes the connections each new entry concerns: the user it names (a logout, a
grant), the viewers of the camera it names, or everyone (an area import). Those check their own
access again (spread over a second, so that a change concerning everyone does not bring every
check at once); nobody else does. When the log could not be read for a while, everyone checks
once it can. A connection still checks at the exact moment a grant or its session ends, and at
a long safety interval for changes made outside the application (a hand edit of the database).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from dataclasses import dataclass, field

from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from siskamling.audit.events import AuditAction
from siskamling.audit.models import AuditEvent
from siskamling.core.db import read_scope

log = logging.getLogger(__name__)
POLL_S = 3.0
READY_WAIT_S = 10.0
WAKE_SPREAD_S = 1.0


@functools.cache
def _access_actions() -> list[str]:
    out, todo = set(), [AuditAction]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.changes_access and hasattr(cls, "action"):
            out.add(cls.action)
    return sorted(out)


_HEAD = select(func.max(AuditEvent.seq))


@dataclass(frozen=True)
class Change:
    """Whom an access-changing entry concerns: a user, a camera's viewers, or (both None) everyone."""

    username: str | None = None
    camera: str | None = None


def access_changes_since(db_session, after_seq: int | None) -> tuple[int, list[Change]]:
    """(the log's head, the access changes appended after ``after_seq``); none on the first look."""
    head = db_session.scalar(_HEAD) or 0
    if after_seq is None or head <= after_seq:
        return head, []
    rows = db_session.execute(select(AuditEvent.object_type, AuditEvent.object_id, AuditEvent.data).where(
        AuditEvent.seq > after_seq, AuditEvent.seq <= head, AuditEvent.action.in_(_access_actions())
    ).order_by(AuditEvent.seq))
    changes = []
    for object_type, object_id, data in rows:
        if isinstance(data, dict) and data.get("username"):
            changes.append(Change(username=str(data["username"])))
        elif object_type == "camera" and object_id:
            changes.append(Change(camera=object_id))
        else:
            changes.append(Change())
    return head, changes


@dataclass(eq=False)
class Subscription:
    """One connection's interest: its user and, for live video, its camera."""

    username: str
    camera: str | None = None
    woken: asyncio.Event = field(default_factory=asyncio.Event)

    def concerned_by(self, change: Change) -> bool:
        if change.username is None and change.camera is None:
            return True
        return change.username == self.username or (change.camera is not None and change.camera == self.camera)

    async def wait(self, timeout: float) -> bool:
        """True when woken by a change within ``timeout`` seconds, False when the time ran out."""
        if not self.woken.is_set() and timeout > 0:
            try:
                await asyncio.wait_for(self.woken.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        woken = self.woken.is_set()
        self.woken.clear()
        if woken:  # a change that concerns everyone (an area import) must not bring every check at once
            await asyncio.sleep(random.uniform(0, WAKE_SPREAD_S))
        return woken


class AccessWatch:
    """One per web process (``watch_of(app)``); polls only while connections use it."""

    def __init__(self, session_factory) -> None:
        self.factory = session_factory
        self._seq: int | None = None
        self._subscriptions: set[Subscription] = set()
        self._task: asyncio.Task | None = None
        self._ready = asyncio.Event()

    async def join(self, username: str, camera: str | None = None) -> Subscription:
        """A connection starts listening: call before its first access check, so that any change
        committed after that check wakes it."""
        subscription = Subscription(username, camera)
        self._subscriptions.add(subscription)
        if self._task is None or self._task.done():
            self._ready = asyncio.Event()
            self._task = asyncio.create_task(self._run())
        try:  # the first look sets where the log stands; a database that does not answer is the check's to report
            await asyncio.wait_for(self._ready.wait(), READY_WAIT_S)
        except asyncio.TimeoutError:
            pass
        return subscription

    def leave(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    async def _look(self) -> None:
        seq = self._seq

        def look() -> tuple[int, list[Change]]:
            with read_scope(self.factory) as db:
                return access_changes_since(db, seq)

        self._seq, changes = await run_in_threadpool(look)
        for change in set(changes):
            for subscription in self._subscriptions:
                if subscription.concerned_by(change):
                    subscription.woken.set()

    async def _run(self) -> None:
        self._seq = None
        lost = False  # a look failed: changes meanwhile may be unseen
        while self._subscriptions:
            try:
                await self._look()
            except Exception:  # noqa: BLE001 - a database hiccup: the next look catches up
                log.warning("access watch could not read the audit log", exc_info=True)
                lost = True
            else:
                if lost:  # whatever changed while the log could not be read: everyone checks again
                    for subscription in self._subscriptions:
                        subscription.woken.set()
                    lost = False
                self._ready.set()
            await asyncio.sleep(POLL_S)


def watch_of(app) -> AccessWatch:
    watch = getattr(app.state, "access_watch", None)
    if watch is None or watch.factory is not app.state.session_factory:
        watch = app.state.access_watch = AccessWatch(app.state.session_factory)
    return watch
