"""The recordings timeline in a real browser: Debian's Chromium draws the recorded spans and the gap
between them from timeline.json, and a click in a span plays that moment (the video's currentTime
advances, the form's From field follows); the arrow keys seek; the bar fits a phone's width."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from siskamling.audit.service import Actor
from siskamling.cameras import service as cameras
from siskamling.cameras.recorder import Callbacks, CameraRecorder, RecorderConfig
from siskamling.cameras.schemas import CameraIn
from siskamling.core import migrate
from siskamling.core.config import Environment, Settings
from siskamling.core.db import make_engine, make_session_factory, session_scope
from siskamling.core.time import WIB, utcnow
from siskamling.demo import service as demo
from tests.browser.conftest import _require_chromium, new_page, serve
from tests.helpers import shared_data

pytestmark = pytest.mark.browser

SEGMENTS = 6  # a minute of 10 s segments per span


@pytest.fixture
def site(tmp_path):
    """A camera recorded for a minute 30 minutes ago and for a minute 15 minutes ago (real segments
    of a real clip), nothing in between, served by a real uvicorn."""
    _require_chromium()
    clip = shared_data() / "video" / "one-by-one-person-detection.mp4"
    settings = Settings(environment=Environment.test, database_url=f"sqlite:///{tmp_path / 'timeline.db'}",
                        media_dir=tmp_path / "media", secret_key="browser-timeline-test-secret-key-0123456789",
                        session_cookie_secure=False, tile_url="", run_workers=False)
    made = []
    CameraRecorder(code="TL-1", url=f"file://{clip}", credentials=None,
                   config=RecorderConfig(media_dir=settings.media_dir, realtime_files=False),
                   callbacks=Callbacks(on_segment=lambda *a: made.append(a[2]), on_health=lambda r: None)).run()
    assert len(made) >= SEGMENTS
    now = utcnow().replace(microsecond=0)
    spans = [(now - timedelta(minutes=30), now - timedelta(minutes=29)),
             (now - timedelta(minutes=15), now - timedelta(minutes=14))]
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    with session_scope(make_session_factory(engine)) as db:
        demo.import_areas(db, tmp_path / "city", None, None)
        accounts = {a.username: a for a in demo.create_accounts(db, settings)}
        home = demo._children(db, demo._home_kelurahan(db))[0]
        camera = cameras.register(db_session=db, settings=settings, actor=Actor.system("t"), data=CameraIn(
            code="TL-1", name="Kamera Lini Masa", lat=home.centroid_lat, lon=home.centroid_lon,
            stream_url=f"file://{clip}", recording_roles=["ketua_rt"]))
        db.flush()
        for start, _end in spans:
            for i, path in enumerate(made[:SEGMENTS]):
                cameras.add_segment(db_session=db, camera_id=camera.id, started_at=start + timedelta(seconds=10 * i),
                                    ended_at=start + timedelta(seconds=10 * i + 10),
                                    path=str(path.relative_to(settings.media_dir)), size=path.stat().st_size)
    try:
        with serve(settings, engine) as url:
            yield url, accounts, spans
    finally:
        engine.dispose()


def log_in(page, url, accounts):
    page.goto(url + "/login")
    page.fill("input[name=username]", "ketua.rt")
    page.fill("input[name=password]", accounts["ketua.rt"].password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(url + "/")


def wib(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=WIB)


def current_time(page) -> float:
    return page.evaluate("() => document.getElementById('playback').currentTime")


def wait_until(predicate, timeout: float = 15, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, message
        time.sleep(0.1)


def test_a_click_on_the_timeline_plays_that_moment(site, chromium_browser):
    url, accounts, spans = site
    page = new_page(chromium_browser, url)
    log_in(page, url, accounts)
    page.goto(url + "/cameras/TL-1/play")
    first_from = page.input_value("#range-form input[name=start]")
    assert spans[1][0] <= wib(first_from) < spans[1][1], "the page opens on the newest recording"

    page.wait_for_selector("#timeline[data-state=ready]")
    assert page.locator("#timeline-svg rect.tl-span").count() == 2
    assert page.locator("#timeline-svg rect.tl-gap").count() >= 1
    assert page.locator("#timeline-svg rect.tl-span title").first.text_content().startswith("Terekam")

    page.click("#timeline button[data-zoom='1']")  # an hour: each one-minute span is a good target
    assert page.get_attribute("#timeline button[data-zoom='1']", "aria-pressed") == "true"
    page.wait_for_selector("#timeline[data-state=ready]")
    assert page.locator("#timeline-svg rect.tl-span").count() == 2, "the hour around the newest recording"
    assert page.locator("#timeline-svg rect.tl-span").first.bounding_box()["width"] > 10, "a good target"
    page.locator("#timeline-svg").scroll_into_view_if_needed()
    spans_px = [page.locator("#timeline-svg rect.tl-span").nth(i).bounding_box() for i in range(2)]
    gap = page.locator("#timeline-svg rect.tl-gap").evaluate_all(
        "(rects, edge) => rects.filter(r => { const b = r.getBoundingClientRect();"
        " return b.left >= edge.left - 1 && b.right <= edge.right + 1 && b.width > 0; }).length",
        {"left": spans_px[0]["x"] + spans_px[0]["width"], "right": spans_px[1]["x"]})
    assert gap == 1, "the gap between the two spans is drawn"

    box = spans_px[0]
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    wait_until(lambda: page.input_value("#range-form input[name=start]") != first_from, 5,
               "the From field follows the click")
    chosen = wib(page.input_value("#range-form input[name=start]"))
    assert spans[0][0] <= chosen < spans[0][1], (chosen, spans[0])
    assert page.input_value("#export-form input[name=start]") == page.input_value("#range-form input[name=start]")
    assert "start=" in page.get_attribute("#playback", "src")

    wait_until(lambda: current_time(page) > 0.5, 20, "the video plays")
    before = current_time(page)
    time.sleep(1.5)
    assert current_time(page) > before + 0.8, "and keeps playing"
    cursor_x = page.locator("#timeline-cursor line").bounding_box()["x"]
    assert box["x"] - 2 <= cursor_x <= box["x"] + box["width"] + 2, "the cursor is on the span being played"

    page.focus("#timeline-svg")
    before = current_time(page)
    page.keyboard.press("ArrowRight")
    wait_until(lambda: current_time(page) >= before + 9, 5, "the right arrow key seeks 10 s on")
    assert page.get_attribute("#timeline-svg", "aria-valuetext").endswith("WIB")
    assert page.js_errors == [] and page.csp_violations == []
    page.context.close()


def test_the_timeline_fits_a_phone(site, chromium_browser):
    url, accounts, _spans = site
    page = new_page(chromium_browser, url)
    page.set_viewport_size({"width": 360, "height": 740})
    log_in(page, url, accounts)
    page.goto(url + "/cameras/TL-1/play")
    page.wait_for_selector("#timeline[data-state=ready]")
    svg = page.locator("#timeline-svg").bounding_box()
    assert svg["x"] >= 0 and svg["x"] + svg["width"] <= 360
    view_width = float(page.get_attribute("#timeline-svg", "viewBox").split()[2])
    assert abs(view_width - svg["width"]) <= 1, "one viewBox unit per pixel: labels keep their size"
    assert page.locator("#timeline-svg text.tl-label").count() >= 2
    assert page.js_errors == [] and page.csp_violations == []
    page.context.close()
