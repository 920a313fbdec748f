"""Jakarta's real boundaries: the 267 kelurahan and the 2012 RW layer, and the landmarks.

The import runs once for the module inside one transaction that is rolled back at the end.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siskamling.areas import importer
from siskamling.areas import service as areas
from siskamling.areas.models import Area, Level
from siskamling.audit.service import Actor
from siskamling.demo.service import KELURAHAN_OPTIONS, RW_OPTIONS
from tests.helpers import shared_data


@pytest.fixture(scope="module")
def jakarta(engine):
    data = shared_data() / "boundaries"
    connection = engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    actor = Actor.system("tests")
    kel = areas.import_file(db_session=session, path=data / "dki_kelurahan_kemendagri.geojson", actor=actor,
                            opts=importer.ImportOptions(level=Level.kelurahan, **KELURAHAN_OPTIONS))
    rw = areas.import_file(db_session=session, path=data / "dki_rw_osm2012_inasafe.geojson", actor=actor,
                           opts=importer.ImportOptions(level=Level.rw, **RW_OPTIONS))
    try:
        yield session, kel, rw
    finally:
        session.close()
        outer.rollback()
        connection.close()


def count(session, level, prefix="31"):
    return session.scalar(select(func.count(Area.id)).where(Area.level == level, Area.code.startswith(prefix)))


def test_kelurahan_import_builds_the_tree(jakarta):
    session, kel, _ = jakarta
    assert (kel.features, kel.created) == (267, 267)
    assert (count(session, "provinsi"), count(session, "kota"), count(session, "kecamatan"),
            count(session, "kelurahan")) == (1, 6, 44, 267)
    gambir = areas.get_by_code(db_session=session, code="31.71.01.1001")
    assert gambir.name == "Gambir"
    assert gambir.path == "31/31.71/31.71.01/31.71.01.1001"
    assert gambir.parent.name == "Gambir" and gambir.parent.parent.name == "Kota Administrasi Jakarta Pusat"


def test_rw_import_accounts_for_every_feature(jakarta):
    session, _, rw = jakarta
    # 2,685 features: 59 repeat an RW number inside their kelurahan (merged as parts of that RW),
    # 36 carry no RW number (skipped, listed); the rest are one RW each.
    assert rw.features == 2685
    assert (len(rw.merged), len(rw.skipped)) == (59, 36)
    assert rw.created == 2685 - 59 - 36 == count(session, "rw")
    flood = session.scalar(select(func.count(Area.id)).where(Area.level == "rw", Area.attributes["floodprone"].as_boolean()))
    assert flood > 900


def test_reimport_updates_in_place(jakarta, tmp_path):
    session, _, _ = jakarta
    before = session.scalar(select(func.count(Area.id)))
    data = shared_data() / "boundaries"
    again = areas.import_file(db_session=session, path=data / "dki_kelurahan_kemendagri.geojson",
                              actor=Actor.system("tests"),
                              opts=importer.ImportOptions(level=Level.kelurahan, **KELURAHAN_OPTIONS))
    assert (again.created, again.updated) == (0, 267)
    assert session.scalar(select(func.count(Area.id))) == before


@pytest.mark.parametrize("name, lat, lon, kelurahan", [
    ("Monas", -6.175392, 106.827153, ("31.71.01.1001", "Gambir")),
    ("Bundaran HI", -6.194900, 106.823000, ("31.71.06.1001", "Menteng")),
    ("Kota Tua", -6.135200, 106.813300, (None, "Pinangsia")),
])
def test_landmarks(jakarta, name, lat, lon, kelurahan):
    session, _, _ = jakarta
    loc = areas.locate(db_session=session, lat=lat, lon=lon)
    assert loc.status == "inside", name
    kel = next(lv for lv in loc.levels if lv["level"] == "kelurahan")
    code, kel_name = kelurahan
    assert kel["name"] == kel_name
    if code:
        assert kel["code"] == code
    assert loc.levels[0]["level"] == "rw", "RW polygons exist here, so the answer is an RW"
    assert loc.levels[-1]["code"] == "31"


def test_open_sea_is_outside(jakarta):
    session, _, _ = jakarta
    assert areas.locate(db_session=session, lat=-5.95, lon=106.95).status == "outside"


def test_water_gates_and_river_posts_resolve_like_the_agency_says(jakarta):
    """DSDA's 26 stations, each tagged with its kelurahan (or none, upstream outside Jakarta).
    Pos Cipinang Hulu stands ~216 m outside the simplified edge: resolved to Cibubur and flagged;
    Bendung Katulampa (Bogor) and Pos Depok are outside the service area, not a guess."""
    import json

    session, _, _ = jakarta
    stations = json.loads((shared_data() / "infrastructure" / "dsda_water_level_stations.geojson").read_text())
    statuses = {}
    for feature in stations["features"]:
        lon, lat = feature["geometry"]["coordinates"][:2]
        loc = areas.locate(db_session=session, lat=lat, lon=lon)
        kel = next((lv["code"] for lv in loc.levels if lv["level"] == "kelurahan"), None)
        assert kel == feature["properties"]["kode_kel"], feature["properties"]["name"]
        statuses[feature["properties"]["name"]] = loc.status
    assert statuses["Pos Cipinang Hulu"] == "near_edge"
    assert statuses["Bendung Katulampa"] == statuses["Pos Depok"] == "outside"
