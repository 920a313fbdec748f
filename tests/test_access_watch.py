"""Open connections learn of access changes from the audit log: the user or camera each change
names, nobody else, and within seconds."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from siskamling.accounts import service as accounts
from siskamling.accounts.models import Grant, LoginSession
from siskamling.audit import service as audit
from siskamling.audit.events import AreasImported, LoginSucceeded
from siskamling.audit.service import Actor
from siskamling.audit.watch import POLL_S, AccessWatch, Change, access_changes_since
from tests.test_recording import register

SYSTEM = Actor.system("t")


def _grant_of(db, username):
    return db.scalar(select(Grant).join(Grant.user).where(Grant.user.has(username=username)))


def test_each_access_change_names_whom_it_concerns(db, settings):
    from siskamling.cameras import service as cameras
    from siskamling.cameras.schemas import CameraPatch

    camera = register(db, settings, "CAM-W", "rtsp://10.0.0.1/a")
    head, changes = access_changes_since(db, None)
    assert changes == [], "the first look only says where the log stands"
    audit.record(db_session=db, event=LoginSucceeded(username="bob"), actor=SYSTEM)
    head, changes = access_changes_since(db, head)
    assert changes == [], "a login changes nobody's access"

    accounts.revoke_grant(db_session=db, grant_id=_grant_of(db, "dina").id, actor=SYSTEM)
    accounts.set_active(db_session=db, user=accounts.get_user(db_session=db, username="eko"), active=False,
                        actor=SYSTEM)
    cameras.change(db_session=db, camera=camera, patch=CameraPatch(live_roles=["officer"]), actor=SYSTEM,
                   settings=settings)
    audit.record(db_session=db, event=AreasImported(level="rw", source="t", created=0, updated=1, features=1,
                                                    notes=[]), actor=SYSTEM)
    head2, changes = access_changes_since(db, head)
    assert head2 > head
    assert changes == [Change(username="dina"), Change(username="eko"), Change(camera="CAM-W"), Change()]
    assert access_changes_since(db, head2) == (head2, [])


def test_the_watch_wakes_only_the_connections_a_change_concerns(app, db, monkeypatch):
    monkeypatch.setattr("siskamling.audit.watch.POLL_S", 0.2)
    watch = AccessWatch(app.state.session_factory)

    async def scenario():
        bob = await watch.join("bob", "CAM-1")
        dina = await watch.join("dina", "CAM-2")
        viewer_of_1 = await watch.join("charlie", "CAM-1")
        await asyncio.to_thread(_revoke, db, "bob")
        woken = await asyncio.gather(bob.wait(5), dina.wait(1), viewer_of_1.wait(1))
        for subscription in (bob, dina, viewer_of_1):
            watch.leave(subscription)
        return woken

    assert _run(scenario()) == [True, False, False]


def _run(coroutine):
    with ThreadPoolExecutor(1) as pool:  # a loop of its own, whatever the test session runs
        return pool.submit(asyncio.run, coroutine).result()


def test_after_the_log_could_not_be_read_every_connection_checks_again(app, monkeypatch):
    """A change made while the watch could not read the audit log would go unseen: once it can
    read again, every connection checks its access."""
    from sqlalchemy.exc import OperationalError

    from siskamling.audit import watch as watch_module

    monkeypatch.setattr(watch_module, "POLL_S", 0.1)
    monkeypatch.setattr(watch_module, "READY_WAIT_S", 0.5)
    looks = {"n": 0}
    real = watch_module.access_changes_since

    def flaky(db, seq):
        looks["n"] += 1
        if looks["n"] <= 2:
            raise OperationalError("SELECT", {}, Exception("database is locked"))
        return real(db, seq)

    monkeypatch.setattr(watch_module, "access_changes_since", flaky)
    watch = AccessWatch(app.state.session_factory)

    async def scenario():
        subscription = await watch.join("bob", "CAM-1")
        woken = await subscription.wait(5)
        watch.leave(subscription)
        return woken

    assert _run(scenario()) is True and looks["n"] >= 3


def _revoke(db, username):
    accounts.revoke_grant(db_session=db, grant_id=_grant_of(db, username).id, actor=SYSTEM)
    db.commit()


def test_logging_out_ends_the_event_stream_within_seconds(login_as, db):
    b = login_as("alice")
    ended = {}

    def read():
        with b.client.stream("GET", "/events/stream") as response:
            for _line in response.iter_lines():
                pass
        ended["at"] = time.monotonic()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(1.0)
    assert reader.is_alive(), "the stream stays open while the session lasts"
    row = db.scalar(select(LoginSession).order_by(LoginSession.id.desc()).limit(1))
    accounts.end_session(db_session=db, session_row=row, actor=SYSTEM)
    db.commit()
    logged_out = time.monotonic()
    reader.join(POLL_S + 10)
    assert "at" in ended and ended["at"] - logged_out < POLL_S + 5
