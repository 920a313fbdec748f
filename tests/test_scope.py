"""Deny by default. Every route is either marked public or guarded, and a user of one kelurahan
gets nothing — 404, not a hint that it exists — from another kelurahan, in pages and API alike."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount

from tests.conftest import KEL_A, KEL_B
from tests.helpers import html

PUBLIC_ROUTES = {
    ("GET", "/login"), ("POST", "/login"), ("POST", "/lang"), ("GET", "/healthz"), ("GET", "/readyz"),
    ("GET", "/metrics"), ("GET", "/api/v1/locate"), ("GET", "/api/docs"),
    # Citizen reports: anyone may report and follow a report (by its ticket, or its secret link
    # when it is private); Open311 reads are public by the spec, its writes check the api_key.
    ("GET", "/api/v1/reports/nearby"), ("GET", "/lapor"), ("POST", "/lapor"), ("GET", "/lapor/pertanyaan"),
    ("GET", "/lapor/serupa"), ("GET", "/laporan"), ("GET", "/laporan/peta.geojson"), ("GET", "/laporan/{ticket}"),
    ("POST", "/laporan/{ticket}/konfirmasi"), ("POST", "/laporan/{ticket}/sanggah"),
    ("POST", "/laporan/{ticket}/dukung"), ("GET", "/laporan/{ticket}/foto/{number}.jpg"),
    ("GET", "/open311/discovery.{fmt}"), ("GET", "/open311/v2/services.{fmt}"),
    ("GET", "/open311/v2/services/{code}.{fmt}"), ("GET", "/open311/v2/requests.{fmt}"),
    ("POST", "/open311/v2/requests.{fmt}"), ("GET", "/open311/v2/requests/{ticket}.{fmt}"),
    ("GET", "/open311/v2/tokens/{token}.{fmt}"), ("GET", "/open311/v2/servicerequestupdates.{fmt}"),
    ("POST", "/open311/v2/servicerequestupdates.{fmt}"),
    # Camera requests: the figures per kelurahan are public; the requests themselves are not.
    ("GET", "/statistik-kamera"),
}
# FastAPI's own documentation pages: the API description is public, as in any open-source API.
DOCS_ROUTES = {"/api/openapi.json"}


def dependency_calls(dependant) -> list:
    out = []
    for dep in dependant.dependencies:
        out.append(dep.call)
        out.extend(dependency_calls(dep))
    return out


def all_routes(app):
    """The app's whole route table, with included routers flattened (newer FastAPI keeps them
    as lazily resolved entries that expose their effective routes)."""
    for route in app.routes:
        if not hasattr(route, "effective_route_contexts"):
            yield route
            continue
        for context in route.effective_route_contexts():
            # WebSocket routes come back without a dependant: the route itself carries it.
            yield context if getattr(context, "dependant", None) is not None else context.original_route


def api_routes(app):
    return [r for r in all_routes(app) if isinstance(r, APIRoute) or hasattr(r, "dependant")]


def test_every_route_is_public_or_guarded(app):
    unmarked, wrongly_public = [], []
    seen = 0
    for route in all_routes(app):
        if isinstance(route, Mount):
            assert route.name == "static", f"unexpected mount {route.path}"
            continue
        if not hasattr(route, "dependant"):
            assert route.path in DOCS_ROUTES, f"route {route.path} is not an API route and not documented here"
            continue
        seen += 1
        calls = dependency_calls(route.dependant)
        public = any(getattr(c, "__siskamling_public__", False) for c in calls)
        guarded = any(getattr(c, "__siskamling_guard__", None) for c in calls)
        for method in getattr(route, "methods", None) or {"WEBSOCKET"}:
            if not (public or guarded):
                unmarked.append(f"{method} {route.path}")
            if public and (method, route.path) not in PUBLIC_ROUTES:
                wrongly_public.append(f"{method} {route.path}")
    assert seen > 20, "the walk must reach the routes of every included router"
    assert unmarked == [], "routes neither public nor guarded"
    assert wrongly_public == [], "routes marked public without being listed as such in this test"


def test_guarded_routes_refuse_anonymous_visitors(app, client):
    for route in api_routes(app):
        if "GET" not in (getattr(route, "methods", None) or ()):
            continue
        if ("GET", route.path) in PUBLIC_ROUTES:
            continue
        url = route.path.replace("{code}", KEL_A).replace("{token_id}", "1").replace("{grant_id}", "1")
        r = client.get(url, follow_redirects=False)
        if url.startswith("/api/"):
            assert r.status_code == 401, url
        else:
            assert r.status_code == 303 and r.headers["location"].startswith("/login"), url


# Objects of kelurahan A, and how each is reached.
A_OBJECTS = [KEL_A, f"{KEL_A}.001", f"{KEL_A}.001.001", f"{KEL_A}.004.003"]
B_PEOPLE = ["charlie", "dina", "eko", "fajar", "gita"]  # operator, ketua RT, ketua RW, satpam, FKDM of B


@pytest.mark.parametrize("username", B_PEOPLE)
@pytest.mark.parametrize("code", A_OBJECTS)
def test_other_kelurahan_is_invisible_in_pages(login_as, username, code):
    b = login_as(username)
    for url in (f"/areas/{code}",):
        r = b.get(url)
        assert r.status_code == 404, (username, url)
        page = html(r)
        assert "Sukamaju" not in page.get_text(), "the other kelurahan's name leaked"


@pytest.mark.parametrize("username", B_PEOPLE)
@pytest.mark.parametrize("code", A_OBJECTS)
def test_other_kelurahan_is_invisible_in_the_api(client, token_for, username, code):
    headers = token_for(username)
    for url in (f"/api/v1/areas/{code}", f"/api/v1/areas/{code}/children"):
        r = client.get(url, headers=headers)
        assert r.status_code == 404, (username, url)
        assert "Sukamaju" not in r.text
    missing = client.get("/api/v1/areas/99.01.01.9999", headers=headers)
    assert missing.json() == r.json(), "an existing area out of scope looks exactly like a missing one"


@pytest.mark.parametrize("username", B_PEOPLE)
def test_lists_show_only_the_users_own_areas(client, token_for, username):
    headers = token_for(username)
    seen = 0
    for url in ("/api/v1/areas", "/api/v1/areas?level=kelurahan", "/api/v1/areas?level=rw", "/api/v1/areas?level=rt"):
        codes = [f["properties"]["code"] for f in client.get(url, headers=headers).json()["features"]]
        assert all(c.startswith(KEL_B) for c in codes), (url, codes)
        seen += len(codes)
    assert seen, "each of them sees their own area"


def test_own_area_is_visible(login_as):
    page = html(login_as("dina").get(f"/areas/{KEL_B}.001.001"))
    assert page.select_one("#area-name").text == "RT 001"


def test_operator_sees_only_users_of_their_area(client, token_for):
    names = {u["username"] for u in client.get("/api/v1/users", headers=token_for("charlie")).json()}
    assert names == {"charlie", "dina", "eko", "fajar", "gita"}
    admin_view = {u["username"] for u in client.get("/api/v1/users", headers=token_for("admin")).json()}
    assert {"alice", "bob", "charlie", "warga"} <= admin_view


def test_community_roles_cannot_list_users_or_read_the_audit_log(client, token_for):
    headers = token_for("dina")
    assert client.get("/api/v1/users", headers=headers).status_code == 403
    assert client.get("/api/v1/audit", headers=headers).status_code == 403


def test_resident_without_grants_sees_no_areas(client, token_for):
    headers = token_for("warga")
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    assert client.get("/api/v1/areas", headers=headers).status_code == 403
    assert client.get(f"/api/v1/areas/{KEL_A}", headers=headers).status_code == 403


def test_admin_sees_the_whole_city(client, token_for):
    fc = client.get("/api/v1/areas?level=kelurahan", headers=token_for("admin")).json()
    assert len(fc["features"]) == 8
    assert client.get(f"/api/v1/areas/{KEL_A}", headers=token_for("admin")).json()["counts"]["rt"] == 12


def test_the_walk_reaches_websocket_routes(app):
    sockets = [r.path for r in all_routes(app) if not getattr(r, "methods", None) and hasattr(r, "dependant")]
    assert "/cameras/{code}/live.ws" in sockets
