"""Many writers on one SQLite file: threads of a process and several processes (one web process
per core, camera workers) take turns at the write lock, nothing is lost, and a process that dies
in the middle of a write does not leave the database locked."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from siskamling.app import create_app
from siskamling.audit import service as audit
from siskamling.core import migrate
from siskamling.core.config import Environment, Settings
from siskamling.core.db import make_engine, make_session_factory, session_scope
from siskamling.demo import service as demo

pytestmark = pytest.mark.skipif(bool(os.environ.get("SISKAMLING_TEST_DATABASE_URL")),
                                reason="SQLite's own locking; the PostgreSQL pass has no file to share")


def _notes_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE note (id INTEGER PRIMARY KEY, who TEXT, n INTEGER)"))
    return url, engine


def _writer_process(url: str, label: str, n: int) -> None:
    engine = make_engine(url)

    def write(i: int) -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO note (who, n) VALUES (:who, :n)"), {"who": label, "n": i})

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(n)))
    engine.dispose()


def test_two_processes_with_threads_write_one_file_and_nothing_is_lost(tmp_path):
    url, engine = _notes_database(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer_process, args=(url, f"p{i}", 60)) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with engine.connect() as conn:
        counts = dict(conn.execute(text("SELECT who, count(DISTINCT n) FROM note GROUP BY who")).all())
    assert counts == {"p0": 60, "p1": 60}
    engine.dispose()


def _die_holding_the_lock(url: str, ready) -> None:
    engine = make_engine(url)
    conn = engine.connect()
    conn.begin()  # BEGIN IMMEDIATE: this process now holds the write lock
    conn.execute(text("INSERT INTO note (who, n) VALUES ('ghost', 1)"))
    ready.set()
    signal.pause()


def test_a_process_killed_in_the_middle_of_a_write_leaves_the_database_writable(tmp_path):
    url, engine = _notes_database(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    victim = ctx.Process(target=_die_holding_the_lock, args=(url, ready))
    victim.start()
    assert ready.wait(60)
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(10)
    done = threading.Event()

    def write() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO note (who, n) VALUES ('survivor', 1)"))
        done.set()

    threading.Thread(target=write, daemon=True).start()
    assert done.wait(60), "the write lock of a killed process was never released"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT who FROM note")).scalars().all() == ["survivor"]
    engine.dispose()


def test_open311_and_app_intake_from_many_connections_on_a_database_file(tmp_path, monkeypatch):
    """The intake routes as deployed (their own sessions on a database file, lookups outside the
    write transaction, one intake thread per process), with Open311 and city-app reports arriving
    together: every 201 is a stored report with its first step and its audit entry, the audit chain
    holds, and nobody waits for the lock's timeout (the app's key check once held the write lock
    while its request queued behind Open311's, until the timeout gave 500s)."""
    from siskamling.core import db as core_db

    monkeypatch.setattr(core_db, "WRITE_LOCK_TIMEOUT_S", 5)
    settings = Settings(environment=Environment.test, database_url=f"sqlite:///{tmp_path / 'intake.db'}",
                        media_dir=tmp_path / "media", secret_key="intake-test-secret-key-0123456789abcdef",
                        session_cookie_secure=False, run_scheduler=False)
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    with session_scope(make_session_factory(engine)) as db:
        demo.import_areas(db, tmp_path / "city", None, None)
        demo.create_accounts(db, settings)
        key, _secret = demo.create_report_desk(db, settings)
        lat, lon = db.execute(text("SELECT centroid_lat, centroid_lon FROM area WHERE level = 'kelurahan' "
                                   "ORDER BY code LIMIT 1")).one()
    app = create_app(settings, engine)

    with TestClient(app) as client:
        def post(i: int):
            if i % 2:
                return client.post("/api/v1/channels/app/reports", headers={
                    "X-Api-Key": key, "Idempotency-Key": f"app-{i}"}, json={
                    "external_id": f"JAKI-{i}", "category": "sampah", "lat": lat, "lon": lon,
                    "description": f"Sampah menumpuk di depan rumah nomor {i}", "reporter": {"name": "Budi"}})
            return client.post("/open311/v2/requests.json", data={
                "api_key": key, "service_code": "sampah", "lat": f"{lat:.6f}", "long": f"{lon:.6f}",
                "description": f"Sampah menumpuk di depan rumah nomor {i}"})

        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(post, range(40)))
        took = time.monotonic() - started
        bad = client.post("/open311/v2/requests.json", data={"api_key": key, "service_code": "tidak-ada",
                                                               "lat": f"{lat:.6f}", "long": f"{lon:.6f}"})
    assert [r.status_code for r in answers] == [201] * 40, [r.text for r in answers if r.status_code != 201][:2]
    assert took < 5, "no request waited for the write lock's timeout"
    assert bad.status_code == 400 and "tidak-ada" in bad.json()[0]["description"]
    tickets = {r.json()[0]["service_request_id"] if i % 2 == 0 else r.json()["ticket"] for i, r in enumerate(answers)}
    with session_scope(make_session_factory(engine)) as db:
        stored = set(db.execute(text("SELECT ticket FROM report WHERE channel IN ('open311', 'app')")).scalars())
        filed = db.execute(text("SELECT count(*) FROM report_step s JOIN report r ON r.id = s.report_id "
                                "WHERE r.channel IN ('open311', 'app') AND s.kind = 'filed'")).scalar()
        audited = len(set(db.execute(text("SELECT object_id FROM audit_event WHERE action = 'report.filed'")).scalars())
                      & tickets)
        assert audit.verify_chain(db_session=db).ok
    assert stored == tickets and filed == 40 and audited == 40
    engine.dispose()
