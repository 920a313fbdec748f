"""Browser tests: a real server on a free local port, driven by Debian's chromium through Playwright.

What only a browser shows: the Leaflet map drawing its polygons, clicks on them, the real login
forms with their redirects and cookies, the language switch, and what the Content-Security-Policy
lets through (every page a test opens fails the test if the CSP blocked something on it).

The live site has its own database, always a SQLite file in a fresh temporary folder, even when
the rest of the suite runs on PostgreSQL (SISKAMLING_TEST_DATABASE_URL). The other tests wrap
each test in a transaction that is rolled back; a server in another thread cannot share such a
transaction, so the browser tests need data that is really committed, and committed data in the
shared test database would leak into every other test. A separate SQLite file keeps the two apart
and needs no server of its own.

The data is the demo (generated city, one account per role) loaded with the very functions
`siskamling demo` uses, so the accounts' passwords and two-factor keys are known here.

Chromium: /usr/bin/chromium (Debian's package; no Playwright browser download). Without it the
tests are skipped, unless SISKAMLING_REQUIRE_BROWSER=1 (set by .ci/run), in which case they fail.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest

from siskamling.core.config import Environment, Settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
SECRET_KEY = "browser-test-secret-key-long-enough-0123456789"
TIMEOUT_MS = 10_000
TILE_URL = "https://{s}.tiles.example/{z}/{x}/{y}.png"
TILE_ATTRIBUTION = "Example Tiles"


def pytest_collection_modifyitems(config, items):
    """Every test in this folder is a browser test (`-m "not browser"` leaves them out)."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.browser)


# --- the live site -----------------------------------------------------------------------------


@dataclass
class LiveSite:
    """A running server and the demo accounts in its database."""

    url: str
    settings: Settings
    engine: Any
    accounts: dict  # username -> siskamling.demo.service.DemoAccount
    _last_totp_step: dict = field(default_factory=dict)

    def account(self, username: str):
        return self.accounts[username]

    def totp_code(self, username: str) -> str:
        """A fresh code for ``username``: the app refuses a code of a time step already used, so wait
        for the next step when this user already logged in with the current one."""
        totp = pyotp.TOTP(self.accounts[username].totp_secret)
        step = int(time.time()) // totp.interval
        if self._last_totp_step.get(username) == step:
            time.sleep(totp.interval - time.time() % totp.interval + 0.2)
            step = int(time.time()) // totp.interval
        self._last_totp_step[username] = step
        return totp.at(step * totp.interval)


@contextmanager
def live_site(root: Path) -> Iterator[LiveSite]:
    """Migrate a new SQLite database under ``root``, load the demo, and serve it until the end."""
    from siskamling.core import migrate
    from siskamling.core.db import make_engine, make_session_factory, session_scope
    from siskamling.demo import service as demo

    root.mkdir(parents=True, exist_ok=True)
    settings = Settings(environment=Environment.test, database_url=f"sqlite:///{(root / 'browser.db').resolve()}",
                        media_dir=root / "media", secret_key=SECRET_KEY, session_cookie_secure=False, tile_url="")
    engine = make_engine(settings.database_url)
    try:
        migrate.upgrade(engine)
        with session_scope(make_session_factory(engine)) as session:
            demo.import_areas(session, root / "city", None, None)
            created = demo.create_accounts(session, settings)
            demo.create_report_desk(session, settings)
            demo.create_camera_requests(session, settings)
        with serve(settings, engine) as url:
            yield LiveSite(url=url, settings=settings, engine=engine, accounts={a.username: a for a in created})
    finally:
        engine.dispose()


@contextmanager
def serve(settings: Settings, engine) -> Iterator[str]:
    """uvicorn serving create_app(settings, engine) in a background thread; yields its base URL."""
    import uvicorn

    from siskamling.app import create_app

    # Bind the socket here and hand it to uvicorn: the port is ours before the thread starts.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_app(settings, engine), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="live-server", daemon=True)
    thread.start()
    try:
        _wait_until_up(url, thread)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _wait_until_up(url: str, thread: threading.Thread, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError("the live server thread stopped before it answered /healthz")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the live server did not answer {url}/healthz within {timeout} s")


@contextmanager
def chromium() -> Iterator:
    """Debian's chromium, headless, through Playwright's sync API."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


# --- fixtures ----------------------------------------------------------------------------------


def _require_chromium() -> None:
    if os.path.exists(CHROMIUM):
        return
    reason = f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium) to run the browser tests"
    if os.environ.get("SISKAMLING_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " (SISKAMLING_REQUIRE_BROWSER=1 makes this an error)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[LiveSite]:
    _require_chromium()
    with live_site(tmp_path_factory.mktemp("browser-site")) as site:
        yield site


@pytest.fixture(scope="session")
def chromium_browser(live_server):
    with chromium() as browser:
        yield browser


def new_page(browser, base_url: str, locale: str = "id-ID"):
    """A page in a fresh context (no cookies), relative URLs on ``base_url``, a Jakarta browser by
    default (Accept-Language id). ``page.js_errors`` collects uncaught script errors and
    ``page.csp_violations`` what the Content-Security-Policy blocked."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 800}, locale=locale)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.js_errors, page.csp_violations = [], []
    page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and "Content Security Policy" in msg.text
            and page.csp_violations.append(msg.text))
    return page


@pytest.fixture(scope="session")
def tiled_server(live_server) -> Iterator[LiveSite]:
    """The same database served a second time with a base map configured (``TILE_URL``, a host
    that does not exist: tests answer its requests with ``page.route``). For what the map and the
    Content-Security-Policy do with tiles; everything else runs without tiles."""
    settings = live_server.settings.model_copy(update={"tile_url": TILE_URL, "tile_attribution": TILE_ATTRIBUTION})
    with serve(settings, live_server.engine) as url:
        yield dataclasses.replace(live_server, url=url, settings=settings)


@pytest.fixture
def page_on(chromium_browser):
    """``page_on(site)``: a fresh page on ``site``; the test fails if any page it showed broke the CSP."""
    pages = []

    def _page_on(site: LiveSite):
        pages.append(new_page(chromium_browser, site.url))
        return pages[-1]

    yield _page_on
    try:
        for page in pages:
            assert page.csp_violations == [], "the Content-Security-Policy blocked something a page needs"
    finally:
        for page in pages:
            page.context.close()


@pytest.fixture
def browser_page(page_on, live_server):
    """A fresh page on the live site (no cookies), see page_on."""
    return page_on(live_server)


@pytest.fixture
def open_page(chromium_browser, live_server):
    """``open_page(**context_options)``: a page in a fresh context on the live site (Indonesian);
    ``page.errors`` collects uncaught script errors and every console error."""
    contexts = []

    def _open(**options):
        context = chromium_browser.new_context(base_url=live_server.url, locale="id-ID",
                                               **({"viewport": {"width": 1280, "height": 800}} | options))
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(f"pageerror: {exc}"))
        page.on("console", lambda msg: msg.type == "error" and page.errors.append(f"console: {msg.text}"))
        return page

    yield _open
    for context in contexts:
        context.close()


# --- actions shared by the tests (and make_screenshot.py) ------------------------------------------


def log_in_through_forms(page, site: LiveSite, username: str, next_url: str = "/") -> None:
    """Through the real forms: password, then the TOTP page for admins and operators (code computed
    from the demo account's key)."""
    account = site.account(username)
    page.goto(f"{site.url}/login?next={next_url}")
    page.fill("#login-form input[name=username]", account.username)
    page.fill("#login-form input[name=password]", account.password)
    with page.expect_navigation():
        page.click("#login-form button[type=submit]")
    if account.totp_secret:
        assert "/login/totp" in page.url, f"{username} should be asked for a code, is at {page.url}"
        page.fill("input[name=code]", site.totp_code(username))
        with page.expect_navigation():
            page.click("form[action='/login/totp'] button[type=submit]")
    assert "/login" not in page.url, f"{username} did not get past the login at {page.url}"


@pytest.fixture
def log_in(live_server):
    """``log_in(page, username, next_url="/", site=live_server)``: see log_in_through_forms."""

    def _log_in(page, username: str, next_url: str = "/", site: LiveSite | None = None) -> None:
        log_in_through_forms(page, site or live_server, username, next_url)

    return _log_in
