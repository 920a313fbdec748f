"""What a user sees in a real browser: the map, the login forms, the language switch, the 404 wall.

The demo data (see conftest): kelurahan Sukamaju (the first by code) with four RWs of three RTs
each is watched by ``operator``, ``fkdm``, ``ketua.rw``/``satpam`` (RW 001) and ``ketua.rt``
(RT 001 of RW 001); ``operator2`` watches the next kelurahan, which the others must not see.
"""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser


def wait_for_map(page) -> str:
    """Wait until areas.js has fetched and drawn (or found nothing to draw); return the state."""
    page.wait_for_selector("#map[data-state]", state="attached")
    return page.get_attribute("#map", "data-state")


def point_inside(page, selector: str) -> dict:
    """A viewport point where the element itself is the topmost thing, so a mouse click there hits it
    (the centre of a polygon's bounding box can lie in a neighbour)."""
    point = page.eval_on_selector(selector, """el => {
        const r = el.getBoundingClientRect();
        const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
        let best = null;
        for (let i = 1; i < 20; i++) for (let j = 1; j < 20; j++) {
            const x = r.left + r.width * i / 20, y = r.top + r.height * j / 20;
            if (document.elementFromPoint(x, y) !== el) continue;
            const d = (x - cx) ** 2 + (y - cy) ** 2;
            if (!best || d < best.d) best = {x, y, d};
        }
        return best;
    }""")
    assert point, f"no visible, clickable point on {selector}"
    return point


def test_ketua_rt_sees_only_their_own_rt(browser_page, live_server, log_in):
    page = browser_page
    rt = live_server.account("ketua.rt").area_code

    log_in(page, "ketua.rt", next_url="/areas")

    # One area in scope: /areas goes straight to it.
    assert page.url == f"{live_server.url}/areas/{rt}"
    assert page.inner_text("#area-name") == "RT 001"
    assert page.inner_text("main code") == rt
    # An RT has no sub-areas: the map has nothing to draw and says so, without a script error.
    assert wait_for_map(page) == "empty"
    assert page.get_attribute("#map", "data-features") == "0"
    assert page.locator("path.area-shape").count() == 0
    assert page.locator("#children tbody tr[data-code]").count() == 0
    # The trail names the RT's ancestors but links none of them: they are outside the RT's scope.
    trail = page.locator("nav.trail")
    assert "Sukamaju" in trail.inner_text()
    assert [a.get_attribute("href") for a in trail.locator("a").all()] == ["/areas"]
    # The start page lists this one area and nothing else.
    page.goto("/")
    area_links = {a.get_attribute("href") for a in page.locator("main a[href^='/areas/']").all()}
    assert area_links == {f"/areas/{rt}"}
    assert page.locator("main ul:last-of-type li").count() == 1
    assert page.js_errors == []


def test_fkdm_map_draws_the_rws_and_a_click_opens_one(browser_page, live_server, log_in):
    page = browser_page
    kelurahan = live_server.account("fkdm").area_code

    log_in(page, "fkdm", next_url="/areas")

    assert page.url == f"{live_server.url}/areas/{kelurahan}"
    assert page.inner_text("#area-name") == "Sukamaju"
    assert wait_for_map(page) == "ready"
    shapes = page.locator("#map path.area-shape")
    listed = page.eval_on_selector_all("#children tbody tr[data-code]", "rows => rows.map(r => r.dataset.code)")
    drawn = page.eval_on_selector_all("#map path.area-shape", "ps => ps.map(p => p.dataset.code)")
    assert shapes.count() > 0
    assert page.get_attribute("#map", "data-features") == str(shapes.count())
    # The map and the table agree: the kelurahan's RWs, nothing of other kelurahan.
    assert sorted(drawn) == sorted(listed) == [f"{kelurahan}.{n:03d}" for n in range(1, 5)]
    # Every shape is really visible in the map's viewport (fitted to the kelurahan).
    map_box = page.locator("#map").bounding_box()
    for i in range(shapes.count()):
        box = shapes.nth(i).bounding_box()
        assert box["width"] > 5 and box["height"] > 5
        assert map_box["x"] <= box["x"] and box["x"] + box["width"] <= map_box["x"] + map_box["width"] + 1
        assert map_box["y"] <= box["y"] and box["y"] + box["height"] <= map_box["y"] + map_box["height"] + 1

    # Hover shows the RW's name; a click on the polygon opens the RW.
    target = f"{kelurahan}.003"
    selector = f"#map path.area-shape[data-code='{target}']"
    rw_name = page.inner_text(f"#children tr[data-code='{target}'] td a")
    point = point_inside(page, selector)
    page.mouse.move(point["x"], point["y"])
    tooltip = page.locator(".leaflet-tooltip")
    tooltip.wait_for()
    assert f"{rw_name} ({target})" in tooltip.inner_text()
    with page.expect_navigation():
        page.mouse.click(point["x"], point["y"])
    assert page.url == f"{live_server.url}/areas/{target}"
    assert page.inner_text("#area-name") == rw_name == "RW 003"
    # The RW page draws the RW's RTs in turn.
    assert wait_for_map(page) == "ready"
    assert page.locator("#map path.area-shape").count() == 3
    assert page.js_errors == []


def test_language_switch_on_the_login_page(browser_page):
    page = browser_page  # a browser set to Indonesian (id-ID), as most in Jakarta are

    page.goto("/login")
    assert page.get_attribute("html", "lang") == "id"
    assert page.get_attribute("button[name=lang][value=id]", "aria-current") == "true"
    assert page.inner_text("main h1") == "Masuk"
    assert page.inner_text("#login-form button[type=submit]") == "Masuk"
    assert page.title().startswith("Masuk")

    with page.expect_navigation():
        page.click("button[name=lang][value=en]")

    assert re.fullmatch(r".*/login", page.url), page.url  # back on the same page
    assert page.get_attribute("html", "lang") == "en"
    assert page.get_attribute("button[name=lang][value=en]", "aria-current") == "true"
    assert page.get_attribute("button[name=lang][value=id]", "aria-current") is None
    assert page.inner_text("main h1") == "Log in"
    assert page.inner_text("#login-form button[type=submit]") == "Log in"
    assert page.title().startswith("Log in")
    assert page.inner_text("#login-form label:first-of-type").strip() == "Username"

    # The choice sticks (cookie) on the next page, and switching back works.
    page.goto("/login?next=/areas")
    assert page.get_attribute("html", "lang") == "en"
    with page.expect_navigation():
        page.click("button[name=lang][value=id]")
    assert page.get_attribute("html", "lang") == "id"
    assert page.inner_text("main h1") == "Masuk"


def test_admin_logs_in_with_totp_and_finds_the_login_in_the_audit_log(browser_page, live_server):
    page = browser_page
    admin = live_server.account("admin")

    page.goto("/audit")  # not logged in: sent to the login form, and back here afterwards
    assert "/login?next=/audit" in page.url
    page.fill("#login-form input[name=username]", admin.username)
    page.fill("#login-form input[name=password]", admin.password)
    with page.expect_navigation():
        page.click("#login-form button[type=submit]")
    # Password alone is not enough for an admin: the two-factor page, and nothing else, is reachable.
    assert "/login/totp" in page.url
    page.goto("/")
    assert "/login/totp" in page.url
    page.fill("input[name=code]", live_server.totp_code("admin"))
    with page.expect_navigation():
        page.click("form[action='/login/totp'] button[type=submit]")

    assert page.url == f"{live_server.url}/"
    assert "Admin Diskominfotik" in page.inner_text("main h1")
    assert page.inner_text(".topbar .who") == "Admin Diskominfotik"

    with page.expect_navigation():
        page.click(".topbar nav a[href='/audit']")
    assert page.url == f"{live_server.url}/audit"
    rows = page.locator("#audit tbody tr")
    logins = [r for r in rows.all() if r.locator("td").nth(2).inner_text() == "auth.login"
              and r.locator("td").nth(3).inner_text() == "admin"]
    assert logins, "admin's login is not in the audit log"
    assert '"mfa": true' in logins[0].locator("td").nth(5).inner_text()


@pytest.mark.parametrize("username", ["ketua.rt", "satpam"])
def test_another_kelurahan_is_a_404(browser_page, live_server, log_in, username):
    page = browser_page
    other = live_server.account("operator2").area_code
    log_in(page, username)

    for url in (f"/areas/{other}", f"/areas/{other}.001"):
        response = page.goto(url)
        assert response.status == 404, url
        assert page.inner_text("main h1") == "404"
        text = page.inner_text("body")
        assert "Mekarsari" not in text and other not in text
        assert page.locator("#map").count() == 0
    # Its map data is refused too (what areas.js would fetch).
    api = page.request.get(f"/api/v1/areas/{other}/children")
    assert api.status == 404
    assert "Mekarsari" not in api.text()


# A 1x1 PNG, served for every tile.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                    "0000000d49444154789c63f8cfc0f01f0005000201a5f2ce3e0000000049454e44ae426082")


def test_the_base_map_tiles_load_under_the_content_security_policy(page_on, tiled_server, log_in):
    page = page_on(tiled_server)
    tile_requests = []

    def tile(route):
        tile_requests.append(route.request.url)
        route.fulfill(status=200, content_type="image/png", body=PNG)

    page.route(re.compile(r"^https://[a-z]\.tiles\.example/.*"), tile)
    log_in(page, "fkdm", next_url="/areas", site=tiled_server)

    assert wait_for_map(page) == "ready"
    page.wait_for_selector("#map img.leaflet-tile-loaded", state="attached")
    assert tile_requests and all(re.fullmatch(r"https://[abc]\.tiles\.example/\d+/\d+/\d+\.png", u)
                                 for u in tile_requests)
    assert "Example Tiles" in page.inner_text("#map .leaflet-control-attribution")
    assert page.locator("#map path.area-shape").count() == 4
    # (page_on fails the test if the CSP refused a tile.)
