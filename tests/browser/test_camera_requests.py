"""Camera requests and plans in a real browser: a ketua RT places the pin, sees the RW named and the
neighbours' request nearby offered (HTMX), sends the request and reads its score's parts; an admin
makes a plan and sees its sites drawn on the Leaflet map.

The demo's requests (siskamling/demo/service.py DEMO_REQUESTS) are loaded into the live site:
the ketua RW's is 40 m north of the home kelurahan's first RW centre.

Every page fails its test on a script error or an error in the console.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from siskamling.core.db import make_session_factory, session_scope
from siskamling.demo import service as demo
from siskamling.placement.models import CameraRequest
from tests.browser.conftest import log_in_through_forms

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def neighbourhood(live_server) -> dict:
    with session_scope(make_session_factory(live_server.engine)) as db:
        kel = demo._home_kelurahan(db)
        rw = demo._children(db, kel)[0]
        theirs = db.scalar(select(CameraRequest).where(CameraRequest.reason == "gang_gelap"))
        return {"rw": rw.name, "lat": theirs.lat, "lon": theirs.lon, "code": theirs.code}


@pytest.fixture
def page(open_page):
    return open_page(viewport={"width": 1280, "height": 900})


def test_a_ketua_rt_asks_for_a_camera_and_sees_the_neighbours_request_first(page, live_server, neighbourhood):
    log_in_through_forms(page, live_server, "ketua.rt", "/permintaan-kamera/baru")
    expect(page.locator("#pin-map.leaflet-container")).to_be_visible()
    for field, value in (("#lat", neighbourhood["lat"] + 0.0003), ("#lon", neighbourhood["lon"])):
        page.fill(field, f"{value:.6f}")
        page.dispatch_event(field, "change")
    expect(page.locator("#pin-map .leaflet-marker-icon")).to_have_count(1)
    expect(page.locator("#place")).to_have_attribute("data-state", "inside")
    expect(page.locator("#place")).to_contain_text(re.compile(r"RW \d{3}"))
    nearby = page.locator(f"#nearby-list li[data-code='{neighbourhood['code']}']")
    expect(nearby).to_be_visible()
    page.select_option("#reason", "gang_gelap")
    page.fill("#description", "Gang sebelah pos ronda juga gelap, perlu kamera kedua")
    page.fill("#hours", "18-24, 0-5")
    with page.expect_navigation():
        page.click("#send")
    expect(page.locator("#filed")).to_be_visible()
    expect(page.locator("#status")).to_have_text("Diajukan")
    expect(page.locator("#score-parts tbody tr")).to_have_count(5)
    assert float(page.inner_text("#score")) > 0
    # The neighbours' request is named as one weighed together with this one.
    expect(page.locator("#near")).to_contain_text(neighbourhood["code"])
    assert page.errors == []


def test_an_admin_makes_a_plan_and_sees_it_on_the_map(page, live_server):
    log_in_through_forms(page, live_server, "admin", "/rencana-kamera")
    page.fill("#name", "Uji peramban")
    page.fill("#count", "3")
    with page.expect_navigation():
        page.click("#run")
    assert re.search(r"/rencana-kamera/\d+$", page.url), page.url
    expect(page.locator("#sites tbody tr")).to_have_count(3)
    expect(page.locator("#plan-map")).to_have_attribute("data-loaded", "3")
    expect(page.locator("#plan-map .leaflet-marker-icon")).to_have_count(3)
    expect(page.locator("#gap")).to_contain_text("%")
    assert page.errors == []
