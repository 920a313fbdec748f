"""Importing boundary files: the tree, re-import in place, and all-or-nothing refusal of bad files."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from siskamling.areas import importer
from siskamling.areas import service as areas
from siskamling.areas.models import Area, Level
from siskamling.audit.models import AuditEvent
from siskamling.audit.service import Actor
from tests.helpers import kel_feature, square, write_geojson

ACTOR = Actor.system("tests")
KEL_OPTS = dict(code_prop="kode_kel", name_prop="nama_kel", parent_prop="kode_kec")


def counts(db) -> tuple[int, int]:
    return db.scalar(select(func.count(Area.id))), db.scalar(select(func.count(AuditEvent.id)))


def run_import(db, path, level=Level.kelurahan, **opts):
    return areas.import_file(db_session=db, path=path, opts=importer.ImportOptions(level=level, **opts), actor=ACTOR)


def test_demo_city_tree_is_complete(db):
    by_level = dict(db.execute(select(Area.level, func.count()).group_by(Area.level)).all())
    assert by_level == {"provinsi": 1, "kota": 2, "kecamatan": 4, "kelurahan": 8, "rw": 32, "rt": 96}
    rt = areas.get_by_code(db_session=db, code="99.01.01.1001.002.003")
    assert rt.path == "99/99.01/99.01.01/99.01.01.1001/002/003"
    assert rt.parent.code == "99.01.01.1001.002"
    assert areas.get_by_code(db_session=db, code="99.01").name == "Kota Demo Barat"


def test_new_kelurahan_creates_its_parents_from_codes_and_names(db, tmp_path):
    path = write_geojson(tmp_path / "k.geojson", [kel_feature("98.71.01.1001", "Contoh", square(100.0, -1.0))])
    report = run_import(db, path, **KEL_OPTS)
    assert (report.created, report.ancestors_created) == (1, 3)
    kel = areas.get_by_code(db_session=db, code="98.71.01.1001")
    assert kel.path == "98/98.71/98.71.01/98.71.01.1001"
    assert [a.name for a in areas.ancestors(db_session=db, area=kel)] == [
        "Provinsi 98", "Kota 98.71", "Kecamatan 98.71.01"]


def test_reimport_updates_in_place(db, tmp_path):
    path = write_geojson(tmp_path / "k.geojson", [kel_feature("98.71.01.1001", "Contoh", square(100.0, -1.0))])
    run_import(db, path, **KEL_OPTS)
    first_id = areas.get_by_code(db_session=db, code="98.71.01.1001").id
    write_geojson(path, [kel_feature("98.71.01.1001", "Contoh Baru", square(100.5, -1.0))])
    report = run_import(db, path, **KEL_OPTS)
    assert (report.created, report.updated) == (0, 1)
    kel = areas.get_by_code(db_session=db, code="98.71.01.1001")
    assert (kel.id, kel.name, kel.min_lon) == (first_id, "Contoh Baru", 100.5)


def test_rt_without_polygon_is_created_under_its_rw(db, tmp_path):
    path = tmp_path / "rt.csv"
    path.write_text("kode_rw,rt_no\n99.01.01.1001.001,7\n")
    run_import(db, path, level=Level.rt, parent_prop="kode_rw", number_prop="rt_no")
    rt = areas.get_by_code(db_session=db, code="99.01.01.1001.001.007")
    assert rt.geometry is None and rt.name == "RT 007"
    assert rt.path.endswith("/001/007")


BAD_FILES = {
    "not json": (b"{not json", "not valid GeoJSON"),
    "not a collection": (b'{"type": "Feature"}', "not a GeoJSON FeatureCollection"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_unreadable_file_is_refused(db, tmp_path, name):
    content, message = BAD_FILES[name]
    path = tmp_path / "bad.geojson"
    path.write_bytes(content)
    before = counts(db)
    with pytest.raises(importer.ImportFailed, match=message):
        run_import(db, path, **KEL_OPTS)
    assert counts(db) == before


def bowtie() -> dict:
    return {"type": "Polygon", "coordinates": [[[100, -1], [100.01, -0.99], [100.01, -1], [100, -0.99], [100, -1]]]}


@pytest.mark.parametrize("case, features, message", [
    ("bad polygon", [kel_feature("98.71.01.1001", "Baik", square(100, -1)),
                     kel_feature("98.71.01.1002", "Rusak", bowtie())], r"feature #2 \(98.71.01.1002\): invalid polygon"),
    ("duplicate", [kel_feature("98.71.01.1001", "Satu", square(100, -1)),
                   kel_feature("98.71.01.1001", "Dua", square(100.1, -1))], r"feature #2 .*duplicate code 98.71.01.1001"),
    ("point geometry", [kel_feature("98.71.01.1001", "Titik", {"type": "Point", "coordinates": [100, -1]})],
     "is a Point"),
    ("bad code", [kel_feature("98.71.01.10", "Pendek", square(100, -1))], "not a Kemendagri kelurahan code"),
    ("lat/lon swapped", [kel_feature("98.71.01.1001", "Terbalik", square(-6.2, 106.8))], "not longitude/latitude"),
    ("no geometry", [kel_feature("98.71.01.1001", "Kosong", None)], "has no geometry"),
])
def test_bad_feature_refuses_whole_file(db, tmp_path, case, features, message):
    path = write_geojson(tmp_path / "bad.geojson", features)
    before = counts(db)
    with pytest.raises(importer.ImportFailed, match=message) as exc:
        run_import(db, path, **KEL_OPTS)
    assert "nothing was imported" in str(exc.value)
    assert counts(db) == before
    assert areas.get_by_code(db_session=db, code="98.71.01.1001") is None


def test_unknown_parent_code_refuses_rw_file(db, tmp_path):
    features = [
        {"type": "Feature", "geometry": square(106.83, -6.2, 0.001), "properties": {"kode_kel": "99.01.01.1001", "rw_no": 9}},
        {"type": "Feature", "geometry": square(106.84, -6.2, 0.001), "properties": {"kode_kel": "99.05.01.1001", "rw_no": 1}},
    ]
    path = write_geojson(tmp_path / "rw.geojson", features)
    before = counts(db)
    with pytest.raises(importer.ImportFailed, match=r"feature #2 \(99.05.01.1001.001\): unknown parent code 99.05.01.1001"):
        run_import(db, path, level=Level.rw, parent_prop="kode_kel", number_prop="rw_no")
    assert counts(db) == before


def test_duplicates_merge_into_one_area_when_asked(db, tmp_path):
    features = [
        {"type": "Feature", "geometry": square(106.80, -6.21, 0.001), "properties": {"kode_kel": "99.01.01.1001", "rw": 9, "fp": False}},
        {"type": "Feature", "geometry": square(106.81, -6.21, 0.001), "properties": {"kode_kel": "99.01.01.1001", "rw": 9, "fp": True}},
        {"type": "Feature", "geometry": square(106.82, -6.21, 0.001), "properties": {"kode_kel": "99.01.01.1001", "rw": None}},
    ]
    path = write_geojson(tmp_path / "rw.geojson", features)
    report = run_import(db, path, level=Level.rw, parent_prop="kode_kel", number_prop="rw", attr_props=["fp"],
                        on_duplicate=importer.OnDuplicate.merge, on_missing_code=importer.OnMissingCode.skip)
    assert (report.features, report.created, len(report.merged), len(report.skipped)) == (3, 1, 1, 1)
    rw = areas.get_by_code(db_session=db, code="99.01.01.1001.009")
    assert rw.attributes == {"fp": True, "parts": 2}
    assert '"MultiPolygon"' in rw.geometry


def test_import_is_audited(db, tmp_path):
    path = write_geojson(tmp_path / "k.geojson", [kel_feature("98.71.01.1001", "Contoh", square(100.0, -1.0))])
    run_import(db, path, **KEL_OPTS)
    event = db.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
    assert event.action == "areas.imported"
    assert event.data["created"] == 1 and event.data["source"].endswith("k.geojson")


def test_names_from_a_reference_list_name_the_parents(db, tmp_path):
    names = tmp_path / "names.csv"
    names.write_text("kode,nama,level\n98,Provinsi Contoh,provinsi\n")
    feature = kel_feature("98.71.01.1001", "Contoh", square(100.0, -1.0))
    del feature["properties"]["nama_prov"]
    path = write_geojson(tmp_path / "k.geojson", [feature])
    run_import(db, path, names=importer.read_names(names), **KEL_OPTS)
    assert areas.get_by_code(db_session=db, code="98").name == "Provinsi Contoh"
