"""The citizen report pages in a real browser: the form on a phone (category questions and the 112
banner loaded by HTMX, the pin placed by a tap on the Leaflet map or by the device's location, the
kelurahan/RW named before sending), similar open reports offered for support, a report sent with a
photo, the public map's markers, and an officer moving a report through the queue.

The demo city (siskamling/demo/city.py) lies around Jakarta's centre [-6.2, 106.83], where the form's
map starts, so a tap at the map's centre lands in it. The demo reports (siskamling/demo/service.py
DEMO_REPORTS) sit on the centroids of the home kelurahan's RWs; "banjir" (open) on the second RW,
"pohon_tumbang" (open, handled by the kelurahan office the demo officer heads) on the third.

Every page fails its test on a script error or an error in the console (a blocked resource, a 404,
a CSP violation).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import select

from siskamling.core.db import make_session_factory, session_scope
from siskamling.demo import service as demo
from siskamling.reports.models import Report

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


@pytest.fixture(scope="module")
def home(live_server) -> dict:
    """The home kelurahan's name, its RWs (name, centroid) and the demo reports' tickets by category."""
    with session_scope(make_session_factory(live_server.engine)) as db:
        kel = demo._home_kelurahan(db)
        rws = [{"name": rw.name, "lat": rw.centroid_lat, "lon": rw.centroid_lon} for rw in demo._children(db, kel)]
        tickets = {r.category.code: r.ticket for r in db.scalars(select(Report).order_by(Report.id))}
        return {"kelurahan": kel.name, "rws": rws, "tickets": tickets}


def place_pin(page, lat: float, lon: float) -> None:
    """Type a position into the form, as a user without a map would (change event on each field)."""
    for field, value in (("#lat", lat), ("#lon", lon)):
        page.fill(field, f"{value:.6f}")
        page.dispatch_event(field, "change")


def test_phone_form_questions_map_tap_and_my_location(open_page, home):
    rw = home["rws"][2]
    page = open_page(**PHONE, geolocation={"latitude": rw["lat"], "longitude": rw["lon"], "accuracy": 10},
                     permissions=["geolocation"])
    page.goto("/lapor")
    assert page.evaluate("window.innerWidth") == 390
    expect(page.locator("#pin-map.leaflet-container")).to_be_visible()
    assert page.locator("#emergency").count() == 0

    # An emergency category: HTMX loads the banner with 112 to call.
    page.select_option("#category", "kebakaran")
    emergency = page.locator("#questions #emergency")
    expect(emergency).to_be_visible()
    expect(emergency).to_contain_text("112")
    assert emergency.locator("a[href='tel:112']").count() == 1

    # Another category: its question replaces the banner.
    page.select_option("#category", "banjir")
    question = page.locator("#questions input[name='attribute[tinggi_air_cm]']")
    expect(question).to_be_visible()
    assert question.get_attribute("required") is not None
    assert question.get_attribute("inputmode") == "decimal"
    expect(page.locator("#emergency")).to_have_count(0)

    # A tap at the map's centre (Jakarta's centre, inside the demo city) places the pin there.
    page.locator("#pin-map").tap()
    expect(page.locator("#pin-map .leaflet-marker-icon")).to_have_count(1)
    assert abs(float(page.input_value("#lat")) - -6.2) < 0.002
    assert abs(float(page.input_value("#lon")) - 106.83) < 0.002
    place = page.locator("#place")
    expect(place).to_have_attribute("data-state", "inside")
    expect(place).to_contain_text(re.compile(r"RW \d{3}"))

    # "Use my location": the device's position, the map zoomed to it, its RW and kelurahan named.
    page.click("#geolocate")
    expect(page.locator("#lat")).to_have_value(f"{rw['lat']:.6f}")
    expect(page.locator("#lon")).to_have_value(f"{rw['lon']:.6f}")
    expect(place).to_contain_text(rw["name"])
    expect(place).to_contain_text(home["kelurahan"])
    expect(place).to_have_attribute("data-state", "inside")
    assert "provinsi" not in place.inner_text().lower()
    assert page.evaluate("document.querySelectorAll('#pin-map .leaflet-marker-icon').length") == 1
    # The pin moved to the device's position, in view at the map's centre (zoomed in to 17).
    map_box, pin_box = page.locator("#pin-map").bounding_box(), page.locator("#pin-map .leaflet-marker-icon").bounding_box()
    pin_x, pin_bottom = pin_box["x"] + pin_box["width"] / 2, pin_box["y"] + pin_box["height"]
    assert abs(pin_x - (map_box["x"] + map_box["width"] / 2)) < 3
    assert abs(pin_bottom - (map_box["y"] + map_box["height"] / 2)) < 5
    assert page.errors == []


def test_geolocation_denied_says_so(open_page):
    page = open_page(**PHONE)  # no permission granted: headless chromium denies the request
    page.goto("/lapor")
    page.click("#geolocate")
    expect(page.locator("#place")).to_have_text(page.get_attribute("#geolocate", "data-denied"))
    assert page.input_value("#lat") == "" and page.input_value("#lon") == ""
    assert page.errors == []


def test_similar_open_report_is_offered_for_support(open_page, home):
    rw, ticket = home["rws"][1], home["tickets"]["banjir"]
    page = open_page()
    page.goto("/lapor")
    page.select_option("#category", "banjir")
    place_pin(page, rw["lat"], rw["lon"])

    expect(page.locator("#place")).to_have_attribute("data-state", "inside")
    expect(page.locator("#place")).to_contain_text(rw["name"])
    item = page.locator(f"#similar-list li[data-ticket='{ticket}']")
    expect(item).to_be_visible()
    assert page.locator("#similar-list li").count() == 1  # the other categories' reports are not offered
    expect(item.locator("a")).to_have_attribute("href", f"/laporan/{ticket}")
    button = item.locator(f"button[form='support-{ticket}']")
    expect(button).to_have_text("Dukung laporan ini")

    # Another category at the same place: nothing similar.
    page.select_option("#category", "kebakaran")
    expect(page.locator("#similar-list")).to_have_count(0)
    page.select_option("#category", "banjir")
    expect(item).to_be_visible()
    # No category (or no position): nothing offered either, not the last category's reports.
    page.select_option("#category", "")
    expect(page.locator("#similar-list")).to_have_count(0)
    page.select_option("#category", "banjir")
    expect(item).to_be_visible()
    page.fill("#lat", "")
    page.dispatch_event("#lat", "change")
    expect(page.locator("#similar-list")).to_have_count(0)
    place_pin(page, rw["lat"], rw["lon"])
    expect(item).to_be_visible()

    # The button sends its (hidden) form: back on the report's page, with one more supporter.
    with page.expect_navigation():
        button.click()
    assert urlparse(page.url).path == f"/laporan/{ticket}"
    expect(page.locator("#supporters")).to_have_text("1")
    assert page.locator("#history li[data-kind=support]").count() == 1
    assert page.errors == []


def test_send_a_report_with_a_photo(open_page, home, tmp_path):
    rw = home["rws"][0]
    photo = tmp_path / "jalan.jpg"
    Image.new("RGB", (64, 48), (180, 90, 30)).save(photo, "JPEG")
    page = open_page(**PHONE)
    page.goto("/lapor")

    page.select_option("#category", "jalan_rusak")
    page.fill("#description", "Lubang besar di tengah jalan dekat sekolah, berbahaya untuk motor.")
    place_pin(page, rw["lat"], rw["lon"])
    expect(page.locator("#place")).to_contain_text(rw["name"])
    page.set_input_files("#photos", photo)
    with page.expect_navigation():
        page.click("#send")

    url = urlparse(page.url)
    match = re.fullmatch(r"/laporan/([^/]+)", url.path)
    assert match, page.url
    query = parse_qs(url.query)
    assert query.get("kunci") and query.get("baru") == ["1"]
    expect(page.locator("#filed")).to_be_visible()
    expect(page.locator("#ticket")).to_have_text(match.group(1))
    expect(page.locator("#status")).to_have_text("Menunggu")
    img = page.locator(".photos img")
    expect(img).to_have_count(1)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    assert img.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [64, 48]
    assert page.errors == []


def test_a_refused_report_comes_back_with_its_answers_and_pin(open_page):
    page = open_page(**PHONE)
    page.goto("/lapor")
    page.select_option("#category", "banjir")
    page.fill("#questions input[name='attribute[tinggi_air_cm]']", "40")
    page.fill("#description", "Genangan setinggi lutut di depan pasar sejak pagi.")
    place_pin(page, -6.30, 106.83)  # south of the demo city
    expect(page.locator("#place")).to_have_attribute("data-state", "outside")
    with page.expect_navigation():
        page.click("#send")

    expect(page.locator("#form-error")).to_be_visible()
    assert page.input_value("#category") == "banjir"
    assert page.input_value("#questions input[name='attribute[tinggi_air_cm]']") == "40"
    assert page.input_value("#lat") == "-6.300000" and page.input_value("#lon") == "106.830000"
    # The pin is back on the map and the place checked again.
    expect(page.locator("#pin-map .leaflet-marker-icon")).to_have_count(1)
    expect(page.locator("#place")).to_have_attribute("data-state", "outside")
    # Chromium logs the form page's own 422 as a console error: that one is expected.
    assert [e for e in page.errors if "status of 422" not in e] == []


def test_public_map_draws_the_reports(open_page, live_server):
    page = open_page()
    page.goto("/laporan")
    expect(page.locator("#reports-map[data-state=ready]")).to_be_attached()
    features = int(page.get_attribute("#reports-map", "data-features"))
    assert features >= 1
    markers = page.locator("#reports-map .leaflet-overlay-pane path.leaflet-interactive")
    assert markers.count() == features
    listed = page.locator("#recent tbody a[href^='/laporan/']").count()
    assert listed >= 1
    # Every marker is in the map's view (fitted to them).
    map_box = page.locator("#reports-map").bounding_box()
    for i in range(markers.count()):
        box = markers.nth(i).bounding_box()
        assert box and box["width"] > 4
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        assert map_box["x"] < x < map_box["x"] + map_box["width"] and map_box["y"] < y < map_box["y"] + map_box["height"]

    # Hover names the topmost marker's report; a click opens it.
    box = markers.last.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    tooltip = page.locator("#reports-map .leaflet-tooltip")
    expect(tooltip).to_be_visible()
    ticket = tooltip.inner_text().split(" · ")[0].strip()
    with page.expect_navigation():
        page.mouse.click(x, y)
    assert urlparse(page.url).path == f"/laporan/{ticket}"
    expect(page.locator("#ticket")).to_have_text(ticket)
    assert page.errors == []


def test_officer_changes_a_status_from_the_queue(open_page, log_in, home):
    ticket = home["tickets"]["pohon_tumbang"]
    page = open_page()
    log_in(page, "officer", next_url="/reports")

    assert urlparse(page.url).path == "/reports"
    rows = page.locator("#queue tbody tr[data-ticket]")
    assert rows.count() >= 1
    row = page.locator(f"#queue tbody tr[data-ticket='{ticket}']")
    expect(row.locator(".tag")).to_have_text("Menunggu")
    with page.expect_navigation():
        row.locator(f"a[href='/reports/{ticket}']").click()

    assert urlparse(page.url).path == f"/reports/{ticket}"
    expect(page.locator("#status")).to_have_text("Menunggu")
    expect(page.locator("#report-map .leaflet-marker-icon")).to_have_count(1)
    form = page.locator("#status-form")
    form.locator("select[name=status]").select_option("koordinasi")
    form.locator("input[name=note]").fill("Sudah diteruskan ke petugas lapangan.")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()

    assert urlparse(page.url).path == f"/reports/{ticket}"
    assert page.locator("#action-error").count() == 0
    status = page.locator("#status")
    expect(status).to_have_text("Koordinasi")
    expect(status).to_have_class(re.compile(r"\bstatus-koordinasi\b"))
    expect(page.locator("#history tr[data-kind=status]").last).to_contain_text("Sudah diteruskan")
    # The queue shows the new status too.
    page.goto("/reports")
    expect(page.locator(f"#queue tbody tr[data-ticket='{ticket}'] .tag")).to_have_text("Koordinasi")
    assert page.errors == []
