"""Retention: segments past a camera's retention are deleted, the oldest go first when the disk
runs short, and footage under an evidence hold stays until the hold is released."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from siskamling.audit.models import AuditEvent
from siskamling.audit.service import Actor
from siskamling.cameras import service as cameras
from siskamling.cameras.models import RecordingSegment
from siskamling.core.time import WIB, utcnow
from tests.helpers import html
from tests.test_recording import register

ACTOR = Actor.system("tests")


def seed_segments(db, settings, camera, days_back: list[float]):
    """One 10 s segment (a small real file) at each of ``days_back`` days ago."""
    now = utcnow()
    for i, days in enumerate(days_back):
        start = now - timedelta(days=days)
        path = f"recordings/{camera.code}/seg{i}.mp4"
        (settings.media_dir / path).parent.mkdir(parents=True, exist_ok=True)
        (settings.media_dir / path).write_bytes(b"x" * 1000)
        cameras.add_segment(db_session=db, camera_id=camera.id, started_at=start, ended_at=start + timedelta(seconds=10),
                            path=path, size=1000)
    db.flush()
    return now


def remaining(db, camera):
    return db.scalar(select(func.count(RecordingSegment.id)).where(RecordingSegment.camera_id == camera.id))


def test_retention_deletes_old_footage_but_never_held_footage(db, settings):
    camera = register(db, settings, "CAM-R", "rtsp://10.0.0.1/a")
    camera.retention_days = 7
    now = seed_segments(db, settings, camera, [30, 20, 10, 8, 3, 1])
    hold = cameras.place_hold(db_session=db, camera=camera, start=now - timedelta(days=21),
                              end=now - timedelta(days=19), reason="Laporan warga JKT-0042 (pencurian)", actor=ACTOR)
    removed = cameras.expire_recordings(db_session=db, settings=settings, camera_ids=[camera.id])
    assert removed == 3, "30, 10 and 8 days old; the 20-day-old one is held"
    kept = sorted(s.path for s in cameras.segments(db_session=db, camera_id=camera.id))
    assert kept == [f"recordings/CAM-R/seg{i}.mp4" for i in (1, 4, 5)]
    assert not (settings.media_dir / "recordings/CAM-R/seg0.mp4").exists()
    cameras.release_hold(db_session=db, camera=camera, hold_id=hold.id, actor=ACTOR)
    assert cameras.expire_recordings(db_session=db, settings=settings, camera_ids=[camera.id]) == 1


def test_disk_pressure_deletes_oldest_first_and_stops_at_held_footage(db, settings):
    camera = register(db, settings, "CAM-D", "rtsp://10.0.0.1/a")
    now = seed_segments(db, settings, camera, [5, 4, 3, 2, 1])
    cameras.place_hold(db_session=db, camera=camera, start=now - timedelta(days=4, hours=1),
                       end=now - timedelta(days=3, hours=23), reason="Ditahan untuk penyidikan polisi", actor=ACTOR)
    folder = settings.media_dir / "recordings" / "CAM-D"
    floor = settings.media_free_floor_gb * 1024**3
    # A stand-in disk whose free space is what the real files leave: deleting a file frees it.
    capacity = {"bytes": floor + 5000 - 1500}  # with all five 1,000-byte files: 1.5 files short

    def free_bytes():
        return capacity["bytes"] - sum(f.stat().st_size for f in folder.glob("*.mp4"))

    removed = cameras.relieve_disk_pressure(db_session=db, settings=settings, camera_ids=[camera.id],
                                            free_bytes=free_bytes, batch=1)
    assert removed == 2, "the oldest (5 days) and then the 3-day-old one; the 4-day-old one is held"
    assert sorted(s.path for s in cameras.segments(db_session=db, camera_id=camera.id)) == [
        "recordings/CAM-D/seg1.mp4", "recordings/CAM-D/seg3.mp4", "recordings/CAM-D/seg4.mp4"]
    assert free_bytes() >= floor
    capacity["bytes"] = 0  # a full disk: everything unheld goes, and the floor gives way to evidence
    cameras.relieve_disk_pressure(db_session=db, settings=settings, camera_ids=[camera.id], free_bytes=free_bytes)
    assert [s.path for s in cameras.segments(db_session=db, camera_id=camera.id)] == ["recordings/CAM-D/seg1.mp4"]
    assert [f.name for f in folder.glob("*.mp4")] == ["seg1.mp4"]


def test_operator_places_and_releases_a_hold_from_the_camera_page(db, settings, login_as):
    camera = register(db, settings, "CAM-H", "rtsp://10.0.0.1/a")
    db.commit()
    b = login_as("alice")
    start = (utcnow() - timedelta(hours=2)).astimezone(WIB).strftime("%Y-%m-%dT%H:%M:%S")
    end = (utcnow() - timedelta(hours=1)).astimezone(WIB).strftime("%Y-%m-%dT%H:%M:%S")
    short = b.post("/cameras/CAM-H/holds", {"start": start, "end": end, "reason": "cek"})
    assert short.status_code == 422 and cameras.holds(db_session=db, camera_id=camera.id) == []
    assert b.post("/cameras/CAM-H/holds", {"start": start, "end": end,
                                           "reason": "Kebakaran di RW 002, diminta Damkar"}).status_code == 303
    page = html(b.get("/cameras/CAM-H"))
    row = page.select_one("#holds tr[data-hold]")
    assert "Kebakaran" in row.text
    assert login_as("bob").post(f"/cameras/CAM-H/holds/{row['data-hold']}/release").status_code == 404
    assert b.post(f"/cameras/CAM-H/holds/{row['data-hold']}/release").status_code == 303
    actions = [e.action for e in db.scalars(select(AuditEvent).order_by(AuditEvent.seq))][-2:]
    assert actions == ["evidence.hold_placed", "evidence.hold_released"]
