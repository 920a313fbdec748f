"""Point lookup: the deepest area, deterministic borders, the edge tolerance, and the endpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
from shapely.geometry import shape

from siskamling.areas import service as areas
from siskamling.areas.index import AreaIndex
from siskamling.areas.models import Area
from siskamling.core.errors import Invalid

M = 1 / 111_195  # degrees per metre (latitude)


def centroid(db, code):
    area = areas.get_by_code(db_session=db, code=code)
    return area.centroid_lat, area.centroid_lon


def test_point_in_rt_resolves_whole_chain(db):
    lat, lon = centroid(db, "99.01.01.1001.002.001")
    loc = areas.locate(db_session=db, lat=lat, lon=lon)
    assert loc.status == "inside"
    assert [lv["level"] for lv in loc.levels] == ["rt", "rw", "kelurahan", "kecamatan", "kota", "provinsi"]
    assert [lv["code"] for lv in loc.levels][:3] == ["99.01.01.1001.002.001", "99.01.01.1001.002", "99.01.01.1001"]


def shared_border_point(db, a_code, b_code):
    a = shape(json.loads(areas.get_by_code(db_session=db, code=a_code).geometry))
    b = shape(json.loads(areas.get_by_code(db_session=db, code=b_code).geometry))
    def coords(g):
        return {c for part in getattr(g, "geoms", [g]) for c in part.exterior.coords}

    # A vertex both polygons share lies exactly on the border, with no rounding in between.
    shared = sorted(coords(a) & coords(b))
    assert shared, "test needs two neighbouring areas"
    lon, lat = shared[len(shared) // 2]
    return lat, lon


def test_point_on_shared_border_goes_to_smaller_code(db):
    lat, lon = shared_border_point(db, "99.01.01.1001", "99.01.01.1002")
    loc = areas.locate(db_session=db, lat=lat, lon=lon)
    assert loc.levels[[lv["level"] for lv in loc.levels].index("kelurahan")]["code"] == "99.01.01.1001"


def test_border_answer_does_not_depend_on_load_order(db):
    lat, lon = shared_border_point(db, "99.01.01.1001", "99.01.01.1002")
    first = AreaIndex.build(db).locate_many([lon], [lat]).area_id[0]
    # Rebuild with the rows in the opposite order: the answer must not move.
    reversed_index = AreaIndex.build(db)
    for layer in reversed_index.layers:
        layer.ids, layer.geoms = layer.ids[::-1].copy(), layer.geoms[::-1].copy()
        layer.rank, layer.up = layer.rank[::-1].copy(), layer.up[::-1].copy()
        layer.by_rank = np.argsort(layer.rank)
        from shapely import STRtree
        layer.tree = STRtree(layer.geoms)
    assert reversed_index.locate_many([lon], [lat]).area_id[0] == first


def edge_point(db, metres):
    """A point ``metres`` north of the city's northernmost vertex."""
    top = max((a for a in db.query(Area).filter(Area.level == "kelurahan")), key=lambda a: a.max_lat)
    geom = shape(json.loads(top.geometry))
    lon, lat = max(geom.exterior.coords if geom.geom_type == "Polygon" else
                   [c for g in geom.geoms for c in g.exterior.coords], key=lambda c: c[1])
    return lat + metres * M, lon, top.code


def test_point_just_outside_the_edge_resolves_to_nearest_and_says_so(db):
    lat, lon, code = edge_point(db, 150)
    loc = areas.locate(db_session=db, lat=lat, lon=lon, edge_tolerance_m=300)
    assert loc.status == "near_edge"
    assert loc.area_code == code
    assert 140 < loc.distance_m < 160
    assert "nearest" in loc.as_dict()["note"]


def test_point_far_outside_is_outside_not_a_guess(db):
    lat, lon, _ = edge_point(db, 1000)
    loc = areas.locate(db_session=db, lat=lat, lon=lon, edge_tolerance_m=300)
    assert loc.status == "outside" and loc.levels == []
    assert loc.as_dict()["note"] == "outside the service area"


def test_batch_lookup_matches_single_lookups(db):
    rng = np.random.default_rng(7)
    kel = areas.get_by_code(db_session=db, code="99.02.02.1002")
    lats = rng.uniform(kel.min_lat - 0.01, kel.max_lat + 0.01, 200)
    lons = rng.uniform(kel.min_lon - 0.01, kel.max_lon + 0.01, 200)
    batch = areas.locate_many(db_session=db, lats=lats, lons=lons)
    index = AreaIndex.build(db)
    for i in range(0, 200, 17):
        single = areas.locate(db_session=db, lat=lats[i], lon=lons[i])
        expected = index.areas[batch.area_id[i]].code if batch.area_id[i] >= 0 else None
        assert single.area_code == expected


@pytest.mark.parametrize("lat, lon", [(91, 106.8), (-6.2, 181), (float("nan"), 106.8)])
def test_impossible_coordinates_are_refused(db, lat, lon):
    with pytest.raises(Invalid):
        areas.locate(db_session=db, lat=lat, lon=lon)


def test_locate_endpoint_is_public_and_validates(client, db):
    lat, lon = centroid(db, "99.01.01.1002.001.002")
    body = client.get("/api/v1/locate", params={"lat": lat, "lon": lon}).json()
    assert body["area"]["code"] == "99.01.01.1002.001.002"
    assert body["levels"][2]["name"] == "Mekarsari"
    bad = client.get("/api/v1/locate", params={"lat": "abc", "lon": lon})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid"


def test_index_follows_area_changes(db, tmp_path):
    from siskamling.areas import importer
    from siskamling.areas.models import Level
    from siskamling.audit.service import Actor
    from tests.helpers import kel_feature, square, write_geojson

    assert areas.locate(db_session=db, lat=-0.995, lon=100.005).status == "outside"
    path = write_geojson(tmp_path / "k.geojson", [kel_feature("98.71.01.1001", "Baru", square(100.0, -1.0))])
    areas.import_file(db_session=db, path=path, actor=Actor.system("t"), opts=importer.ImportOptions(
        level=Level.kelurahan, code_prop="kode_kel", name_prop="nama_kel"))
    assert areas.locate(db_session=db, lat=-0.995, lon=100.005).area_code == "98.71.01.1001"


def test_batch_lookup_refuses_impossible_points(db):
    with pytest.raises(Invalid, match="position 1"):
        areas.locate_many(db_session=db, lats=[-6.2, float("nan")], lons=[106.83, 106.83])
    with pytest.raises(Invalid, match="pairs"):
        areas.locate_many(db_session=db, lats=[-6.2, -6.3], lons=[106.83])
    assert len(areas.locate_many(db_session=db, lats=-6.2, lons=106.83).area_id) == 1


def test_lookups_from_many_threads_on_a_fresh_index_agree(db):
    """Prepared GEOS geometries build their internals lazily; the index warms them up so that
    concurrent first lookups (web threads) neither crash nor disagree."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(11)
    lats, lons = rng.uniform(-6.23, -6.17, 2000), rng.uniform(106.78, 106.88, 2000)
    for _ in range(5):
        index = AreaIndex.build(db)
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: index.locate_many(lons, lats).area_id, range(8)))
        assert all((r == results[0]).all() for r in results)
