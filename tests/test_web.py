"""The shell: health, readiness, metrics, security headers, error pages and the area browser."""

from __future__ import annotations

from tests.conftest import KEL_A
from tests.helpers import html


def test_readyz_checks_database_and_schema(client):
    assert client.get("/readyz").json() == {"status": "ready"}


def test_metrics_count_requests(client):
    client.get("/healthz")
    body = client.get("/metrics").text
    assert 'siskamling_http_requests_total{method="GET",route="/healthz",status="200"}' in body


def test_security_headers(client):
    r = client.get("/login")
    assert r.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_unknown_page_is_an_html_404_and_unknown_api_a_json_404(client):
    page = client.get("/no-such-page")
    assert page.status_code == 404 and html(page).select_one("h1").text == "404"
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.json()["error"]["code"] == "http_404"


def test_htmx_errors_come_back_as_a_fragment(login_as):
    r = login_as("dina").get(f"/areas/{KEL_A}", headers={"HX-Request": "true"})
    assert r.status_code == 404
    fragment = html(r)
    assert fragment.select_one("html") is None and fragment.select_one(".error[role=alert]") is not None


def test_area_browser_lists_children_with_counts(login_as):
    page = html(login_as("alice").get(f"/areas/{KEL_A}"))
    assert page.select_one("#area-name").text == "Sukamaju"
    rows = page.select("#children tbody tr")
    assert [r["data-code"] for r in rows] == [f"{KEL_A}.00{i}" for i in range(1, 5)]
    first = rows[0].select("td")
    assert (first[2].text, first[3].text) == ("3", "1"), "RW 001 has 3 RTs and one watcher (Bob, ketua RT)"
    assert page.select_one("#map")["data-url"] == f"/api/v1/areas/{KEL_A}/children"
    trail = page.select_one(".trail")
    assert "Kota Demo Barat" in trail.text, "ancestors are named"
    assert "Kota Demo Barat" not in [a.text for a in trail.select("a")], "but not linked outside the grant"


def test_area_browser_geojson_carries_counts_and_attributes(client, token_for):
    fc = client.get(f"/api/v1/areas/{KEL_A}/children", headers=token_for("alice")).json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 4
    feature = fc["features"][0]
    assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert set(feature["properties"]["counts"]) == {"children", "watchers"}
    assert "floodprone" in feature["properties"]["attributes"]


def test_api_docs_are_served_locally(client):
    page = html(client.get("/api/docs"))
    assert [s["src"] for s in page.select("script[src]")][0].startswith("/static/vendor/")
    assert client.get("/api/openapi.json").json()["info"]["title"] == "Siskamling API"


def test_home_shows_the_users_roles(login_as):
    page = html(login_as("bob").get("/"))
    assert "Ketua RT" in page.select_one(".grants").text


def test_locate_note_speaks_the_users_language(client):
    body = client.get("/api/v1/locate", params={"lat": 10, "lon": 10}).json()
    assert body["status"] == "outside" and body["note"] == "di luar wilayah layanan"
    client.cookies.set("lang", "en")
    assert client.get("/api/v1/locate", params={"lat": 10, "lon": 10}).json()["note"] == "outside the service area"


def test_openapi_describes_the_json_api_only(client):
    paths = client.get("/api/openapi.json").json()["paths"]
    assert "/api/v1/locate" in paths and "/api/v1/areas/{code}" in paths
    assert "/open311/v2/requests.{fmt}" in paths, "Open311 is an API too"
    assert not [p for p in paths if not p.startswith(("/api/", "/open311/"))], \
        "HTML pages are not part of the API description"


def test_large_geojson_is_compressed(client, token_for):
    r = client.get("/api/v1/areas?level=rt", headers={**token_for("admin"), "Accept-Encoding": "gzip"})
    assert r.headers.get("content-encoding") == "gzip" and len(r.json()["features"]) == 96


def test_boundary_credit_reaches_the_map(app, login_as):
    app.state.settings = app.state.settings.model_copy(update={"boundary_attribution": "RW © OpenStreetMap (ODbL)"})
    page = html(login_as("alice").get(f"/areas/{KEL_A}"))
    assert page.select_one("#map")["data-boundaries"] == "RW © OpenStreetMap (ODbL)"
