"""Browser tests: a real server on a free local port, driven by Debian's chromium through Playwright.

What only a browser shows: the Leaflet map drawing its polygons, clicks on them, the real login
forms with their redirects and cookies, the language switch.

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

import os
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyotp
import pytest

from siskamling.core.config import Environment, Settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
SECRET_KEY = "browser-test-secret-key-long-enough-0123456789"
TIMEOUT_MS = 10_000


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)


# --- the live site -----------------------------------------------------------------------------


@dataclass
class LiveSite:
    url: str
    settings: Settings
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
    import uvicorn

    from siskamling.app import create_app
    from siskamling.core import migrate
    from siskamling.core.db import make_engine, make_session_factory, session_scope
    from siskamling.demo import service as demo

    root.mkdir(parents=True, exist_ok=True)
    settings = Settings(environment=Environment.test, database_url=f"sqlite:///{(root / 'browser.db').resolve()}",
                        media_dir=root / "media", secret_key=SECRET_KEY, session_cookie_secure=False, tile_url="")
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    with session_scope(make_session_factory(engine)) as session:
        demo.import_areas(session, root / "city", None, None)
        created = demo.create_accounts(session, settings)

    # Bind the socket here and hand it to uvicorn: the port is ours before the thread starts.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings, engine), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="live-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, thread)
        yield LiveSite(url=url, settings=settings, accounts={a.username: a for a in created})
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        engine.dispose()


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


@pytest.fixture
def browser_page(chromium_browser, live_server):
    """A fresh page in a new context (no cookies) per test, with relative URLs on the live site."""
    context = chromium_browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800},
                                           locale="id-ID")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    try:
        yield page
    finally:
        context.close()


# --- actions shared by the tests (and make_screenshot.py) ------------------------------------------


def log_in_through_forms(page, site: LiveSite, username: str, next_url: str = "/") -> None:
    """Through the real forms: password, then the TOTP page for admins and operators (code computed
    from the demo account's key)."""
    account = site.account(username)
    page.goto(f"/login?next={next_url}")
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
    """``log_in(page, username, next_url="/")``: see log_in_through_forms."""

    def _log_in(page, username: str, next_url: str = "/") -> None:
        log_in_through_forms(page, live_server, username, next_url)

    return _log_in
