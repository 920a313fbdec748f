"""Live video over a WebSocket: fragments of the one ingest, the sharing rule checked at the door
and again while watching, the same-site origin required, and every viewing session audited."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from siskamling.audit.models import AuditEvent
from siskamling.cameras.live import WANT_FILE, boxes, read_index, split_fragment, starts_with_keyframe, touch
from siskamling.cameras.recorder import Callbacks, CameraRecorder, RecorderConfig
from tests.test_recording import register, video

ORIGIN = {"origin": "http://testserver"}


def make_live_files(media_dir: Path, code: str, seconds: float = 3.0) -> dict:
    stop = time.monotonic() + seconds
    touch(media_dir / "live" / code, WANT_FILE)  # someone is watching: the recorder writes live fragments
    CameraRecorder(code=code, url=f"file://{video()}", credentials=None,
                   config=RecorderConfig(media_dir=media_dir),
                   callbacks=Callbacks(on_segment=lambda *a: None, on_health=lambda r: None,
                                       should_stop=lambda: time.monotonic() > stop)).run()
    return read_index(media_dir / "live" / code)


@pytest.fixture
def live_camera(db, settings, tmp_path):
    camera = register(db, settings, "CAM-L", "rtsp://10.0.0.1/a")
    camera.live_roles = ["ketua_rt"]
    from siskamling.cameras import service as cameras

    cameras._rebuild_shares(db, camera)
    db.commit()
    index = make_live_files(settings.media_dir, "CAM-L")
    return camera, index


def test_live_fragments_are_marked_by_keyframe(live_camera, settings):
    _, index = live_camera
    folder = settings.media_dir / "live" / "CAM-L"
    assert index["codec"] == "avc1.4d401f" and index["keyframes"]
    assert [k for k, _, _ in boxes((folder / "init.mp4").read_bytes())] == ["ftyp", "moov"]
    for seq in range(max(1, index["latest"] - 8), index["latest"] + 1):
        arrived, key, data = split_fragment((folder / f"f{seq}.m4s").read_bytes())
        assert [kind for kind, _, _ in boxes(data)] == ["moof", "mdat"], "one frame per fragment"
        moof_end = next(end for kind, _, end in boxes(data) if kind == "moof")
        assert key == starts_with_keyframe(data[:moof_end]) == (seq in index["keyframes"])
        assert time.time() - 10 < arrived <= time.time()


def test_a_shared_viewer_gets_init_then_a_keyframe_fragment(live_camera, login_as, db):
    b = login_as("bob")
    with b.client.websocket_connect("/cameras/CAM-L/live.ws", headers=ORIGIN) as ws:
        hello = json.loads(ws.receive_text())
        while hello["status"] == "waiting":  # the page shows "waiting" until the first keyframe is read
            hello = json.loads(ws.receive_text())
        assert hello["status"] == "live" and hello["codec"] == "avc1.4d401f"
        init = ws.receive_bytes()
        assert init[4:8] == b"ftyp"
        first = ws.receive_bytes()
        moof_end = next(end for kind, _, end in boxes(first) if kind == "moof")
        assert starts_with_keyframe(first[:moof_end]), "a viewer joins at a keyframe"
    started = db.scalar(select(AuditEvent).where(AuditEvent.action == "camera.live_started"))
    assert started.actor_label == "bob" and started.data == {"code": "CAM-L"}
    # The session's end is audited when the server notices the viewer left: see tests/browser/test_live_video.py.


def _sequence_numbers(message: bytes) -> list[int]:
    """The fragment sequence numbers (moof/mfhd) in one WebSocket message, in order."""
    out = []
    for kind, start, end in boxes(message):
        if kind == "moof":
            mfhd = next(s for k, s, _e in boxes(message, start + 8, end) if k == "mfhd")
            out.append(int.from_bytes(message[mfhd + 12:mfhd + 16], "big"))
    return out


class _FakeViewer:
    def __init__(self, started: bool, upto: int) -> None:
        self.started, self.upto, self.messages = started, upto, []

    def send(self, frame: bytes, payload: bytes, key: bool) -> None:
        self.messages.append(payload)


def test_held_frames_go_out_together_once_to_each_viewer(settings):
    """Frames are sent two to a message (the setting's default): one write per viewer for two
    frames. A viewer who joined while a frame was held got it with the frames since the keyframe,
    and gets only the rest; one not yet started gets nothing."""
    from siskamling.cameras.live import moof_mdat
    from siskamling.cameras.stream import Feed, LiveHub

    assert settings.live_frames_per_message == 2
    feed = Feed(LiveHub(settings.media_dir, 2), "CAM-X", settings.media_dir / "live" / "CAM-X")
    frames = {n: moof_mdat(n, n * 1000, 1000, 0, b"frame-%d" % n, keyframe=False) for n in (7, 8)}
    watching, joined, waiting = _FakeViewer(True, 6), _FakeViewer(True, 7), _FakeViewer(False, -1)
    feed.viewers = {watching, joined, waiting}
    feed._deliver([(7, frames[7], None), (8, frames[8], None)], key=False)
    assert [_sequence_numbers(m) for m in watching.messages] == [[7, 8]]
    assert [_sequence_numbers(m) for m in joined.messages] == [[8]]
    assert waiting.messages == [] and watching.upto == joined.upto == 8
    feed._deliver([(8, frames[8], None)], key=False)  # nobody gets a frame twice
    assert len(watching.messages) == 1 and len(joined.messages) == 1


@pytest.mark.parametrize("who", ["dina", "charlie", "recordings-only"])
def test_people_outside_the_rule_are_turned_away(live_camera, login_as, db, who):
    if who == "recordings-only":  # an officer of the kelurahan: the rule lets them play back, not watch live
        from siskamling.accounts import service as accounts
        from siskamling.audit.service import Actor

        accounts.create_user(db_session=db, username="rahmat", full_name="Rahmat", password="kata sandi panjang",
                             actor=Actor.system("t"))
        accounts.add_grant(db_session=db, username="rahmat", role="officer", area_code="99.01.01.1001",
                           actor=Actor.system("t"))
        db.commit()
        who = "rahmat"
    b = login_as(who)
    with pytest.raises(WebSocketDisconnect) as exc:
        with b.client.websocket_connect("/cameras/CAM-L/live.ws", headers=ORIGIN) as ws:
            ws.receive_bytes()
    assert exc.value.code == 4404


def test_another_sites_page_cannot_open_the_socket(live_camera, login_as, client):
    b = login_as("bob")
    for headers in ({"origin": "http://evil.example"}, {}):
        with pytest.raises(WebSocketDisconnect) as exc:
            with b.client.websocket_connect("/cameras/CAM-L/live.ws", headers=headers) as ws:
                ws.receive_text()
        assert exc.value.code == 1008
    with pytest.raises(WebSocketDisconnect):
        with client.websocket_connect("/cameras/CAM-L/live.ws", headers=ORIGIN) as ws:
            ws.receive_text()


def test_camera_page_offers_live_video_only_to_those_who_may_watch(live_camera, login_as):
    from tests.helpers import html

    page = html(login_as("bob").get("/cameras/CAM-L"))
    assert page.select_one("video#live")["data-ws"] == "/cameras/CAM-L/live.ws"
    assert login_as("dina").get("/cameras/CAM-L").status_code == 404


def _watch_until_closed(browser, change) -> tuple[int, float]:
    """Open the live view, make ``change`` once video flows, keep reading (a slow reader gets no
    frame after the close): the close code and how long after the change it came."""
    with pytest.raises(WebSocketDisconnect) as exc:
        with browser.client.websocket_connect("/cameras/CAM-L/live.ws", headers=ORIGIN) as ws:
            while json.loads(ws.receive_text())["status"] != "live":
                pass
            ws.receive_bytes()
            change()
            changed = time.monotonic()
            while True:
                ws.receive_bytes()
    return exc.value.code, time.monotonic() - changed


def test_logging_out_ends_a_live_view_within_seconds(live_camera, login_as, db):
    from siskamling.accounts import service as accounts
    from siskamling.accounts.models import LoginSession
    from siskamling.audit.service import Actor
    from siskamling.audit.watch import POLL_S
    from siskamling.cameras.stream import RECHECK_S

    def log_out():
        row = db.scalar(select(LoginSession).order_by(LoginSession.id.desc()).limit(1))
        accounts.end_session(db_session=db, session_row=row, actor=Actor.system("t"))
        db.commit()

    code, after = _watch_until_closed(login_as("bob"), log_out)
    assert code == 4403
    assert after < POLL_S + 5 < RECHECK_S, "woken by the audit log, not by the routine check"


def test_a_new_sharing_rule_ends_the_views_it_no_longer_allows(live_camera, login_as, db, settings):
    from siskamling.audit.service import Actor
    from siskamling.cameras import service as cameras
    from siskamling.cameras.schemas import CameraPatch

    camera, _ = live_camera

    def share_with_officers_only():
        cameras.change(db_session=db, camera=camera, patch=CameraPatch(live_roles=["officer"]),
                       actor=Actor.system("t"), settings=settings)
        db.commit()

    code, after = _watch_until_closed(login_as("bob"), share_with_officers_only)
    assert code == 4403 and after < 10


def test_a_duty_grant_ends_the_live_view_the_moment_it_ends(live_camera, login_as, db):
    from datetime import timedelta

    from siskamling.accounts import service as accounts
    from siskamling.audit.service import Actor
    from siskamling.core.time import utcnow
    from tests.conftest import KEL_A

    accounts.create_user(db_session=db, username="sari", full_name="Sari", password="kata sandi panjang",
                         actor=Actor.system("t"))
    accounts.add_grant(db_session=db, username="sari", role="ketua_rt", area_code=KEL_A + ".001.001",
                       ends_at=utcnow() + timedelta(seconds=3), actor=Actor.system("t"))
    db.commit()
    sari = login_as("sari")
    started = time.monotonic()
    with pytest.raises(WebSocketDisconnect) as exc:
        with sari.client.websocket_connect("/cameras/CAM-L/live.ws", headers=ORIGIN) as ws:
            while json.loads(ws.receive_text())["status"] != "live":
                pass
            while True:
                ws.receive_bytes()
    assert exc.value.code == 4403
    assert time.monotonic() - started < 15, "at the end of the duty, not at the next routine check a minute later"


def test_a_keyframe_sent_as_two_packets_is_one_sample(rtsp_server, tmp_path):
    # x264 behind GStreamer's payloader sends each keyframe as two packets with one timestamp
    # (two IDR slices): the browser must get them as one frame, not two overlapping ones.
    import struct

    from siskamling.cameras.live import find_box

    folder = tmp_path / "live" / "CAM-X"
    touch(folder, WANT_FILE)
    stop = time.monotonic() + 4.5
    CameraRecorder(code="CAM-X", url=rtsp_server.url("live"), credentials=None,
                   config=RecorderConfig(media_dir=tmp_path, analytics_fps=0),
                   callbacks=Callbacks(on_segment=lambda *a: None, on_health=lambda r: None,
                                       should_stop=lambda: time.monotonic() > stop)).run()
    index = read_index(folder)
    assert len(index["keyframes"]) >= 2
    times, keys = [], []
    for seq in range(index["keyframes"][0], index["latest"] + 1):
        _, key, data = split_fragment((folder / f"f{seq}.m4s").read_bytes())
        tfdt = find_box(data, ["moof", "traf", "tfdt"])
        times.append(struct.unpack_from(">Q", data, tfdt[0] + 12)[0])
        mdat = find_box(data, ["mdat"])
        sample, i, slices = data[mdat[0] + 8:mdat[1]], 0, 0
        while i < len(sample):
            n = struct.unpack_from(">I", sample, i)[0]
            slices += (sample[i + 4] & 0x1F) == 5
            i += 4 + n
        keys.append((key, slices))
    steps = {b - a for a, b in zip(times, times[1:])}
    assert steps == {6000}, f"one sample per frame at 15 fps on a 90 kHz clock, got steps {steps}"
    # (the stream's very first keyframe comes whole, in one packet)
    assert all(slices == 2 for slices in [n for key, n in keys if key][1:]), "both IDR slices in one sample"
    assert [seq for seq, (key, _) in zip(range(index["keyframes"][0], index["latest"] + 1), keys) if key] == \
        index["keyframes"], "the index lists exactly the keyframes"
