"""Test fixtures: a real database (SQLite file, or PostgreSQL when SISKAMLING_TEST_DATABASE_URL
is set), migrated once per run with the project's own Alembic migrations, loaded once with the
generated demo city and the standard cast, and wrapped in a transaction per test that is rolled
back at the end.

The cast (after healthchecks' habit): in kelurahan A (Sukamaju, 99.01.01.1001) Alice is the
operator and Bob the ketua RT; in kelurahan B (Mekarsari, 99.01.01.1002) Charlie is the operator,
with a ketua RT, a ketua RW and a satpam of his own. Charlie's people must see nothing of A.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from siskamling.accounts import service as accounts
from siskamling.app import create_app
from siskamling.areas import importer
from siskamling.areas import service as areas
from siskamling.areas.models import Level
from siskamling.audit.service import Actor
from siskamling.core import migrate, security
from siskamling.core.config import Environment, Settings
from siskamling.core.db import make_engine, make_session_factory
from siskamling.core.deps import CSRF_COOKIE, SESSION_COOKIE, get_db
from siskamling.core.security import csrf_token
from siskamling.demo.city import generate

pytest_plugins = ["tests.rtsp.fixtures"]
HASH_PASSWORD = security.hash_password

PASSWORD = "correct horse battery staple"
SECRET_KEY = "test-secret-key-that-is-long-enough-0123456789"
KEL_A, KEL_B = "99.01.01.1001", "99.01.01.1002"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TOTP_SECRETS = {"admin": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "alice": "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU",
                "charlie": "MFRGGZDFMZTWQ2LKMFRGGZDFMZTWQ2LK"}


def database_url(tmp_root: Path) -> str:
    return os.environ.get("SISKAMLING_TEST_DATABASE_URL") or f"sqlite:///{tmp_root / 'test.db'}"


@pytest.fixture(scope="session")
def settings(tmp_path_factory) -> Settings:
    root = tmp_path_factory.mktemp("siskamling")
    return Settings(environment=Environment.test, database_url=database_url(root), media_dir=root / "media",
                    secret_key=SECRET_KEY, session_cookie_secure=False, tile_url="",
                    run_scheduler=False)  # tests run the periodic jobs themselves


@pytest.fixture(scope="session")
def engine(settings, tmp_path_factory):
    engine = make_engine(settings.database_url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    migrate.upgrade(engine)
    with make_session_factory(engine)() as session:
        load_base(session, settings, tmp_path_factory.mktemp("city"))
        session.commit()
    yield engine
    engine.dispose()


def load_base(session: Session, settings: Settings, folder: Path) -> None:
    paths = generate(folder)
    actor = Actor.system("tests")
    opts = [
        (paths["kelurahan"], importer.ImportOptions(level=Level.kelurahan, code_prop="kode_kel", name_prop="nama_kel")),
        (paths["rw"], importer.ImportOptions(level=Level.rw, parent_prop="kode_kel", number_prop="rw_no",
                                             attr_props=["floodprone"])),
        (paths["rt"], importer.ImportOptions(level=Level.rt, parent_prop="kode_rw", number_prop="rt_no")),
    ]
    for path, opt in opts:
        areas.import_file(db_session=session, path=path, opts=opt, actor=actor)
    cast = [
        ("admin", "admin", "99"),
        ("alice", "operator", KEL_A),
        ("bob", "ketua_rt", KEL_A + ".001.001"),
        ("charlie", "operator", KEL_B),
        ("dina", "ketua_rt", KEL_B + ".001.001"),
        ("eko", "ketua_rw", KEL_B + ".002"),
        ("fajar", "satpam", KEL_B + ".003"),
        ("gita", "fkdm", KEL_B),
        ("warga", None, None),
    ]
    for username, role, area_code in cast:
        user = accounts.create_user(db_session=session, username=username, full_name=username.title(),
                                    password=PASSWORD, actor=actor)
        if role:
            accounts.add_grant(db_session=session, username=username, role=role, area_code=area_code, actor=actor)
        if username in TOTP_SECRETS:
            accounts.install_totp_secret(settings=settings, user=user, secret=TOTP_SECRETS[username])


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Each test starts without the rows other tests' (rolled back) transactions left in the
    process's short-lived caches (core.cache)."""
    from siskamling.core import cache

    cache.clear_all()
    yield


@pytest.fixture
def db(engine) -> Session:
    connection = engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def app(settings, engine, db):
    application = create_app(settings, engine)

    def test_db():
        # Same contract as get_db: commit at the end (here: release the savepoint), roll back on error.
        try:
            yield db
            db.commit()
        except BaseException:
            db.rollback()
            raise

    application.dependency_overrides[get_db] = test_db
    # Code that opens sessions of its own (the live WebSocket) works inside the test's transaction too.
    application.state.session_factory = sessionmaker(bind=db.connection(), join_transaction_mode="create_savepoint",
                                                     expire_on_commit=False)
    return application


@dataclass
class Browser:
    """A TestClient with the site's CSRF cookie, as a browser that loaded a page would have."""

    client: TestClient
    csrf: str

    def get(self, url, **kw):
        return self.client.get(url, **kw)

    def post(self, url, data=None, **kw):
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf)
        return self.client.post(url, data=data, follow_redirects=kw.pop("follow_redirects", False), **kw)


@pytest.fixture
def client(app) -> TestClient:
    with TestClient(app, base_url="http://testserver") as c:
        yield c


def make_browser(app) -> Browser:
    c = TestClient(app, base_url="http://testserver")
    c.cookies.set(CSRF_COOKIE, "test-csrf-id")
    return Browser(c, csrf_token(SECRET_KEY, "test-csrf-id"))


@pytest.fixture
def browser(app) -> Browser:
    return make_browser(app)


def totp_now(username: str) -> str:
    return pyotp.TOTP(TOTP_SECRETS[username]).now()


@pytest.fixture
def login_as(app, db, settings):
    """A browser logged in as ``username`` through a real session row (second factor passed)."""

    def _login(username: str) -> Browser:
        b = make_browser(app)
        user = accounts.get_user(db_session=db, username=username)
        token = accounts.start_session(db_session=db, settings=settings, user=user, mfa_passed=True, ip="127.0.0.1",
                                       user_agent="pytest")
        db.commit()  # as its own request would: a later failing request must not roll it back
        b.client.cookies.set(SESSION_COOKIE, token)
        return b

    return _login


@pytest.fixture
def token_for(db):
    """A bearer-token header for ``username``'s API calls."""

    def _token(username: str) -> dict[str, str]:
        user = accounts.get_user(db_session=db, username=username)
        _row, raw = accounts.create_token(db_session=db, user=user, name="pytest", actor=Actor.system("tests"))
        db.commit()
        return {"Authorization": f"Bearer {raw}"}

    return _token


@dataclass
class ReportDesk:
    """Units, routing and officers for report tests: in kelurahan A, the kelurahan office (head:
    Alice's colleague "kasi", officer "petugas") gets everything but floods, which go to Dinas SDA
    (officer "sda"); Satpol PP (officer "satpol") takes public-order reports city-wide."""

    kelurahan: object
    sda: object
    satpol: object
    head: object
    officer: object
    sda_officer: object
    client_key: str
    client: object


@functools.cache
def _hash_once(password: str) -> str:
    return HASH_PASSWORD(password)


@pytest.fixture
def desk(db, settings, monkeypatch) -> ReportDesk:
    from siskamling.areas.models import Area
    from siskamling.reports import catalogue, channels

    # Argon2 is slow on purpose: the desk's four officers share one hash, made once per run.
    monkeypatch.setattr(security, "hash_password", _hash_once)
    actor = Actor.system("tests")
    kel = db.query(Area).filter_by(code=KEL_A).one()
    kel_unit = catalogue.save_unit(db_session=db, code="kel-sukamaju", name="Kantor Kelurahan Sukamaju",
                                   kind="kelurahan", area_path=kel.path, actor=actor)
    sda = catalogue.save_unit(db_session=db, code="dinas-sda", name="Dinas Sumber Daya Air", kind="dinas",
                              area_path=None, actor=actor)
    satpol = catalogue.save_unit(db_session=db, code="satpol-pp", name="Satpol PP", kind="satpol", area_path=None,
                                 actor=actor)
    catalogue.set_rule(db_session=db, category_row=None, area_path=kel.path, unit_row=kel_unit, actor=actor)
    catalogue.set_rule(db_session=db, category_row=catalogue.category(db_session=db, code="banjir"),
                       area_path=kel.path, unit_row=sda, actor=actor)
    catalogue.set_rule(db_session=db, category_row=catalogue.category(db_session=db, code="ketertiban"),
                       area_path=kel.path.split("/")[0], unit_row=satpol, actor=actor)
    people = {}
    for username, unit, head in (("kasi", kel_unit, True), ("petugas", kel_unit, False), ("sda", sda, False),
                                 ("satpol", satpol, False)):
        user = accounts.create_user(db_session=db, username=username, full_name=username.title(), password=PASSWORD,
                                    actor=actor)
        accounts.add_grant(db_session=db, username=username, role="officer", area_code=KEL_A, actor=actor)
        catalogue.add_member(db_session=db, unit_row=unit, user_id=user.id, is_head=head, actor=actor)
        people[username] = user
    client, key, _secret = channels.create_client(db_session=db, settings=settings, name="JAKI",
                                                  webhook_url="http://127.0.0.1:9/hook", actor=actor)
    db.commit()
    return ReportDesk(kel_unit, sda, satpol, people["kasi"], people["petugas"], people["sda"], key, client)
