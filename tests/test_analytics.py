"""Analytics: a camera's sub-stream (or small main stream) decoded at 5 fps, grey, at most 640x360,
fed to the motion detector, whose events land on the camera's timeline."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import select

from siskamling.cameras.analytics import MotionDetector, scaled_size
from siskamling.cameras.models import Camera, CameraEvent
from siskamling.cameras.recorder import Callbacks, CameraRecorder, RecorderConfig
from siskamling.core.db import session_scope


def test_motion_starts_after_two_moving_samples_and_ends_after_three_quiet_seconds():
    events = []
    detector = MotionDetector(lambda at: events.append(["start", at]) or len(events),
                              lambda handle, at, score: events.append(["end", handle, at, score]))
    t0 = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
    still = np.full((360, 640), 90, np.uint8)
    for i in range(5):  # a still picture: nothing
        detector(still, t0 + timedelta(seconds=i * 0.2))
    assert events == []
    for i in range(5, 15):  # a bright block walks across a fifth of the picture
        frame = still.copy()
        frame[100:250, i * 20:i * 20 + 120] = 230
        detector(frame, t0 + timedelta(seconds=i * 0.2))
    assert events[0] == ["start", t0 + timedelta(seconds=1.2)], "starts on the second moving sample"
    last_motion = t0 + timedelta(seconds=14 * 0.2)
    for i in range(15, 40):
        detector(still if i > 15 else still.copy(), t0 + timedelta(seconds=i * 0.2))
    kind, handle, ended, score = events[1]
    assert kind == "end" and handle == 1
    assert ended == t0 + timedelta(seconds=15 * 0.2), "ends at the last change seen (the block disappearing)"
    assert ended >= last_motion and 0.02 < score < 0.3
    assert len(events) == 2


def test_pictures_are_scaled_to_at_most_640x360_keeping_their_shape():
    assert scaled_size(1920, 1080) == (640, 360)
    assert scaled_size(768, 432) == (640, 360)
    assert scaled_size(640, 272) == (640, 272)
    assert scaled_size(704, 576) == (440, 360)


def run_recorder(media_dir, url, substream_url=None, seconds=9.0, fps=5.0):
    starts, ends = [], []
    stop = time.monotonic() + seconds
    CameraRecorder(code="CAM-A", url=url, credentials=None, substream_url=substream_url,
                   config=RecorderConfig(media_dir=media_dir, analytics_fps=fps),
                   callbacks=Callbacks(on_segment=lambda *a: None, on_health=lambda r: None,
                                       should_stop=lambda: time.monotonic() > stop,
                                       on_motion_start=lambda at: starts.append(at) or len(starts),
                                       on_motion_end=lambda h, at, score: ends.append((h, at, score)))).run()
    stats = json.loads((media_dir / "live" / "CAM-A" / "analytics.json").read_text())
    return starts, ends, stats


def test_the_sub_stream_is_decoded_at_5_fps_and_sees_the_moving_ball(rtsp_server, tmp_path):
    # Main stream: real footage (768x432); sub-stream: a live scene with a bouncing ball (640x360, 15 fps).
    starts, ends, stats = run_recorder(tmp_path, rtsp_server.url("file"), substream_url=rtsp_server.url("live"))
    assert stats["size"] == [640, 360]
    assert 4.0 <= stats["fps"] <= 5.5, stats
    assert stats["decoded"] >= 2.5 * stats["frames"], "every frame decoded, one in three analysed"
    assert starts, "the ball moves: motion"
    assert len(ends) == len(starts), "stopping the recorder ends the event in progress"


def test_a_small_main_stream_is_analysed_without_a_second_connection(rtsp_server, tmp_path):
    starts, ends, stats = run_recorder(tmp_path, rtsp_server.url("live"))
    assert stats["size"] == [640, 360] and 4.0 <= stats["fps"] <= 5.5, stats
    assert starts and len(ends) == len(starts)


def test_no_analytics_when_turned_off(rtsp_server, tmp_path):
    with pytest.raises(FileNotFoundError):
        run_recorder(tmp_path, rtsp_server.url("live"), seconds=3.0, fps=0)


def test_a_worker_puts_motion_on_the_camera_timeline(rtsp_server, tmp_path):
    from siskamling.cameras.worker import Supervisor
    from siskamling.core import migrate
    from siskamling.core.config import Environment, Settings
    from siskamling.core.db import make_engine, make_session_factory
    from tests.conftest import SECRET_KEY, load_base
    from tests.test_recording import register

    settings = Settings(environment=Environment.test, database_url=f"sqlite:///{tmp_path / 'w.db'}",
                        media_dir=tmp_path / "media", secret_key=SECRET_KEY, worker_lease_seconds=10)
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    with session_scope(factory) as db:
        load_base(db, settings, tmp_path / "city")
        camera = register(db, settings, "CAM-M", rtsp_server.url("file"))
        camera.substream_url = rtsp_server.url("live")
    worker = Supervisor(settings, worker_id="w", renew_every_s=1)
    try:
        worker.step()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with session_scope(factory) as db:
                if db.scalar(select(CameraEvent).where(CameraEvent.kind == "motion")):
                    break
            time.sleep(0.5)
    finally:
        worker.shutdown()
    with session_scope(factory) as db:
        camera = db.scalar(select(Camera).where(Camera.code == "CAM-M"))
        events = list(db.scalars(select(CameraEvent).where(CameraEvent.camera_id == camera.id)))
    assert events and events[0].kind == "motion"
    assert all(e.ended_at is not None and e.ended_at >= e.started_at and e.score > 0 for e in events), \
        "a worker that stops closes its events"


def test_a_frame_already_small_enough_gives_its_luma_plane_unconverted():
    import av

    from siskamling.cameras.analytics import luma

    rng = np.random.default_rng(3)
    picture = rng.integers(16, 235, (360, 640), dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(np.stack([picture] * 3, axis=-1), format="rgb24").reformat(format="yuv420p")
    direct = luma(frame, (640, 360))
    scaled = luma(frame, (320, 180))
    assert direct.shape == (360, 640) and scaled.shape == (180, 320)
    converted = frame.reformat(format="gray").to_ndarray().astype(int)
    assert np.abs(direct.astype(int) - converted).mean() < 20, "the same picture, in studio range"
