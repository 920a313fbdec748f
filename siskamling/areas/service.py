"""Areas: the tree, imports, point lookup and the scoped queries every page uses."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siskamling.areas import importer
from siskamling.areas.index import get_index
from siskamling.areas.models import Area, AreaRevision, Level
from siskamling.audit import service as audit
from siskamling.audit.events import AreasImported
from siskamling.audit.service import Actor
from siskamling.core.errors import Invalid, NotFound, Unavailable
from siskamling.core.i18n import N_
from siskamling.core.permissions import Permission
from siskamling.core.scope import Principal, in_scope, scoped
from siskamling.core.time import utcnow

# --- reading ---------------------------------------------------------------------------------


def get_by_code(*, db_session: Session, code: str) -> Area | None:
    return db_session.scalar(select(Area).where(Area.code == code))


def get_in_scope(*, db_session: Session, principal: Principal, code: str) -> Area:
    """One area the principal may see, or NotFound (the same answer as for a code that does not exist)."""
    area = get_by_code(db_session=db_session, code=code)
    if area is None or not in_scope(principal, Permission.area_view, area.path):
        raise NotFound("Area not found")
    return area


def root_paths(*, db_session: Session) -> list[str]:
    """The tops of the tree (one province for Jakarta)."""
    return list(db_session.scalars(select(Area.path).where(Area.parent_id.is_(None))))


def ancestors(*, db_session: Session, area: Area) -> list[Area]:
    """Root first, excluding the area itself."""
    segments = area.path.split("/")
    paths = ["/".join(segments[:i]) for i in range(1, len(segments))]
    if not paths:
        return []
    rows = db_session.scalars(select(Area).where(Area.path.in_(paths))).all()
    return sorted(rows, key=lambda a: len(a.path))


def list_children(*, db_session: Session, principal: Principal, parent: Area | None) -> list[Area]:
    """The children of ``parent`` in scope; without a parent, the principal's top areas."""
    if parent is None:
        stmt = select(Area).where(Area.path.in_(principal.paths_for(Permission.area_view)))
    else:
        stmt = scoped(select(Area).where(Area.parent_id == parent.id), principal, Permission.area_view, Area.path)
    return list(db_session.scalars(stmt.order_by(Area.code)))


def list_level(*, db_session: Session, principal: Principal, level: Level) -> list[Area]:
    stmt = scoped(select(Area).where(Area.level == level), principal, Permission.area_view, Area.path)
    return list(db_session.scalars(stmt.order_by(Area.code)))


def grant_choices(*, db_session: Session, principal: Principal, limit: int = 3000) -> list[Area]:
    """Areas a granter may pick in a form: down to RW (RTs are typed by code)."""
    stmt = scoped(select(Area).where(Area.level.in_([lv for lv in Level if lv != Level.rt])), principal,
                  Permission.grant_manage, Area.path)
    return list(db_session.scalars(stmt.order_by(Area.code).limit(limit)))


def child_counts(*, db_session: Session, area_ids: list[int]) -> dict[int, int]:
    if not area_ids:
        return {}
    rows = db_session.execute(
        select(Area.parent_id, func.count(Area.id)).where(Area.parent_id.in_(area_ids)).group_by(Area.parent_id)
    )
    return dict(rows.all())


def count_by_level(*, db_session: Session, path: str | None = None) -> dict[str, int]:
    stmt = select(Area.level, func.count(Area.id)).group_by(Area.level)
    if path:
        stmt = stmt.where(Area.path.startswith(path + "/", autoescape=True))
    return dict(db_session.execute(stmt).all())


def feature_collection(areas: list[Area], counts: dict[int, dict[str, int]]) -> str:
    """GeoJSON text for the area browser. Geometry text is passed through, not re-parsed:
    this is what keeps the 267-kelurahan map under its latency budget."""
    parts = []
    for a in areas:
        props = {
            "code": a.code,
            "name": a.name,
            "level": a.level,
            "attributes": a.attributes or {},
            "counts": counts.get(a.id, {}),
        }
        parts.append(
            '{"type":"Feature","id":%s,"properties":%s,"geometry":%s}'
            % (json.dumps(a.code), json.dumps(props, ensure_ascii=False), a.geometry or "null")
        )
    return '{"type":"FeatureCollection","features":[' + ",".join(parts) + "]}"


# --- point lookup ----------------------------------------------------------------------------


NOTES = {
    "near_edge": N_("outside every area polygon; resolved to the nearest area within the edge tolerance"),
    "outside": N_("outside the service area"),
}


@dataclass(frozen=True)
class Location:
    status: str  # inside | near_edge | outside
    lat: float
    lon: float
    distance_m: float | None = None
    levels: list[dict[str, str]] = field(default_factory=list)  # deepest first

    @property
    def area_code(self) -> str | None:
        return self.levels[0]["code"] if self.levels else None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "lat": self.lat, "lon": self.lon}
        if self.levels:
            out["area"] = self.levels[0]
            out["levels"] = self.levels
        if self.status in NOTES:
            out["note"] = NOTES[self.status]
        if self.status == "near_edge":
            out["distance_m"] = round(self.distance_m or 0, 1)
        return out


def validate_point(lat: float, lon: float) -> None:
    if not (np.isfinite(lat) and np.isfinite(lon)) or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise Invalid("Coordinates out of range: latitude must be within ±90 and longitude within ±180")


def _locate_one(db_session: Session, lat: float, lon: float, edge_tolerance_m: float):
    """(index, area id or -1 outside, distance to it in m) for one checked point."""
    validate_point(lat, lon)
    index = get_index(db_session)
    if not index.layers:
        raise Unavailable("No area boundaries have been imported yet")
    result = index.locate_many([lon], [lat], edge_tolerance_m)
    return index, int(result.area_id[0]), float(result.distance_m[0])


def area_at(db_session: Session, lat: float, lon: float, edge_tolerance_m: float = 300.0):
    """The deepest area at a point (an ``AreaInfo`` of the in-memory index, no query): what a
    report, a camera request or an incident is placed in. Outside the service area is an error."""
    index, area_id, _distance = _locate_one(db_session, lat, lon, edge_tolerance_m)
    if area_id < 0:
        raise Invalid("The position is outside the service area")
    return index.areas[area_id]


def locate(*, db_session: Session, lat: float, lon: float, edge_tolerance_m: float = 300.0) -> Location:
    index, area_id, distance = _locate_one(db_session, lat, lon, edge_tolerance_m)
    if area_id < 0:
        return Location("outside", lat, lon)
    levels = [{"level": a.level, "code": a.code, "name": a.name, "path": a.path} for a in index.chain(area_id)]
    return Location("inside" if distance == 0 else "near_edge", lat, lon, distance, levels)


def locate_many(*, db_session: Session, lats, lons, edge_tolerance_m: float = 300.0):
    lats, lons = np.atleast_1d(np.asarray(lats, dtype=float)), np.atleast_1d(np.asarray(lons, dtype=float))
    if lats.shape != lons.shape:
        raise Invalid("Latitudes and longitudes must come in pairs")
    bad = ~(np.isfinite(lats) & np.isfinite(lons) & (np.abs(lats) <= 90) & (np.abs(lons) <= 180))
    if bad.any():
        raise Invalid("%(n)s point(s) have coordinates out of range, the first at position %(i)s",
                      n=int(bad.sum()), i=int(np.flatnonzero(bad)[0]))
    return get_index(db_session).locate_many(lons, lats, edge_tolerance_m)


# --- writing ---------------------------------------------------------------------------------


@dataclass
class ImportReport:
    level: str
    features: int
    created: int
    updated: int
    ancestors_created: int
    merged: list[str]
    skipped: list[str]

    def summary(self) -> str:
        text = (
            f"{self.features} feature(s) read: {self.created} {self.level} created, {self.updated} updated"
            f", {self.ancestors_created} parent area(s) created"
        )
        if self.merged:
            text += f"; {len(self.merged)} feature(s) merged into an area of the same code"
        if self.skipped:
            text += f"; {len(self.skipped)} feature(s) without a code skipped"
        return text


def touch_revision(*, db_session: Session) -> None:
    row = db_session.get(AreaRevision, 1)
    if row is None:
        db_session.add(AreaRevision(id=1, token=uuid.uuid4().hex, changed_at=utcnow()))
    else:
        row.token = uuid.uuid4().hex
        row.changed_at = utcnow()
    db_session.flush()


def import_file(*, db_session: Session, path, opts: importer.ImportOptions, actor: Actor) -> ImportReport:
    """Parse, validate, then write everything in the caller's transaction. Any problem raises
    ``ImportFailed`` before a single row is written."""
    parsed = importer.parse(importer.read_features(path), opts)
    existing = {a.code: a for a in db_session.scalars(select(Area))}
    errors: list[str] = []
    created_ancestors = _create_ancestors(db_session, parsed, existing, opts.level, errors)
    for rec in parsed.records:
        if rec.parent_code and rec.parent_code not in existing:
            errors.append(f"{rec.label}: unknown parent code {rec.parent_code} (import that level first)")
    if errors:
        raise importer.ImportFailed(errors)
    created = updated = 0
    for rec in parsed.records:
        area = existing.get(rec.code)
        if area is None:
            parent = existing.get(rec.parent_code) if rec.parent_code else None
            area = Area(code=rec.code, level=rec.level, parent=parent, path=_path(parent, rec), attributes={})
            db_session.add(area)
            existing[rec.code] = area
            created += 1
        else:
            if area.level != rec.level:
                raise importer.ImportFailed([f"{rec.label}: {rec.code} already exists as a {area.level}"])
            updated += 1
        _apply(area, rec, str(path))
    touch_revision(db_session=db_session)
    report = ImportReport(opts.level, parsed.features, created, updated, created_ancestors, parsed.merged, parsed.skipped)
    audit.record(
        db_session=db_session,
        event=AreasImported(
            level=opts.level, source=str(path), created=created, updated=updated, features=parsed.features,
            notes=parsed.merged[:50] + parsed.skipped[:50],
        ),
        actor=actor,
    )
    return report


def _segment(level: Level, code: str) -> str:
    # Kemendagri codes for provinsi..kelurahan; RW and RT numbers below them.
    return code.rsplit(".", 1)[-1] if level in (Level.rw, Level.rt) else code


def _path(parent: Area | None, rec) -> str:
    segment = _segment(Level(rec.level), rec.code)
    return f"{parent.path}/{segment}" if parent else segment


def _create_ancestors(db_session, parsed, existing, level: Level, errors: list[str]) -> int:
    """Create missing parents above kelurahan from the codes (and names) the file gives.
    RW and RT files must find their parent already imported."""
    if level in (Level.rw, Level.rt):
        return 0
    created = 0
    for code, (anc_level, name) in sorted(parsed.ancestors.items(), key=lambda kv: len(kv[0])):
        area = existing.get(code)
        if area is not None:
            if name and area.name == area.code:
                area.name = name  # a placeholder name from an earlier import gets its real name
            continue
        parent = existing.get(importer.parent_code(code) or "")
        area = Area(code=code, level=anc_level, name=name or code, parent=parent, attributes={},
                    path=f"{parent.path}/{code}" if parent else code)
        db_session.add(area)
        existing[code] = area
        created += 1
    return created


def _apply(area: Area, rec, source: str) -> None:
    area.name = rec.name
    if rec.geometry is not None:
        geom = rec.geometry
        area.geometry = shapely.to_geojson(geom)
        area.min_lon, area.min_lat, area.max_lon, area.max_lat = geom.bounds
        point = geom.representative_point() if not geom.centroid.within(geom) else geom.centroid
        area.centroid_lon, area.centroid_lat = point.x, point.y
    attrs = dict(area.attributes or {})
    attrs.update(rec.attributes)
    if rec.parts > 1:
        attrs["parts"] = rec.parts
    area.attributes = attrs
    area.source = source[-300:]


def add_area(*, db_session: Session, level: Level, parent_code: str, number: int, name: str | None, actor: Actor) -> Area:
    """Create one RW or RT by number under its parent (RT polygons rarely exist)."""
    if level not in (Level.rw, Level.rt):
        raise Invalid("Only RW and RT can be added one by one; import a boundary file for other levels")
    parent = get_by_code(db_session=db_session, code=parent_code)
    if parent is None or parent.level != level.parent:
        raise Invalid("Unknown parent %(code)s: a %(level)s needs a %(parent)s", code=parent_code, level=level, parent=level.parent)
    if not 0 < number < 1000:
        raise Invalid("Number must be between 1 and 999")
    code = f"{parent_code}.{number:03d}"
    if get_by_code(db_session=db_session, code=code) is not None:
        raise Invalid("Area %(code)s already exists", code=code)
    area = Area(code=code, level=level, name=name or f"{level.upper()} {number:03d}", parent=parent,
                path=f"{parent.path}/{number:03d}", attributes={})
    db_session.add(area)
    touch_revision(db_session=db_session)
    audit.record(
        db_session=db_session,
        event=AreasImported(level=level, source="manual", created=1, updated=0, features=1, notes=[code]),
        actor=actor,
        area_path=area.path,
    )
    return area
