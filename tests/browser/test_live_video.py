"""Live video in a real browser: Debian's Chromium plays the camera through Media Source
Extensions (currentTime advancing), fed by the real recorder and a real uvicorn server; the
viewing session's start and end land in the audit log."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from siskamling.audit.models import AuditEvent
from siskamling.audit.service import Actor
from siskamling.cameras import service as cameras
from siskamling.cameras.recorder import Callbacks, CameraRecorder, RecorderConfig
from siskamling.cameras.schemas import CameraIn
from siskamling.core import migrate
from siskamling.core.config import Environment, Settings
from siskamling.core.db import make_engine, make_session_factory, session_scope
from siskamling.demo import service as demo
from tests.browser.conftest import _require_chromium, new_page, serve
from tests.helpers import shared_data

pytestmark = pytest.mark.browser


@pytest.fixture
def site(tmp_path):
    _require_chromium()
    clip = shared_data() / "video" / "one-by-one-person-detection.mp4"
    settings = Settings(environment=Environment.test, database_url=f"sqlite:///{tmp_path / 'live.db'}",
                        media_dir=tmp_path / "media", secret_key="browser-live-test-secret-key-0123456789",
                        session_cookie_secure=False, tile_url="", run_workers=False)
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    with session_scope(factory) as db:
        demo.import_areas(db, tmp_path / "city", None, None)
        accounts = {a.username: a for a in demo.create_accounts(db, settings)}
        home = demo._children(db, demo._home_kelurahan(db))[0]
        cameras.register(db_session=db, settings=settings, actor=Actor.system("t"), data=CameraIn(
            code="LIVE-1", name="Kamera Live", lat=home.centroid_lat, lon=home.centroid_lon,
            stream_url=f"file://{clip}"))
    stop = threading.Event()
    recorder = CameraRecorder(code="LIVE-1", url=f"file://{clip}", credentials=None,
                              config=RecorderConfig(media_dir=settings.media_dir),
                              callbacks=Callbacks(on_segment=lambda *a: None, on_health=lambda r: None,
                                                  should_stop=stop.is_set))
    thread = threading.Thread(target=recorder.run, daemon=True)
    thread.start()
    try:
        with serve(settings, engine) as url:
            yield url, accounts, factory
    finally:
        stop.set()
        thread.join(10)
        engine.dispose()


def test_live_tile_plays_in_chromium_and_the_session_is_audited(site, chromium_browser):
    url, accounts, factory = site
    # One Chromium for the whole session: Playwright's sync API allows one at a time.
    page = new_page(chromium_browser, url)
    page.goto(url + "/login")
    page.fill("input[name=username]", "ketua.rt")
    page.fill("input[name=password]", accounts["ketua.rt"].password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(url + "/")
    page.goto(url + "/cameras/LIVE-1")

    def current_time() -> float:
        return page.evaluate("() => document.getElementById('live').currentTime")

    deadline = time.monotonic() + 20
    while current_time() <= 0.5 and time.monotonic() < deadline:
        time.sleep(0.2)
    first = current_time()
    time.sleep(2)
    second = current_time()
    assert second > first + 1.0, "the video keeps playing"
    assert page.evaluate("() => document.getElementById('live').dataset.state") == "live"
    assert page.csp_violations == [] and page.js_errors == []
    page.context.close()

    def actions():
        with session_scope(factory) as db:
            return [e.action for e in db.scalars(select(AuditEvent).where(AuditEvent.action.like("camera.live%"))
                                                  .order_by(AuditEvent.seq))]

    deadline = time.monotonic() + 10
    while actions()[-1:] != ["camera.live_ended"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert actions()[-2:] == ["camera.live_started", "camera.live_ended"]


def _log_in(page, url, accounts, username="ketua.rt"):
    page.goto(url + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", accounts[username].password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(url + "/")


def test_without_media_source_extensions_the_page_falls_back_to_hls(site, chromium_browser):
    url, accounts, _ = site
    page = new_page(chromium_browser, url)
    # What an iPhone before iOS 17.1 looks like to the page: no MSE, a native HLS player.
    page.add_init_script("delete window.MediaSource; HTMLMediaElement.prototype.canPlayType = "
                         "function (t) { return t.indexOf('mpegurl') >= 0 ? 'maybe' : ''; };")
    _log_in(page, url, accounts)
    page.goto(url + "/cameras/LIVE-1")
    # The page hands the playlist to the browser's own player (this Chromium has none, so it then
    # reports an error: a real iPhone plays it; FFmpeg's HLS player does below).
    page.wait_for_function("() => document.getElementById('live').getAttribute('src') === '/cameras/LIVE-1/live.m3u8'")
    assert page.evaluate("() => document.getElementById('live').dataset.state") in ("hls", "unsupported")
    page.context.close()


def test_ffmpegs_hls_player_plays_the_live_playlist_with_the_viewers_login(site, chromium_browser):
    import av

    url, accounts, _ = site
    page = new_page(chromium_browser, url)
    _log_in(page, url, accounts)
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())
    page.context.close()
    container = av.open(url + "/cameras/LIVE-1/live.m3u8", timeout=20,
                        options={"headers": f"Cookie: {cookies}\r\n", "live_start_index": "0"})
    frames = []
    for frame in container.decode(video=0):
        frames.append(frame.time)
        if len(frames) >= 25:
            break
    container.close()
    assert len(frames) == 25 and frames[-1] > frames[0], "a real HLS client follows the playlist across segments"
    # A copied link without the login gets the login page, not video.
    with pytest.raises(av.error.InvalidDataError):
        av.open(url + "/cameras/LIVE-1/live.m3u8", timeout=10)
