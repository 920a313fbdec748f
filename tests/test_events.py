"""The event bus: a camera going offline reaches its area's operators, live, and nobody else."""

from __future__ import annotations

import json
import threading

from siskamling.cameras import service as cameras
from siskamling.cameras.models import Health
from siskamling.events import service as events
from tests.test_recording import register


def principal(db, username):
    from siskamling.accounts import service as accounts

    return accounts.principal_for(db_session=db, user=accounts.get_user(db_session=db, username=username))


def test_health_changes_reach_the_areas_operators_only(db, settings):
    camera = register(db, settings, "CAM-E", "rtsp://10.0.0.1/a")
    start = events.latest_id(db_session=db)
    cameras.set_health(db_session=db, camera_id=camera.id, health=Health.online)
    cameras.set_health(db_session=db, camera_id=camera.id, health=Health.online)  # no change, no event
    cameras.set_health(db_session=db, camera_id=camera.id, health=Health.offline, message="connection refused")
    got = events.since(db_session=db, principal=principal(db, "alice"), after_id=start)
    assert [(e.kind, e.payload["code"]) for e in got] == [("camera.online", "CAM-E"), ("camera.offline", "CAM-E")]
    assert got[-1].payload["message"] == "connection refused"
    for outsider in ("charlie", "bob", "warga"):
        assert events.since(db_session=db, principal=principal(db, outsider), after_id=start) == [], outsider
    assert len(events.since(db_session=db, principal=principal(db, "admin"), after_id=start)) == 2


def test_dashboards_receive_events_as_server_sent_events(db, settings, login_as):
    camera = register(db, settings, "CAM-S", "rtsp://10.0.0.1/a")
    start = events.latest_id(db_session=db)
    cameras.set_health(db_session=db, camera_id=camera.id, health=Health.offline, message="stalled")
    db.commit()
    b = login_as("alice")
    received = {}

    def read():
        with b.client.stream("GET", "/events/stream", headers={"Last-Event-ID": str(start)}) as response:
            received["type"] = response.headers["content-type"]
            lines = []
            for line in response.iter_lines():
                lines.append(line)
                if line.startswith("data:"):
                    break
            received["lines"] = lines

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(15)
    assert received.get("type", "").startswith("text/event-stream")
    lines = received["lines"]
    assert "event: camera.offline" in lines
    data = json.loads(lines[-1][len("data: "):])
    assert data["code"] == "CAM-S" and data["message"] == "stalled"


def test_the_page_listens_for_events_when_logged_in(login_as, client):
    from tests.helpers import html

    assert html(login_as("alice").get("/")).select_one("script[src='/static/js/events.js']") is not None
    assert html(client.get("/login")).select_one("script[src='/static/js/events.js']") is None


def test_an_open_event_stream_reads_without_the_write_lock(tmp_path):
    """Every open dashboard polls for events once a second: on SQLite that must not queue for the
    one write lock the report intake and the camera workers need."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import text

    from siskamling.core import migrate
    from siskamling.core.db import make_engine, make_session_factory
    from siskamling.core.scope import Principal
    from siskamling.events.api import _fetch, _start_id

    engine = make_engine(f"sqlite:///{tmp_path / 'events.db'}")
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    writer = factory()
    writer.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: a writer holds the lock
    try:
        with ThreadPoolExecutor(1) as pool:
            latest = pool.submit(_start_id, factory).result(timeout=5)
            events = pool.submit(_fetch, factory, Principal(1, "alice", "Alice", ()), 0).result(timeout=5)
    finally:
        writer.rollback()
        writer.close()
        engine.dispose()
    assert latest == 0 and events == []
