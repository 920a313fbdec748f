"""`siskamling demo` brings citizen reports to life: units, routing, an officer who heads the
kelurahan office, an app key, reports at several steps of the workflow, and camera requests
(scored, one backed by the demo resident, one under review) with a year of incidents."""

from __future__ import annotations

from sqlalchemy import func, select

from siskamling.core import migrate
from siskamling.core.config import Environment, Settings
from siskamling.core.db import make_engine, make_session_factory, session_scope
from siskamling.demo import service as demo
from siskamling.placement.models import CameraRequest, Incident
from siskamling.reports import channels
from siskamling.reports.models import Report


def test_demo_has_a_working_report_desk(tmp_path):
    settings = Settings(environment=Environment.test, database_url=f"sqlite:///{tmp_path / 'demo.db'}",
                        media_dir=tmp_path / "media", secret_key="demo-test-secret-key-0123456789abcdef",
                        session_cookie_secure=False)
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    with session_scope(make_session_factory(engine)) as db:
        demo.import_areas(db, tmp_path / "city", None, None)
        demo.create_accounts(db, settings)
        key, _secret = demo.create_report_desk(db, settings)
        demo.create_camera_requests(db, settings)
    with session_scope(make_session_factory(engine)) as db:
        requests = db.scalars(select(CameraRequest).order_by(CameraRequest.id)).all()
        assert [r.requester.username for r in requests] == ["ketua.rw", "ketua.rt", "fkdm", "operator"]
        assert requests[0].support_count == 1 and requests[2].status == "ditinjau"
        assert all(r.score_parts["parts"]["population"]["population"] for r in requests), "populations are set"
        assert db.scalar(select(func.count()).select_from(Incident)) == 120
        rows = db.scalars(select(Report)).all()
        assert {r.status for r in rows} >= {"menunggu", "koordinasi", "proses", "selesai"}
        assert {r.unit.code for r in rows if r.unit} >= {"dinas-sda", "satpol-pp"}
        done = next(r for r in rows if r.status == "selesai")
        assert done.first_action_at > done.created_at and done.resolved_at > done.first_action_at
        assert channels.resolve(db_session=db, key=key).name == "JAKI (demo)"
    engine.dispose()


def test_sqlite_statistics_are_gathered_for_the_query_planner(tmp_path):
    """A queue over millions of reports is planned well only with statistics, which SQLite does
    not gather by itself; the server's maintenance job does."""
    from sqlalchemy import text

    from siskamling.core.maintenance import optimize

    engine = make_engine(f"sqlite:///{tmp_path / 'stats.db'}")
    migrate.upgrade(engine)
    optimize(engine)
    with engine.connect() as conn:
        analysed = {row[0] for row in conn.execute(text("SELECT DISTINCT tbl FROM sqlite_stat1"))}
    assert "report_category" in analysed, "a table with rows has statistics"
    engine.dispose()
