"""A small fictional city, generated here so the demo needs no outside data.

Province 99 (not a real Kemendagri province code), two kota, four kecamatan, eight kelurahan,
four RW per kelurahan and three RT per RW, all with polygons that nest exactly. The shapes are
Voronoi cells of seeded random points, so every run produces the same city.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import shapely
from shapely.geometry import MultiPoint, Point, Polygon, mapping

PROVINCE = ("99", "Provinsi Demo Siskamling")
KOTA = [("99.01", "Kota Demo Barat"), ("99.02", "Kota Demo Timur")]
KECAMATAN = ["Bahari", "Cendana", "Dahlia", "Flamboyan"]
KELURAHAN = ["Sukamaju", "Mekarsari", "Harapan Jaya", "Sumber Rejeki", "Cempaka Baru", "Kenanga", "Melati Indah",
             "Taman Sari"]
CENTER = (106.83, -6.20)
RW_PER_KELURAHAN = 4
RT_PER_RW = 3


def _outline() -> Polygon:
    lon, lat = CENTER
    pts = [(-0.040, -0.018), (-0.012, -0.024), (0.020, -0.021), (0.041, -0.015), (0.045, 0.004), (0.036, 0.021),
           (0.010, 0.025), (-0.018, 0.022), (-0.038, 0.015), (-0.044, -0.002)]
    return Polygon([(lon + dx, lat + dy) for dx, dy in pts])


def _polygonal(geom) -> shapely.Geometry:
    parts = [g for g in getattr(geom, "geoms", [geom]) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts)


def _split(parent, seeds: list[Point]) -> list:
    cells = shapely.voronoi_polygons(MultiPoint(seeds), extend_to=parent.envelope.buffer(0.01))
    by_seed = []
    for seed in seeds:
        cell = next(c for c in cells.geoms if c.contains(seed))
        by_seed.append(_polygonal(cell.intersection(parent)))
    return by_seed


def _seeds_inside(poly, n: int, rng: random.Random) -> list[Point]:
    minx, miny, maxx, maxy = poly.bounds
    inner = poly.buffer(-0.0006)
    out: list[Point] = []
    while len(out) < n:
        p = Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if inner.contains(p) and all(p.distance(q) > 0.0015 for q in out):
            out.append(p)
    return out


def _feature(props: dict, geom) -> dict:
    return {"type": "Feature", "properties": props, "geometry": mapping(shapely.set_precision(geom, 1e-7))}


def generate(folder: Path, seed: int = 20261127) -> dict[str, Path]:
    """Write kelurahan, RW and RT GeoJSON for the demo city; returns their paths."""
    rng = random.Random(seed)
    outline = _outline()
    minx, miny, maxx, maxy = outline.bounds
    # 4 columns (kecamatan) × 2 rows (kelurahan); columns 0-1 are Kota Barat, 2-3 Kota Timur.
    grid = [Point(minx + (maxx - minx) * (c + 0.5 + rng.uniform(-0.12, 0.12)) / 4,
                  miny + (maxy - miny) * (r + 0.5 + rng.uniform(-0.12, 0.12)) / 2)
            for c in range(4) for r in range(2)]
    kel_shapes = _split(outline, grid)
    kel, rw, rt = [], [], []
    for i, shape in enumerate(kel_shapes):
        col, row = divmod(i, 2)
        kota_code, kota_name = KOTA[col // 2]
        kec_code = f"{kota_code}.{col % 2 + 1:02d}"
        kel_code = f"{kec_code}.{1001 + row}"
        kel.append(_feature({
            "kode_kel": kel_code, "nama_kel": KELURAHAN[i], "kode_kec": kec_code, "nama_kec": KECAMATAN[col],
            "kode_kab": kota_code, "nama_kab": kota_name, "kode_prov": PROVINCE[0], "nama_prov": PROVINCE[1],
        }, shape))
        rw_shapes = _split(shape, _seeds_inside(shape, RW_PER_KELURAHAN, rng))
        for j, rw_shape in enumerate(rw_shapes, start=1):
            north = rw_shape.centroid.y > CENTER[1] + 0.008
            rw.append(_feature({"kode_kel": kel_code, "rw_no": j, "floodprone": north}, rw_shape))
            rt_shapes = _split(rw_shape, _seeds_inside(rw_shape, RT_PER_RW, rng))
            for k, rt_shape in enumerate(rt_shapes, start=1):
                rt.append(_feature({"kode_rw": f"{kel_code}.{j:03d}", "rt_no": k}, rt_shape))
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, feats in (("kelurahan", kel), ("rw", rw), ("rt", rt)):
        path = folder / f"demo_{name}.geojson"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
        paths[name] = path
    return paths
