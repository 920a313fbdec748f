"""Playback of a time range and evidence export: stream-copied MP4s, the recordings sharing rule
on every media request, audited views, and a signed manifest that catches tampering."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import av
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from siskamling.audit.models import AuditEvent
from siskamling.cameras import playback
from siskamling.cameras import service as cameras
from siskamling.cameras.recorder import Callbacks, CameraRecorder, RecorderConfig
from tests.conftest import SECRET_KEY
from tests.helpers import html
from tests.test_recording import register, video

T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)  # 08:00 WIB


@pytest.fixture
def recorded(db, settings):
    camera = register(db, settings, "CAM-P", "rtsp://10.0.0.1/a")
    camera.live_roles, camera.recording_roles = ["ketua_rt"], ["fkdm"]
    cameras._rebuild_shares(db, camera)
    made = []
    CameraRecorder(code="CAM-P", url=f"file://{video()}", credentials=None,
                   config=RecorderConfig(media_dir=settings.media_dir, realtime_files=False),
                   callbacks=Callbacks(on_segment=lambda *a: made.append(a[2]), on_health=lambda r: None)).run()
    for i, path in enumerate(made[:6]):  # one minute of recordings from 08:00 WIB
        cameras.add_segment(db_session=db, camera_id=camera.id, started_at=T0 + timedelta(seconds=10 * i),
                            ended_at=T0 + timedelta(seconds=10 * i + 10),
                            path=str(path.relative_to(settings.media_dir)), size=path.stat().st_size)
    db.commit()
    return camera


def q(start_s: float, end_s: float) -> dict:
    return {"start": (T0 + timedelta(seconds=start_s)).isoformat(), "end": (T0 + timedelta(seconds=end_s)).isoformat()}


def test_a_range_plays_as_one_stream_copied_mp4(recorded, login_as, db, tmp_path):
    b = login_as("alice")
    r = b.get("/cameras/CAM-P/playback.mp4", params=q(12, 35))
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    path = tmp_path / "playback.mp4"
    path.write_bytes(r.content)
    container = av.open(str(path))
    frames = list(container.decode(video=0))
    assert frames[0].key_frame and 225 <= len(frames) <= 245, len(frames)
    event = db.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
    assert event.action == "camera.recording_viewed" and event.actor_label == "alice"
    page = html(b.get("/cameras/CAM-P/play", params=q(12, 35)))
    assert page.select_one("video#playback")["src"].startswith("/cameras/CAM-P/playback.mp4?start=")


def test_playback_follows_the_recordings_rule(recorded, login_as):
    assert login_as("bob").get("/cameras/CAM-P/playback.mp4", params=q(0, 20)).status_code == 404, "live only"
    assert login_as("bob").get("/cameras/CAM-P/play").status_code == 404
    assert login_as("dina").get("/cameras/CAM-P/playback.mp4", params=q(0, 20)).status_code == 404


@pytest.mark.parametrize("params, status", [
    (q(30, 10), 422), (q(0, 4 * 3600), 422), (q(3600, 3700), 404), ({"start": "kemarin", "end": "x"}, 422),
])
def test_bad_ranges_get_clear_answers(recorded, login_as, params, status):
    r = login_as("alice").get("/cameras/CAM-P/playback.mp4", params=params)
    assert r.status_code == status


def export(b, reason="Laporan warga JKT-0001: pencurian motor", **times):
    times = times or q(5, 25)
    return b.post("/cameras/CAM-P/exports", {**times, "reason": reason})


def test_export_needs_a_reason_and_changes_nothing_without_one(recorded, login_as, settings):
    r = export(login_as("alice"), reason="cek")
    assert r.status_code == 422 and html(r).select_one(".error").text
    assert not (settings.media_dir / "exports" / "CAM-P").exists()


def test_export_is_signed_audited_and_verifiable(recorded, login_as, db, settings, tmp_path):
    b = login_as("alice")
    r = export(b)
    assert r.status_code == 303
    export_id = int(r.headers["location"].rsplit("/", 1)[1])
    page = html(b.get(f"/exports/{export_id}"))
    links = [a["href"] for a in page.select("a[download]")]
    video_url = next(u for u in links if u.endswith(".mp4"))
    row = db.scalar(select(AuditEvent).where(AuditEvent.action == "evidence.exported"))
    assert row.data["reason"].startswith("Laporan warga") and row.actor_label == "alice"

    folder = settings.media_dir / cameras.get_export(db_session=db, principal=_principal(db, "alice"),
                                                       export_id=export_id)[0].folder
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["camera"]["code"] == "CAM-P" and manifest["exported_by"] == "alice"
    assert [s["sha256"] for s in manifest["segments"]] == [playback.sha256_file(settings.media_dir / s["path"])
                                                            for s in manifest["segments"]]
    key = playback.public_key_text(playback.signing_key(SECRET_KEY))
    assert playback.verify_export(folder, key).ok

    download = b.get(video_url)
    assert download.status_code == 200 and playback.sha256_file(folder / manifest["file"]["name"]) == \
        __import__("hashlib").sha256(download.content).hexdigest()
    assert db.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).action == "evidence.downloaded"
    assert login_as("dina").get(video_url).status_code == 404
    assert b.get(f"/exports/{export_id}/..%2F..%2Fsecret").status_code == 404

    env = {"SISKAMLING_SECRET_KEY": SECRET_KEY, "SISKAMLING_ENVIRONMENT": "test",
           "SISKAMLING_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    from siskamling.cli import main

    ok = CliRunner().invoke(main, ["evidence", "verify", str(folder)], env=env)
    assert ok.exit_code == 0 and "export intact" in ok.output
    with (folder / manifest["file"]["name"]).open("r+b") as fh:  # one byte changed
        fh.seek(2000)
        byte = fh.read(1)
        fh.seek(2000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    bad = CliRunner().invoke(main, ["evidence", "verify", str(folder)], env=env)
    assert bad.exit_code == 1 and "does not match its SHA-256" in bad.output
    manifest["reason"] = "something else"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert "signature does not match" in " ".join(playback.verify_export(folder, key).problems)
    other = CliRunner().invoke(main, ["evidence", "verify", str(folder)],
                               env={**env, "SISKAMLING_SECRET_KEY": "another-deployment-key-0123456789abcdef"})
    assert other.exit_code == 1


def _principal(db, username):
    from siskamling.accounts import service as accounts

    return accounts.principal_for(db_session=db, user=accounts.get_user(db_session=db, username=username))


def test_live_rights_do_not_include_playback(recorded, login_as):
    bob = login_as("bob")  # ketua RT: the camera's rule lets his role watch live, not play back
    assert bob.get("/cameras/CAM-P").status_code == 200
    assert bob.get("/cameras/CAM-P/play").status_code == 404
