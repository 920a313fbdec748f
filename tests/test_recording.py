"""Recording: leases that move cameras between workers, stream-copied segments that play on their
own, health, and a recorder killed with SIGKILL losing at most the segment being written."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import av
import pytest
import time_machine
from sqlalchemy import select

from siskamling.audit.service import Actor
from siskamling.cameras import service as cameras
from siskamling.cameras.models import Camera, CameraHealthEvent, Health, RecordingSegment
from siskamling.cameras.recorder import Callbacks, CameraRecorder, RecorderConfig
from siskamling.cameras.schemas import CameraIn
from siskamling.core import migrate
from siskamling.core.config import Environment, Settings
from siskamling.core.db import make_engine, make_session_factory, session_scope
from siskamling.core.time import utcnow
from tests.conftest import KEL_A, SECRET_KEY, load_base
from tests.helpers import shared_data

ACTOR = Actor.system("tests")


def video(name="one-by-one-person-detection.mp4") -> Path:
    return shared_data() / "video" / name


def register(db, settings, code, url, at=KEL_A):
    from siskamling.areas import service as areas

    area = areas.get_by_code(db_session=db, code=at)
    camera = cameras.register(db_session=db, settings=settings, actor=ACTOR, data=CameraIn(
        code=code, name=code, lat=area.centroid_lat, lon=area.centroid_lon, stream_url=url))
    db.flush()
    return camera


def test_leases_give_each_camera_to_one_worker_and_move_it_when_one_dies(db, settings):
    one = register(db, settings, "CAM-1", "rtsp://10.0.0.1/a")
    two = register(db, settings, "CAM-2", "rtsp://10.0.0.2/a")
    a = cameras.claim_one(db_session=db, worker_id="worker-a", lease_seconds=20)
    b = cameras.claim_one(db_session=db, worker_id="worker-b", lease_seconds=1)
    assert {a, b} == {one.id, two.id}
    assert cameras.claim_one(db_session=db, worker_id="worker-c", lease_seconds=20) is None
    assert cameras.renew_leases(db_session=db, worker_id="worker-a", camera_ids=[a, b], lease_seconds=20) == {a}
    with time_machine.travel(utcnow() + timedelta(hours=1)):
        # Leases run on the database's clock: a worker whose own clock is an hour fast steals nothing.
        assert cameras.claim_one(db_session=db, worker_id="worker-c", lease_seconds=20) is None
    time.sleep(1.2)  # worker-b renewed nothing (it died); worker-a kept renewing
    cameras.renew_leases(db_session=db, worker_id="worker-a", camera_ids=[a], lease_seconds=20)
    assert cameras.claim_one(db_session=db, worker_id="worker-c", lease_seconds=20) == b
    assert cameras.renew_leases(db_session=db, worker_id="worker-b", camera_ids=[b], lease_seconds=20) == set()


def test_disabled_camera_is_not_claimed_and_its_lease_is_lost(db, settings):
    camera = register(db, settings, "CAM-1", "rtsp://10.0.0.1/a")
    assert cameras.claim_one(db_session=db, worker_id="w", lease_seconds=20) == camera.id
    camera.enabled = False
    db.flush()
    assert cameras.renew_leases(db_session=db, worker_id="w", camera_ids=[camera.id], lease_seconds=20) == set()
    assert cameras.claim_one(db_session=db, worker_id="w2", lease_seconds=20) is None


def test_health_changes_are_kept_as_history(db, settings):
    camera = register(db, settings, "CAM-1", "rtsp://10.0.0.1/a")
    assert cameras.set_health(db_session=db, camera_id=camera.id, health=Health.online, fps=15.0)
    assert not cameras.set_health(db_session=db, camera_id=camera.id, health=Health.online, fps=14.8)
    assert cameras.set_health(db_session=db, camera_id=camera.id, health=Health.offline, message="connection refused")
    history = cameras.health_history(db_session=db, camera_id=camera.id)
    assert [e.health for e in history] == ["offline", "online"]
    assert camera.last_error == "connection refused" and camera.fps == 14.8


def record_file(tmp_path, segment_seconds=10.0, engine="ffmpeg"):
    """``engine``: ``ffmpeg`` (the one on PATH, else the bundled one), ``bundled`` (the ffmpeg the
    imageio-ffmpeg package installs, used where the system has none) or ``pyav``."""
    import imageio_ffmpeg

    segments, reports = [], []
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe() if engine == "bundled" else None
    recorder = CameraRecorder(
        code="CAM-1", url=f"file://{video()}", credentials=None,
        config=RecorderConfig(media_dir=tmp_path, segment_seconds=segment_seconds, realtime_files=False,
                              engine="ffmpeg" if engine == "bundled" else engine, ffmpeg=ffmpeg),
        callbacks=Callbacks(on_segment=lambda *a: segments.append(a), on_health=reports.append))
    recorder.run()
    return segments


@pytest.mark.parametrize("engine", ["ffmpeg", "bundled", "pyav"])
def test_segments_are_stream_copied_and_play_on_their_own(tmp_path, engine):
    segments = record_file(tmp_path, engine=engine)
    assert len(segments) == 14, "139 s of video in 10 s segments"
    source = av.open(str(video()))
    source_packets = [p for p in source.demux(source.streams.video[0]) if p.dts is not None]
    first = source_packets[0]
    for started, ended, path, size in segments:
        assert path.suffix == ".mp4" and path.stat().st_size == size and ended >= started
        container = av.open(str(path))
        stream = container.streams.video[0]
        frames = [f for f in container.decode(stream)]
        assert stream.codec_context.name == "h264" and (stream.width, stream.height) == (768, 432)
        assert len(frames) in (100, 94), path.name
        assert frames[0].key_frame
    copied = av.open(str(segments[0][2]))
    assert bytes(next(p for p in copied.demux(copied.streams.video[0]) if p.size)) == bytes(first), \
        "packets are copied, not re-encoded"
    assert not list(tmp_path.rglob("*.part"))


def test_ffmpeg_is_the_configured_one_else_the_systems_else_the_bundled_one(tmp_path, monkeypatch):
    import imageio_ffmpeg

    from siskamling.cameras.segmenter import find_ffmpeg

    own = tmp_path / "bin" / "ffmpeg"
    own.parent.mkdir()
    own.write_text("#!/bin/sh\n")
    own.chmod(0o755)
    assert find_ffmpeg(str(own)) == str(own)
    monkeypatch.setenv("PATH", str(own.parent))
    assert find_ffmpeg() == str(own), "the system's, found on PATH"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_ffmpeg() == imageio_ffmpeg.get_ffmpeg_exe()


def test_an_ffmpeg_older_than_5_is_not_used(tmp_path, monkeypatch):
    import imageio_ffmpeg

    from siskamling.cameras.segmenter import NoFfmpeg, find_ffmpeg

    old = tmp_path / "bin" / "ffmpeg"  # Ubuntu 22.04's: its RTSP "timeout" would listen, not time out
    old.parent.mkdir()
    old.write_text("#!/bin/sh\necho 'ffmpeg version 4.4.2-0ubuntu0.22.04.1 Copyright (c) 2000-2021'\n")
    old.chmod(0o755)
    with pytest.raises(NoFfmpeg, match="older than 5.0"):
        find_ffmpeg(str(old))
    monkeypatch.setenv("PATH", str(old.parent))
    assert find_ffmpeg() == imageio_ffmpeg.get_ffmpeg_exe()


def test_segments_reported_together_keep_files_and_spans_of_their_own(tmp_path, monkeypatch):
    # On a loaded machine ffmpeg may finish a whole file before the recorder reads its list.
    from siskamling.cameras.segmenter import Segmenter

    start = Segmenter.start

    def slow_start(self):
        started = start(self)
        time.sleep(1.5)
        return started

    monkeypatch.setattr(Segmenter, "start", slow_start)
    segments = record_file(tmp_path)
    assert len(segments) == 14
    paths = [path for _, _, path, _ in segments]
    assert len(set(paths)) == 14 and all(p.stat().st_size == size for _, _, p, size in segments)
    spans = [(started, ended) for started, ended, _, _ in segments]
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), "one after another, not overlapping"
    assert all(ended - started >= timedelta(seconds=5) for started, ended in spans[:-1])


def test_a_missing_ffmpeg_is_a_clear_status_not_a_crash(tmp_path):
    reports = []
    recorder = CameraRecorder(
        code="CAM-F", url=f"file://{video()}", credentials=None,
        config=RecorderConfig(media_dir=tmp_path, ffmpeg=str(tmp_path / "no-such-ffmpeg")),
        callbacks=Callbacks(on_segment=lambda *a: None, on_health=reports.append,
                            should_stop=lambda: bool(reports)))
    recorder.run()
    assert reports[0].health == Health.offline
    assert "ffmpeg not found" in reports[0].message and "ffmpeg_path" in reports[0].message


def test_unreachable_camera_is_reported_offline_with_a_reason(tmp_path):
    reports = []
    stop_after = time.monotonic() + 3

    recorder = CameraRecorder(
        code="CAM-X", url="rtsp://127.0.0.1:1/none", credentials=("budi", "rahasia"),
        config=RecorderConfig(media_dir=tmp_path, open_timeout_s=2),
        callbacks=Callbacks(on_segment=lambda *a: None, on_health=reports.append,
                            should_stop=lambda: time.monotonic() > stop_after))
    recorder.run()
    assert reports and reports[0].health == Health.offline
    assert "cannot open the stream" in reports[0].message and "rahasia" not in reports[0].message


@pytest.fixture
def worker_db(tmp_path):
    """A committed database of its own: worker processes open their own connections."""
    settings = Settings(environment=Environment.test, database_url=f"sqlite:///{tmp_path / 'w.db'}",
                        media_dir=tmp_path / "media", secret_key=SECRET_KEY, session_cookie_secure=False,
                        segment_seconds=2, worker_lease_seconds=4,
                        analytics_fps=0)  # (analysing the small test video would record it without ffmpeg)
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    with session_scope(factory) as db:
        load_base(db, settings, tmp_path / "city")
        register(db, settings, "CAM-1", f"file://{video()}")
    return settings, factory


def wait_for(predicate, timeout=30.0, interval=0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def segment_rows(factory):
    with session_scope(factory) as db:
        return [(s.path, s.bytes) for s in db.scalars(select(RecordingSegment).order_by(RecordingSegment.id))]


def segmenters_writing(folder: Path) -> list[int]:
    """ffmpeg processes writing segments into ``folder``."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if b"-segment_list" in cmdline and str(folder).encode() in cmdline:
            found.append(int(entry))
    return found


def test_a_change_of_state_is_written_at_once_and_readings_ride_with_a_segment(worker_db):
    from siskamling.cameras.recorder import HealthReport
    from siskamling.cameras.worker import DatabaseCallbacks

    settings, factory = worker_db
    with session_scope(factory) as db:
        camera_id = db.scalar(select(Camera.id))

    def camera():
        with session_scope(factory) as db:
            c = db.get(Camera, camera_id)
            return c.health, c.fps, len(cameras.segments(db_session=db, camera_id=camera_id))

    cb = DatabaseCallbacks(factory, camera_id, settings, lambda: False)
    now = utcnow()
    cb.health(HealthReport(Health.online, fps=15.0, last_frame_at=now))
    assert camera() == (Health.online, 15.0, 0), "coming online is written at once"
    cb.health(HealthReport(Health.online, fps=12.5, last_frame_at=now))
    assert camera() == (Health.online, 15.0, 0), "an unchanged state's reading waits"
    file = settings.media_dir / "recordings" / "CAM-1" / "a.mp4"
    file.parent.mkdir(parents=True)
    file.write_bytes(b"x")
    cb.segment(now, now + timedelta(seconds=2), file, 1)
    assert camera() == (Health.online, 15.0, 1), "a segment soon after: the reading still waits"
    cb.written_at -= 30
    cb.segment(now + timedelta(seconds=2), now + timedelta(seconds=4), file, 1)
    assert camera() == (Health.online, 12.5, 2), "later, the reading goes with a segment's index entry"
    cb.health(HealthReport(Health.offline, message="the stream stalled"))
    assert camera()[0] == Health.offline, "going offline is written at once"


def test_a_busy_database_loses_no_segment_and_stops_no_recording(worker_db, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from siskamling.cameras.recorder import HealthReport
    from siskamling.cameras.worker import DatabaseCallbacks

    settings, factory = worker_db
    with session_scope(factory) as db:
        camera_id = db.scalar(select(Camera.id))
    busy = OperationalError("INSERT", {}, Exception("database is locked"))
    failures = {"add_segment": 2, "set_health": 1}

    def flaky(name):
        real = getattr(cameras, name)

        def call(**kwargs):
            if failures[name]:
                failures[name] -= 1
                raise busy
            return real(**kwargs)
        return call

    for name in failures:
        monkeypatch.setattr(cameras, name, flaky(name))
    cb = DatabaseCallbacks(factory, camera_id, settings, lambda: False)
    file = settings.media_dir / "recordings" / "CAM-1" / "a.mp4"
    file.parent.mkdir(parents=True)
    file.write_bytes(b"x")
    now = utcnow()
    cb.segment(now, now + timedelta(seconds=10), file, 1)  # twice "database is locked", then written
    assert segment_rows(factory) == [("recordings/CAM-1/a.mp4", 1)]
    cb.health(HealthReport(Health.online, fps=15.0, last_frame_at=now))  # not written: the database is busy
    with session_scope(factory) as db:
        assert db.get(Camera, camera_id).health != Health.online
    cb.health(HealthReport(Health.online, fps=14.0, last_frame_at=now))  # the next report is
    with session_scope(factory) as db:
        assert db.get(Camera, camera_id).health == Health.online


def test_worker_records_survives_sigkill_and_hands_over(worker_db):
    from siskamling.cameras.worker import Supervisor

    settings, factory = worker_db
    first = Supervisor(settings, worker_id="worker-1", renew_every_s=1)
    first.step()
    recorder = first.children[next(iter(first.children))]
    wait_for(lambda: len(segment_rows(factory)) >= 2)
    assert segmenters_writing(settings.media_dir), "recorded by an ffmpeg child"

    def camera_fps():
        with session_scope(factory) as db:
            return db.scalar(select(Camera.fps))

    wait_for(camera_fps, timeout=10)  # the first frame rate is written as soon as it is measured
    with session_scope(factory) as db:
        camera = db.scalar(select(Camera))
        assert camera.health == Health.online and camera.worker_id == "worker-1"

    os.kill(recorder.pid, signal.SIGKILL)  # the recorder dies mid-segment
    recorder.join(5)
    wait_for(lambda: not segmenters_writing(settings.media_dir), timeout=5)  # its ffmpeg died with it
    for path, size in segment_rows(factory):
        file = settings.media_dir / path
        assert file.stat().st_size == size
        assert sum(1 for _ in av.open(str(file)).decode(video=0)) > 0, "every finished segment stays playable"

    first.step()  # the supervisor notices and restarts it, still holding the lease
    assert first.children and first.children[next(iter(first.children))].pid != recorder.pid
    count = len(segment_rows(factory))
    wait_for(lambda: len(segment_rows(factory)) > count)
    assert len(list(settings.media_dir.rglob("*.part"))) <= 1

    # The whole worker dies without handing its cameras back; another takes over after the lease.
    # (It renews its 4 s lease just before: waiting for segments on a loaded machine can take longer.)
    first.step()
    for proc in first.children.values():
        proc.kill()
        proc.join(5)
    second = Supervisor(settings, worker_id="worker-2", renew_every_s=1)
    second.step()
    assert second.children == {}, "the lease of the dead worker still runs"
    wait_for(lambda: (second.step(), second.children)[1], timeout=settings.worker_lease_seconds + 10)
    count = len(segment_rows(factory))
    wait_for(lambda: len(segment_rows(factory)) > count)
    second.shutdown()
    with session_scope(factory) as db:
        camera = db.scalar(select(Camera))
        assert camera.worker_id is None, "a worker that stops cleanly hands its cameras back"
        assert db.scalar(select(CameraHealthEvent).where(CameraHealthEvent.health == "online")) is not None


def segments_by_code(factory) -> dict[str, int]:
    with session_scope(factory) as db:
        rows = db.execute(select(Camera.code, RecordingSegment.id).join(RecordingSegment,
                                                                         RecordingSegment.camera_id == Camera.id))
        return dict(Counter(code for code, _ in rows))


def test_cameras_share_recorder_processes_and_each_stops_on_its_own(worker_db):
    from siskamling.cameras.worker import Supervisor

    settings, factory = worker_db
    settings = settings.model_copy(update={"worker_cameras_per_process": 2})
    with session_scope(factory) as db:
        for code in ("CAM-2", "CAM-3"):
            register(db, settings, code, f"file://{video()}")
    worker = Supervisor(settings, worker_id="w", renew_every_s=1)
    try:
        worker.step()
        pids = {worker.codes[camera_id]: proc.pid for camera_id, proc in worker.children.items()}
        assert len(pids) == 3 and len(set(pids.values())) == 2, "three cameras, two at most per recorder process"
        pair = sorted(code for code in pids if list(pids.values()).count(pids[code]) == 2)
        wait_for(lambda: set(segments_by_code(factory)) == {"CAM-1", "CAM-2", "CAM-3"})

        def disable(code):
            with session_scope(factory) as db:
                db.scalar(select(Camera).where(Camera.code == code)).enabled = False
            worker.step()

        gone, partner = pair
        disable(gone)  # its recorder stops; the camera sharing its process goes on
        assert not segmenters_writing(settings.media_dir / "recordings" / gone), "its ffmpeg ended with it"
        before = segments_by_code(factory)
        wait_for(lambda: segments_by_code(factory).get(partner, 0) >= before[partner] + 2)
        assert segments_by_code(factory)[gone] == before[gone], "a stopped camera records nothing more"
        shared = worker.children[next(c for c, code in worker.codes.items() if code == partner)]
        assert shared.pid == pids[partner] and shared.is_alive(), "its neighbour was not restarted"

        disable(partner)  # the last camera of a recorder process: the process ends
        shared.join(5)
        assert not shared.is_alive()
        assert len(worker.processes) == 1

        # A worker that dies outright (its end of the pipes closes, as the kernel does) takes its
        # recorder processes, and their ffmpeg children, with it.
        (last,) = worker.processes
        last.conn.close()
        last.proc.join(30)
        assert not last.proc.is_alive(), "a recorder process does not outlive its worker"
        wait_for(lambda: not segmenters_writing(settings.media_dir), timeout=10)
    finally:
        worker.shutdown()


def test_a_recorder_process_answers_a_stop_for_a_camera_it_does_not_record_at_once(worker_db):
    from siskamling.cameras.worker import Supervisor

    settings, _ = worker_db
    worker = Supervisor(settings, worker_id="w")
    process = worker._spawn()
    try:
        process.conn.send(("stop", 999, None))
        assert process.conn.poll(60) and process.conn.recv() == ("stopped", 999), \
            "the worker does not wait its full stop timeout for a camera that is not there"
    finally:
        worker._end(process)
    assert not process.proc.is_alive()


def test_camera_page_shows_health_and_recorded_spans(db, settings, login_as):
    from datetime import UTC, datetime

    from tests.helpers import html

    camera = register(db, settings, "CAM-1", "rtsp://10.0.0.1/a")
    cameras.set_health(db_session=db, camera_id=camera.id, health=Health.online, fps=15.0, bitrate_kbps=1800)
    t0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
    for i in (0, 1, 2, 10, 11):  # two spans: 01:00:00–01:00:30 and 01:01:40–01:02:00
        cameras.add_segment(db_session=db, camera_id=camera.id, started_at=t0 + timedelta(seconds=10 * i),
                            ended_at=t0 + timedelta(seconds=10 * i + 10), path=f"x/{i}.mp4", size=1)
    db.commit()
    page = html(login_as("alice").get("/cameras/CAM-1"))
    assert page.select_one("#health").text == "Online"
    rows = [[td.text for td in tr.select("td")] for tr in page.select("#recorded tbody tr")]
    assert rows == [["2026-11-27 08:01 WIB", "2026-11-27 08:02 WIB", "2"], ["2026-11-27 08:00 WIB", "2026-11-27 08:00 WIB", "3"]]
    bob = html(login_as("bob").get("/cameras/CAM-1"))
    assert bob.select_one("#recorded") is None, "Bob may watch live but not play recordings"
    assert bob.select_one("#health-history") is None


def test_recorder_keeps_a_fresh_snapshot(tmp_path):
    record_file(tmp_path)
    snapshot = tmp_path / "live" / "CAM-1" / "snapshot.jpg"
    data = snapshot.read_bytes()
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9", "a whole JPEG"
    frame = next(av.open(str(snapshot)).decode(video=0))
    assert (frame.width, frame.height) == (768, 432)


def test_snapshots_are_decoded_only_while_someone_looks(tmp_path):
    import threading

    from siskamling.cameras.live import WANT_SNAPSHOT_FILE, touch

    snapshot = tmp_path / "live" / "CAM-S" / "snapshot.jpg"
    stop = threading.Event()
    recorder = CameraRecorder(code="CAM-S", url=f"file://{video()}", credentials=None,
                              config=RecorderConfig(media_dir=tmp_path),
                              callbacks=Callbacks(on_segment=lambda *a: None, on_health=lambda r: None,
                                                  should_stop=stop.is_set))
    thread = threading.Thread(target=recorder.run)
    thread.start()
    try:
        first = wait_for(lambda: snapshot.exists() and snapshot.stat().st_mtime_ns, interval=0.1)
        time.sleep(3.0)  # keyframes every second, nobody looking: no decoding
        assert snapshot.stat().st_mtime_ns == first
        touch(snapshot.parent, WANT_SNAPSHOT_FILE)  # what the snapshot endpoint does
        wait_for(lambda: snapshot.stat().st_mtime_ns != first, timeout=3.0, interval=0.1)
    finally:
        stop.set()
        thread.join()


def test_nobody_looking_costs_no_second_connection_and_thumbnails_come_from_segments(tmp_path):
    import threading

    live = tmp_path / "live" / "CAM-T"
    snapshot = live / "snapshot.jpg"
    segments = []
    stop = threading.Event()
    recorder = CameraRecorder(code="CAM-T", url=f"file://{video()}", credentials=None,
                              config=RecorderConfig(media_dir=tmp_path, segment_seconds=1, snapshot_every_s=0.5),
                              callbacks=Callbacks(on_segment=lambda *a: segments.append(a), on_health=lambda r: None,
                                                  should_stop=stop.is_set))
    thread = threading.Thread(target=recorder.run)
    thread.start()
    try:
        first = wait_for(lambda: snapshot.exists() and snapshot.stat().st_mtime_ns, interval=0.1)
        wait_for(lambda: len(segments) >= 3)
        assert snapshot.stat().st_mtime_ns != first, "a thumbnail from a finished segment"
        frame = next(av.open(str(snapshot)).decode(video=0))
        assert (frame.width, frame.height) == (768, 432)
        assert not [t.name for t in threading.enumerate() if t.name == "live-ingest"], "no second connection"
        assert not list(live.glob("f*.m4s")), "no live fragments while nobody watches"
    finally:
        stop.set()
        thread.join()


def test_snapshots_follow_the_live_sharing_rule(db, settings, login_as):
    from siskamling.accounts import service as accounts
    from tests.helpers import html

    camera = register(db, settings, "CAM-1", "rtsp://10.0.0.1/a")
    camera.live_roles = ["ketua_rt"]
    camera.recording_roles = ["fkdm"]
    cameras._rebuild_shares(db, camera)
    accounts.create_user(db_session=db, username="fitri", full_name="Fitri", password="kata sandi panjang",
                         actor=ACTOR)
    accounts.add_grant(db_session=db, username="fitri", role="fkdm", area_code=KEL_A, actor=ACTOR)
    db.commit()
    bob = login_as("bob")
    assert bob.get("/cameras/CAM-1/snapshot.jpg").status_code == 404, "no picture yet"
    path = cameras.snapshot_path(settings, camera)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8fake\xff\xd9")
    r = bob.get("/cameras/CAM-1/snapshot.jpg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.headers["cache-control"].startswith("no-store") and float(r.headers["x-snapshot-age"]) < 60
    assert login_as("dina").get("/cameras/CAM-1/snapshot.jpg").status_code == 404, "other kelurahan"
    fitri = login_as("fitri")  # may play its recordings, not watch it live
    assert fitri.get("/cameras/CAM-1").status_code == 200
    assert fitri.get("/cameras/CAM-1/snapshot.jpg").status_code == 404
    wall = html(bob.get("/cameras/wall"))
    assert [t["data-code"] for t in wall.select("#wall .tile")] == ["CAM-1"]
    from siskamling.audit.models import AuditEvent
    last = db.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
    assert last.action == "camera.wall_opened" and last.data["cameras"] == ["CAM-1"]


# --- against a real RTSP server ------------------------------------------------------------------


def rtsp_recorder(tmp_path, url, credentials=None, stop_after=6.0, segment_seconds=2.0, **config):
    segments, reports = [], []
    deadline = time.monotonic() + stop_after
    recorder = CameraRecorder(
        code="CAM-R", url=url, credentials=credentials,
        config=RecorderConfig(media_dir=tmp_path, segment_seconds=segment_seconds, health_interval_s=1.0,
                              open_timeout_s=4, **config),
        callbacks=Callbacks(on_segment=lambda *a: segments.append(a), on_health=reports.append,
                            should_stop=lambda: time.monotonic() > deadline))
    return recorder, segments, reports


@pytest.mark.parametrize("engine", ["ffmpeg", "pyav"])
def test_records_a_live_rtsp_camera(tmp_path, rtsp_server, engine):
    recorder, segments, reports = rtsp_recorder(tmp_path, rtsp_server.url("live"), engine=engine)
    recorder.run()
    assert len(segments) >= 2
    for _, _, path, _ in segments:
        frames = list(av.open(str(path)).decode(video=0))
        assert frames and frames[0].key_frame
    online = [r for r in reports if r.health == Health.online]
    assert online, reports
    assert 10 <= online[-1].fps <= 20 and online[-1].codec == "h264"
    assert online[-1].width == 640 and online[-1].last_frame_at is not None
    assert (tmp_path / "live" / "CAM-R" / "snapshot.jpg").exists()
    assert not list(tmp_path.rglob("*.part")), "every segment begun was finished and moved into place"


def test_credentials_are_sent_and_never_reported(tmp_path, rtsp_server):
    url = rtsp_server.url("secure")
    wrong, _, reports = rtsp_recorder(tmp_path, url, credentials=(rtsp_server.username, "salah"), stop_after=3)
    wrong.run()
    assert reports[0].health == Health.offline and "salah" not in reports[0].message
    right, segments, reports = rtsp_recorder(tmp_path, url, credentials=(rtsp_server.username, rtsp_server.password))
    right.run()
    assert segments and any(r.health == Health.online for r in reports)
    assert all(rtsp_server.password not in (r.message or "") for r in reports)


def test_a_stalled_camera_goes_offline_within_ten_seconds(tmp_path):
    from tests.rtsp.fixtures import RtspServer, require_rtsp

    require_rtsp()
    server = RtspServer(tests={"cam": ""}).start()
    recorder, segments, reports = rtsp_recorder(tmp_path, server.url("cam"), stop_after=14, stall_timeout_s=5)
    import threading

    runner = threading.Thread(target=recorder.run)
    runner.start()
    wait_for(lambda: any(r.health == Health.online for r in reports), timeout=8)
    stopped_at = time.monotonic()
    server.stop()  # the camera goes silent
    wait_for(lambda: any(r.health == Health.offline for r in reports), timeout=12)
    assert time.monotonic() - stopped_at <= 10.5
    runner.join(20)
    assert segments, "what was recorded before the stall is kept"


def test_uptime_per_jakarta_day_comes_from_the_health_history(db, settings, login_as):
    from datetime import UTC, datetime

    from siskamling.cameras.models import CameraHealthEvent
    from tests.helpers import html

    camera = register(db, settings, "CAM-U", "rtsp://10.0.0.1/a")
    wib_midnight = datetime(2026, 11, 26, 17, 0, tzinfo=UTC)  # 27 Nov 00:00 WIB
    for hours, health in ((-6, "online"), (6, "offline"), (12, "online")):  # down 06:00–12:00 WIB
        db.add(CameraHealthEvent(camera_id=camera.id, at=wib_midnight + timedelta(hours=hours), health=health))
    db.flush()
    now = wib_midnight + timedelta(hours=24)  # 28 Nov 00:00 WIB
    days = dict(cameras.uptime_by_day(db_session=db, camera_id=camera.id, days=4, now=now))
    assert days["2026-11-27"] == 0.75
    assert days["2026-11-26"] == 1.0, "online since 26 Nov 18:00 WIB; nothing known before it"
    assert days["2026-11-25"] is None
    db.commit()
    assert html(login_as("alice").get("/cameras/CAM-U")).select_one("#uptime") is not None
