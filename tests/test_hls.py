"""The HLS fallback: the live fragments grouped into GOP-long fMP4 segments, a playlist any HLS
player (here FFmpeg's, in tests/browser/test_live_video.py) can follow, each request authorised,
and the viewing session audited like a WebSocket one."""

from __future__ import annotations

import time

import av
from sqlalchemy import select

from siskamling.audit.models import AuditEvent
from siskamling.cameras.live import live_folder, read_index
from tests.test_live import live_camera  # noqa: F401  (fixture)


def parse(playlist: str) -> tuple[dict, list[tuple[float, str]]]:
    lines = playlist.strip().splitlines()
    assert lines[0] == "#EXTM3U"
    tags = {line.split(":", 1)[0]: line.split(":", 1)[1] if ":" in line else "" for line in lines if line.startswith("#")}
    parts = [(float(lines[i].split(":")[1].rstrip(",")), lines[i + 1]) for i, line in enumerate(lines)
             if line.startswith("#EXTINF")]
    return tags, parts


def test_a_shared_viewer_gets_a_playlist_of_whole_gops_that_decode(live_camera, login_as, settings, tmp_path):  # noqa: F811
    bob = login_as("bob")
    r = bob.get("/cameras/CAM-L/live.m3u8")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    assert r.headers["cache-control"].startswith("no-store")
    tags, parts = parse(r.text)
    index = read_index(live_folder(settings.media_dir, "CAM-L"))
    assert len(parts) == len(index["keyframes"]) - 1, "every complete GOP, not the one being written"
    assert "#EXT-X-INDEPENDENT-SEGMENTS" in tags and int(tags["#EXT-X-TARGETDURATION"]) >= max(d for d, _ in parts)
    init_uri = tags["#EXT-X-MAP"].split('"')[1]
    media = tmp_path / "joined.mp4"
    init = bob.get(init_uri)
    segment = bob.get(parts[0][1])
    assert init.status_code == segment.status_code == 200
    media.write_bytes(init.content + segment.content)
    frames = list(av.open(str(media)).decode(video=0))
    expected = index["keyframes"][1] - index["keyframes"][0]
    assert len(frames) == expected, "one GOP: every frame from one keyframe to the next"
    assert frames[0].key_frame
    assert abs(frames[-1].time - frames[0].time - parts[0][0]) < 0.25


def test_hls_follows_the_live_rule_on_every_request(live_camera, login_as):  # noqa: F811
    bob = login_as("bob")
    tags, parts = parse(bob.get("/cameras/CAM-L/live.m3u8").text)
    dina = login_as("dina")  # another kelurahan
    assert dina.get("/cameras/CAM-L/live.m3u8").status_code == 404
    assert dina.get(parts[0][1]).status_code == 404, "a copied segment link does not work for others"
    gone = parts[0][1].replace(parts[0][1].split("/")[4], "0123456789ab")
    assert bob.get(gone).status_code == 404, "another connection's segments are gone"


def test_an_hls_viewing_session_is_audited_once_and_ends_after_idling(live_camera, login_as, db, app):  # noqa: F811
    bob = login_as("bob")
    for _ in range(3):
        assert bob.get("/cameras/CAM-L/live.m3u8").status_code == 200
    actions = lambda: [e.action for e in db.scalars(select(AuditEvent).where(AuditEvent.action.like("camera.live%")))]  # noqa: E731
    assert actions() == ["camera.live_started"]
    app.state.hls_views.end_idle(time.monotonic() + 60)
    db.expire_all()
    assert actions() == ["camera.live_started", "camera.live_ended"]
    ended = db.scalar(select(AuditEvent).where(AuditEvent.action == "camera.live_ended"))
    assert ended.actor_label == "bob" and ended.data["reason"] == "hls viewer left"
