"""What the planner plans against: demand points (citizen reports, incidents from other
agencies' logs, flood-prone RWs), each weighted, and the candidate sites it chooses from.

Incident logs come in two shapes: with coordinates (``lat``/``lon`` columns), or, like the
Jakarta fire brigade's log, with the kelurahan code and RW number only. The latter are placed at
their RW's centre (or their kelurahan's, where the RW has no polygon); ``placed_by`` records it.
Every row is checked first; a bad row is reported by its line number and nothing is kept.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from scipy.spatial import cKDTree
from sqlalchemy import insert, select, true
from sqlalchemy.orm import Session

from siskamling.areas import service as areas
from siskamling.areas.models import Area
from siskamling.audit import service as audit
from siskamling.audit.events import IncidentsImported
from siskamling.audit.service import Actor
from siskamling.cameras.models import Camera
from siskamling.core.errors import Invalid
from siskamling.placement.assess import NOT_DEMAND, truthy
from siskamling.placement.models import OPEN_REQUEST_STATUSES, CameraRequest, Incident
from siskamling.placement.planner import project
from siskamling.reports.models import Category, Report
from siskamling.reports.service import under

WIB = ZoneInfo("Asia/Jakarta")
MAX_ERRORS = 50
# The fire brigade log's incident types (keterangan_jkb), as demand kinds.
KIND_WORDS = (("kebakaran", "kebakaran"), ("gawat darurat", "gawat_darurat"), ("penyelamatan", "penyelamatan"),
              ("banjir", "banjir"))


def _kind(text: str) -> str:
    lowered = text.lower()
    for word, kind in KIND_WORDS:
        if word in lowered:
            return kind
    slug = "".join(c if c.isalnum() else "_" for c in lowered).strip("_")
    return slug[:40] or "lainnya"


def _when(row: dict[str, str]) -> datetime:
    """ISO 8601 ``occurred_at``, or the log's ``tanggal`` (M/D/YYYY) and ``waktu_informasi`` (H:MM, WIB)."""
    if row.get("occurred_at"):
        value = datetime.fromisoformat(row["occurred_at"].replace("Z", "+00:00"))
        if value.tzinfo is None:
            raise ValueError("occurred_at needs a UTC offset (e.g. +07:00)")
        return value.astimezone(UTC)
    day = (row.get("tanggal") or "").strip()
    if not day:
        raise ValueError("occurred_at (or tanggal) is missing")
    try:
        month, dom, year = (int(x) for x in day.split("/"))
        hour, minute = (int(x) for x in (row.get("waktu_informasi") or "0:00").strip().split(":")[:2])
        return datetime(year, month, dom, hour % 24, minute, tzinfo=WIB).astimezone(UTC)
    except ValueError:
        raise ValueError(f"tanggal {day!r} / waktu_informasi {row.get('waktu_informasi')!r} is not M/D/YYYY H:MM") from None


@dataclass
class _Places:
    """Kelurahan and RW centres by (kelurahan code, RW number), from the area tree."""

    kelurahan: dict[str, tuple[float, float, str]] = field(default_factory=dict)
    rw: dict[tuple[str, int], tuple[float, float, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, db_session: Session) -> _Places:
        out = cls()
        rows = db_session.execute(select(Area.id, Area.code, Area.level, Area.parent_id, Area.path, Area.centroid_lat,
                                         Area.centroid_lon).where(Area.level.in_(("kelurahan", "rw")))).all()
        kel_code = {r.id: r.code for r in rows if r.level == "kelurahan"}
        for r in rows:
            if r.centroid_lat is None:
                continue
            if r.level == "kelurahan":
                out.kelurahan[r.code] = (r.centroid_lat, r.centroid_lon, r.path)
            elif r.parent_id in kel_code:
                try:
                    number = int(r.code.rsplit(".", 1)[-1])
                except ValueError:
                    continue
                out.rw[(kel_code[r.parent_id], number)] = (r.centroid_lat, r.centroid_lon, r.path)
        return out


@dataclass
class Imported:
    count: int
    unplaced: list[int]  # lines skipped for having no position and no kelurahan (skip_unplaced)


def import_incidents(*, db_session: Session, path: Path, source: str, actor: Actor,
                     edge_tolerance_m: float = 300.0, skip_unplaced: bool = False) -> Imported:
    """Loads an incident log (CSV). Columns: ``lat``/``lon`` or ``kode_kel_kemendagri``/``rw``;
    ``occurred_at`` (ISO 8601 with offset) or ``tanggal``/``waktu_informasi``; ``kind`` or
    ``keterangan_jkb``; an id in ``id`` or ``no`` (a re-import skips rows already loaded).
    A row with neither a position nor a kelurahan is an error, unless ``skip_unplaced``: then it
    is left out and its line listed (the fire brigade's 2013 log has 44 such rows of 1,592)."""
    source = (source or "").strip().lower()
    if not source or len(source) > 40:
        raise Invalid("Name the source of the log (e.g. damkar)")
    if path.suffix.lower() != ".csv":
        raise Invalid("Incident import reads .csv files")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise Invalid("Cannot read %(file)s: %(error)s", file=path.name, error=str(exc)) from None
    reader = csv.DictReader(text.splitlines())
    places = _Places.load(db_session)
    known = set(db_session.scalars(select(Incident.source_ref).where(Incident.source == source)))
    errors: list[str] = []
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    unplaced: list[int] = []
    for line, rec in enumerate(reader, 2):
        rec = {(k or "").strip(): (v or "").strip() for k, v in rec.items()}
        try:
            ref = rec.get("id") or rec.get("no") or f"line-{line}"
            if ref in seen:
                raise ValueError(f"id {ref} appears twice")
            seen.add(ref)
            when = _when(rec)
            kind = rec.get("kind") or (_kind(rec["keterangan_jkb"]) if rec.get("keterangan_jkb") else "")
            if not kind:
                raise ValueError("kind (or keterangan_jkb) is missing")
            if rec.get("lat") and rec.get("lon"):
                lat, lon = float(rec["lat"]), float(rec["lon"])
                try:
                    area_path, placed = areas.area_at(db_session, lat, lon, edge_tolerance_m).path, "point"
                except Invalid as exc:
                    raise ValueError(str(exc)) from None
            else:
                code = rec.get("kode_kel_kemendagri") or rec.get("kode_kel") or ""
                if not code and skip_unplaced:
                    unplaced.append(line)
                    continue
                if code not in places.kelurahan:
                    raise ValueError(f"unknown kelurahan code {code!r}" if code else "lat/lon or kode_kel_kemendagri is missing")
                rw_text = rec.get("rw") or ""
                rw = places.rw.get((code, int(rw_text))) if rw_text.isdigit() else None
                lat, lon, area_path = rw or places.kelurahan[code]
                placed = "rw" if rw else "kelurahan"
        except (ValueError, KeyError) as exc:
            errors.append(f"line {line}: {exc}")
            if len(errors) >= MAX_ERRORS:
                break
            continue
        if ref in known:
            continue
        rows.append(dict(source=source, source_ref=ref[:60], kind=kind, occurred_at=when, lat=lat, lon=lon,
                         area_path=area_path, placed_by=placed))
    if errors:
        raise Invalid("Nothing was imported. %(errors)s", errors="; ".join(errors))
    if rows:
        db_session.execute(insert(Incident.__table__), rows)
    audit.record(db_session=db_session, actor=actor, area_path=None,
                 event=IncidentsImported(source=source, file=path.name, count=len(rows)))
    return Imported(len(rows), unplaced)


def import_population(*, db_session: Session, path: Path, code_column: str = "kode_kemendagri",
                      value_column: str = "total") -> int:
    """Sets each kelurahan's ``population`` attribute from a CSV (code, number): the assessment's
    population part. Unknown codes and bad numbers are reported by line; nothing is changed then."""
    reader = csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines())
    by_code = {a.code: a for a in db_session.scalars(select(Area).where(Area.level == "kelurahan"))}
    errors, values = [], {}
    for line, rec in enumerate(reader, 2):
        code = (rec.get(code_column) or "").strip()
        raw = (rec.get(value_column) or "").strip().replace(".", "").replace(",", "")
        if code not in by_code:
            errors.append(f"line {line}: unknown kelurahan code {code!r}")
        elif not raw.isdigit():
            errors.append(f"line {line}: {value_column} {rec.get(value_column)!r} is not a number")
        else:
            values[code] = int(raw)
    if errors:
        raise Invalid("Nothing was imported. %(errors)s", errors="; ".join(errors[:MAX_ERRORS]))
    for code, value in values.items():
        area = by_code[code]
        area.attributes = {**(area.attributes or {}), "population": value}
    return len(values)


# --- demand and candidates ---------------------------------------------------------------------


@dataclass
class Demand:
    lat: np.ndarray
    lon: np.ndarray
    weight: np.ndarray
    counts: dict[str, int]  # points by source: reports, incidents, flood_rw
    weights: dict[str, float]  # weight by source
    already_covered: float = 0.0  # weight within reach of an existing camera (left out)


def _scope(column, area_path: str | None):
    return under(column, area_path) if area_path else true()


def collect(*, db_session: Session, since: datetime, until: datetime, area_path: str | None,
            category_weights: dict[str, float], flood_weight: float, radius_m: float,
            exclude_covered: bool = True) -> Demand:
    """Reports and incidents in the period (by category weight; refused and merged reports left
    out), flood-prone RWs, inside ``area_path`` (or the whole city). Demand already within
    ``radius_m`` of an enabled camera is left out: it is covered."""
    lats: list[np.ndarray] = []
    lons: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    counts: dict[str, int] = {}
    by_source: dict[str, float] = {}

    def add(name: str, rows: list[tuple[Any, float, float]], weigh) -> None:
        if not rows:
            counts[name], by_source[name] = 0, 0.0
            return
        kinds, la, lo = zip(*rows, strict=True)
        w = np.array([weigh(k) for k in kinds], dtype=float)
        lats.append(np.array(la, dtype=float))
        lons.append(np.array(lo, dtype=float))
        weights.append(w)
        counts[name], by_source[name] = len(rows), float(w.sum())

    reports = db_session.execute(select(Category.code, Report.lat, Report.lon)
                                 .join(Category, Report.category_id == Category.id)
                                 .where(Report.created_at >= since, Report.created_at < until,
                                        Report.status.not_in(NOT_DEMAND), _scope(Report.area_path, area_path))).all()
    add("reports", reports, lambda k: category_weights.get(k, 1.0))
    incidents = db_session.execute(select(Incident.kind, Incident.lat, Incident.lon).where(
        Incident.occurred_at >= since, Incident.occurred_at < until, _scope(Incident.area_path, area_path))).all()
    add("incidents", incidents, lambda k: category_weights.get(k, 1.0))
    flood = [("flood", r.centroid_lat, r.centroid_lon) for r in db_session.execute(
        select(Area.attributes, Area.centroid_lat, Area.centroid_lon).where(
            Area.level == "rw", Area.centroid_lat.is_not(None), _scope(Area.path, area_path)))
        if truthy((r.attributes or {}).get("floodprone"))] if flood_weight > 0 else []
    add("flood_rw", flood, lambda _k: flood_weight)
    demand = Demand(np.concatenate(lats) if lats else np.zeros(0), np.concatenate(lons) if lons else np.zeros(0),
                    np.concatenate(weights) if weights else np.zeros(0), counts, by_source)
    if exclude_covered and len(demand.lat):
        cams = db_session.execute(select(Camera.lat, Camera.lon).where(Camera.enabled.is_(True))).all()
        if cams:
            lat0, lon0 = float(demand.lat.mean()), float(demand.lon.mean())
            tree = cKDTree(project(np.array([c[0] for c in cams]), np.array([c[1] for c in cams]), lat0, lon0))
            dist, _ = tree.query(project(demand.lat, demand.lon, lat0, lon0), distance_upper_bound=radius_m)
            covered = np.isfinite(dist)
            demand.already_covered = float(demand.weight[covered].sum())
            demand.lat, demand.lon, demand.weight = demand.lat[~covered], demand.lon[~covered], demand.weight[~covered]
    return demand


@dataclass
class Candidates:
    lat: np.ndarray
    lon: np.ndarray
    cost: np.ndarray
    kind: list[str]  # request | generated
    request_id: list[int | None]
    site_type: list[str]


def candidates(*, db_session: Session, demand: Demand, area_path: str | None, include_requests: bool,
               include_generated: bool, spacing_m: float, cost_of, generated_site_type: str = "jalan",
               max_generated: int = 5000) -> Candidates:
    """Open camera requests in the area, plus (optionally) one generated site per grid cell
    (``spacing_m`` wide) that holds demand, at the cell's demand-weighted centre; the cells with
    the most demand first, at most ``max_generated``."""
    lat: list[float] = []
    lon: list[float] = []
    kind: list[str] = []
    req_ids: list[int | None] = []
    types: list[str] = []
    if include_requests:
        for r in db_session.scalars(select(CameraRequest).where(
                CameraRequest.status.in_([s.value for s in OPEN_REQUEST_STATUSES]),
                _scope(CameraRequest.area_path, area_path)).order_by(CameraRequest.id)):
            lat.append(r.lat)
            lon.append(r.lon)
            kind.append("request")
            req_ids.append(r.id)
            types.append(r.site_type)
    if include_generated and len(demand.lat):
        lat0 = float(demand.lat.mean())
        step_lat = math.degrees(spacing_m / 6_371_008.8)
        step_lon = step_lat / max(0.01, math.cos(math.radians(lat0)))
        cells = np.stack((np.floor(demand.lat / step_lat), np.floor(demand.lon / step_lon)), axis=1).astype(np.int64)
        keys, inverse = np.unique(cells, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        w = np.bincount(inverse, weights=demand.weight, minlength=len(keys))
        wlat = np.bincount(inverse, weights=demand.weight * demand.lat, minlength=len(keys))
        wlon = np.bincount(inverse, weights=demand.weight * demand.lon, minlength=len(keys))
        order = np.argsort(-w, kind="stable")[:max_generated]
        for c in order:
            if w[c] <= 0:
                break
            lat.append(float(wlat[c] / w[c]))
            lon.append(float(wlon[c] / w[c]))
            kind.append("generated")
            req_ids.append(None)
            types.append(generated_site_type)
    return Candidates(np.array(lat, dtype=float), np.array(lon, dtype=float),
                      np.array([cost_of(t) for t in types], dtype=float), kind, req_ids, types)

