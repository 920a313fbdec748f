"""In-memory point lookup over the area polygons (shapely STRtree), rebuilt when areas change.

Geometries are held in a local metric projection (equirectangular around the data's centre)
so distances and the edge tolerance are in metres. Lookups run layer by layer from kelurahan
down (kelurahan, RW, RT: whichever have polygons); a deeper layer only answers inside the
area chosen above it, so the answer is always one consistent branch of the tree.

Ties (a point on a shared border, or in the small overlaps of simplified polygons) go to the
area with the smallest code: deterministic, whatever the order the polygons were loaded in.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import shapely
from sqlalchemy import select
from sqlalchemy.orm import Session

from siskamling.areas.models import LEVELS, Area, AreaRevision, Level

METRES_PER_DEGREE = 6_371_008.8 * math.pi / 180
FIRST_LAYER = Level.kelurahan


@dataclass(frozen=True)
class Projection:
    lon0: float
    lat0: float

    @property
    def kx(self) -> float:
        return METRES_PER_DEGREE * math.cos(math.radians(self.lat0))

    def xy(self, lon, lat):
        return (np.asarray(lon, dtype=float) - self.lon0) * self.kx, (
            np.asarray(lat, dtype=float) - self.lat0
        ) * METRES_PER_DEGREE

    def project(self, geoms: np.ndarray) -> np.ndarray:
        kx = self.kx
        lon0, lat0 = self.lon0, self.lat0

        def fn(coords):
            out = np.empty_like(coords)
            out[:, 0] = (coords[:, 0] - lon0) * kx
            out[:, 1] = (coords[:, 1] - lat0) * METRES_PER_DEGREE
            return out

        return shapely.transform(geoms, fn)


class Layer:
    """The polygons of one level, with each polygon's ancestor in the layer above."""

    def __init__(self, level: Level, ids: np.ndarray, geoms: np.ndarray, codes: list[str]) -> None:
        self.level = level
        self.ids = ids
        self.tree = shapely.STRtree(geoms)
        self.geoms = geoms
        # Prepared once here; see warm_up for why the first tests are made here too.
        shapely.prepare(geoms)
        self.warm_up()
        # rank[i] = position of polygon i in code order: the tie-break.
        self.rank = np.argsort(np.argsort(np.array(codes, dtype=object)))
        self.by_rank = np.argsort(self.rank)
        self.up = np.full(len(ids), -1, dtype=np.int64)  # ancestor id in the previous layer

    def warm_up(self, distance: bool = False) -> None:
        """GEOS builds a prepared polygon's point locator (and, for distance tests, its facet
        index) lazily, on the first or second test, and that is not thread-safe
        (libgeos/geos#825). A few tests now, from inside each envelope (and from just outside
        it), build them before any request thread can race to."""
        if not len(self.geoms):
            return
        bounds = shapely.bounds(self.geoms)
        cx, cy = (bounds[:, 0] + bounds[:, 2]) / 2, (bounds[:, 1] + bounds[:, 3]) / 2
        outside = shapely.points(bounds[:, 0] - 1, bounds[:, 1] - 1)
        for _ in range(3):
            shapely.intersects_xy(self.geoms, cx, cy)
            if distance:
                shapely.dwithin(self.geoms, outside, 10.0)

    def pick(self, points: np.ndarray, allowed_up: np.ndarray | None, x: np.ndarray | None = None,
             y: np.ndarray | None = None) -> np.ndarray:
        """For each point, the index of the polygon containing it (-1 for none); ``x``/``y`` are
        the points' coordinates when the caller has them.

        Same answer as ``tree.query(points, predicate="intersects")``, done in two steps that
        cost about half as much: envelope candidates from the tree, the candidates a deeper
        layer may not use dropped, then the exact test against the prepared polygons."""
        if x is None or y is None:
            x, y = shapely.get_x(points), shapely.get_y(points)
        pts, geo = self.tree.query(points)
        if allowed_up is not None and len(pts):
            want = allowed_up[pts]
            keep = (want == -1) | (self.up[geo] == want)
            pts, geo = pts[keep], geo[keep]
        if len(pts):
            inside = shapely.intersects_xy(self.geoms[geo], x[pts], y[pts])
            pts, geo = pts[inside], geo[inside]
        best = np.full(len(points), len(self.ids), dtype=np.int64)
        np.minimum.at(best, pts, self.rank[geo])
        found = best < len(self.ids)
        out = np.full(len(points), -1, dtype=np.int64)
        out[found] = self.by_rank[best[found]]
        return out


@dataclass(frozen=True)
class AreaInfo:
    id: int
    code: str
    name: str
    level: str
    parent_id: int | None
    path: str


@dataclass(frozen=True)
class BatchResult:
    """Per point: the deepest area id (-1 outside), and the distance in metres to it
    (0 inside, > 0 when resolved to the nearest area within the edge tolerance)."""

    area_id: np.ndarray
    distance_m: np.ndarray


class AreaIndex:
    def __init__(self, areas: dict[int, AreaInfo], layers: list[Layer], projection: Projection) -> None:
        self.areas = areas
        self.layers = layers
        self.projection = projection
        if layers:
            layers[0].warm_up(distance=True)  # the nearest-area fallback tests distances there

    @classmethod
    def build(cls, db_session: Session) -> AreaIndex:
        rows = db_session.execute(
            select(Area.id, Area.code, Area.name, Area.level, Area.parent_id, Area.path)
        ).all()
        areas = {r.id: AreaInfo(*r) for r in rows}
        shaped = db_session.execute(
            select(Area.id, Area.code, Area.level, Area.geometry, Area.centroid_lon, Area.centroid_lat)
            .where(Area.geometry.is_not(None))
            .order_by(Area.code)
        ).all()
        levels = [lv for lv in LEVELS if any(r.level == lv for r in shaped)]
        first = [lv for lv in levels if lv.depth >= FIRST_LAYER.depth] or levels[-1:]
        if shaped:
            projection = Projection(
                float(np.mean([r.centroid_lon for r in shaped])), float(np.mean([r.centroid_lat for r in shaped]))
            )
        else:
            projection = Projection(106.8, -6.2)
        layers = []
        for level in first:
            sel = [r for r in shaped if r.level == level]
            geoms = projection.project(shapely.from_geojson(np.array([r.geometry for r in sel], dtype=object)))
            layer = Layer(level, np.array([r.id for r in sel], dtype=np.int64), geoms, [r.code for r in sel])
            if layers:
                layer.up = np.array([_ancestor_at(areas, r.id, layers[-1].level) for r in sel], dtype=np.int64)
            layers.append(layer)
        return cls(areas, layers, projection)

    def locate_many(self, lon, lat, edge_tolerance_m: float = 300.0) -> BatchResult:
        x, y = self.projection.xy(lon, lat)
        x, y = np.atleast_1d(x), np.atleast_1d(y)
        points = shapely.points(x, y)
        n = len(points)
        deepest = np.full(n, -1, dtype=np.int64)
        distance = np.zeros(n)
        if not self.layers:
            return BatchResult(deepest, np.full(n, np.nan))
        chosen_up: np.ndarray | None = None
        for layer in self.layers:
            idx = layer.pick(points, chosen_up, x, y)
            hit = idx >= 0
            ids = np.full(n, -1, dtype=np.int64)
            ids[hit] = layer.ids[idx[hit]]
            deepest[hit] = ids[hit]
            chosen_up = np.where(hit, ids, deepest)
        missing = np.flatnonzero(deepest < 0)
        if len(missing):
            self._nearest(points, x, y, missing, edge_tolerance_m, deepest, distance)
        distance[deepest < 0] = np.nan
        return BatchResult(deepest, distance)

    def _nearest(self, points, x, y, missing, tolerance, deepest, distance) -> None:
        top = self.layers[0]
        if tolerance <= 0:
            return
        # Most points left over are far from every polygon: keep only those within the tolerance
        # of some polygon (envelope test, then the prepared polygon) before the costly search.
        mx, my = x[missing], y[missing]
        src, geo = top.tree.query(shapely.box(mx - tolerance, my - tolerance, mx + tolerance, my + tolerance))
        near = shapely.dwithin(top.geoms[geo], points[missing[src]], tolerance)
        missing = missing[np.unique(src[near])]
        if not len(missing):
            return
        (src, geo), dist = top.tree.query_nearest(
            points[missing], max_distance=tolerance, return_distance=True, all_matches=True
        )
        if not len(src):
            return
        # Deterministic among equidistant candidates: smallest code.
        order = np.lexsort((top.rank[geo], dist, src))
        src, geo, dist = src[order], geo[order], dist[order]
        first = np.unique(src, return_index=True)[1]
        targets = missing[src[first]]
        deepest[targets] = top.ids[geo[first]]
        distance[targets] = dist[first]

    def chain(self, area_id: int) -> list[AreaInfo]:
        """The area and its ancestors, deepest first."""
        out = []
        current = self.areas.get(area_id)
        while current is not None:
            out.append(current)
            current = self.areas.get(current.parent_id) if current.parent_id else None
        return out


def _ancestor_at(areas: dict[int, AreaInfo], area_id: int, level: Level) -> int:
    current = areas.get(area_id)
    while current is not None and current.level != level:
        current = areas.get(current.parent_id) if current.parent_id else None
    return current.id if current else -1


_cache: dict[str, tuple[str, AreaIndex]] = {}
_lock = threading.Lock()


_REVISION = select(AreaRevision.token).where(AreaRevision.id == 1)  # built once: this runs on every locate


def get_index(db_session: Session) -> AreaIndex:
    """The index for the current area revision (one small query to check it)."""
    key = str(db_session.get_bind().engine.url)
    token = db_session.connection().scalar(_REVISION) or ""
    cached = _cache.get(key)
    if cached and cached[0] == token:
        return cached[1]
    with _lock:
        cached = _cache.get(key)
        if cached and cached[0] == token:
            return cached[1]
        index = AreaIndex.build(db_session)
        _cache[key] = (token, index)
        return index
