"""A camera request's technical score, with its parts shown: how far the nearest camera is (the
coverage gap), the reports and incidents around it over the last 12 months (by category weight),
whether its RW is flood-prone, how many people live in its kelurahan, and how many residents
back it. Each part is scaled to 0–1; the score is their weighted mean × 100, the weights being
settings (``score_weights``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siskamling.areas.index import get_index
from siskamling.areas.models import Area
from siskamling.cameras.models import Camera
from siskamling.core.config import Settings
from siskamling.core.time import utcnow
from siskamling.placement.models import OPEN_REQUEST_STATUSES, CameraRequest, Incident
from siskamling.reports.models import Category, Report, Status
from siskamling.reports.service import box, distance_m

PARTS = ("gap", "need", "flood", "population", "support")
NOT_DEMAND = (Status.ditolak.value, Status.duplikat.value)  # refused and merged reports are not need


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "ya", "y")
    return bool(value)


def _nearest_camera(db_session: Session, lat: float, lon: float, within: float) -> tuple[float | None, str | None]:
    lat0, lat1, lon0, lon1 = box(lat, lon, within)
    best: tuple[float | None, str | None] = (None, None)
    for code, clat, clon in db_session.execute(select(Camera.code, Camera.lat, Camera.lon).where(
            Camera.enabled.is_(True), Camera.lat.between(lat0, lat1), Camera.lon.between(lon0, lon1))):
        d = distance_m(lat, lon, clat, clon)
        if d <= within and (best[0] is None or d < best[0]):
            best = (d, code)
    return best


def _need(db_session: Session, settings: Settings, lat: float, lon: float, now: datetime) -> tuple[float, dict[str, int]]:
    radius = settings.score_radius_m
    lat0, lat1, lon0, lon1 = box(lat, lon, radius)
    since = now - timedelta(days=365)
    weights = settings.placement_category_weights
    counts: dict[str, int] = {}
    total = 0.0
    reports = db_session.execute(select(Category.code, Report.lat, Report.lon).join(Category, Report.category_id == Category.id)
                                 .where(Report.lat.between(lat0, lat1), Report.lon.between(lon0, lon1),
                                        Report.created_at >= since, Report.created_at <= now,
                                        Report.status.not_in(NOT_DEMAND)))
    incidents = db_session.execute(select(Incident.kind, Incident.lat, Incident.lon).where(
        Incident.lat.between(lat0, lat1), Incident.lon.between(lon0, lon1), Incident.occurred_at >= since,
        Incident.occurred_at <= now))
    for kind, plat, plon in [*reports, *incidents]:
        if distance_m(lat, lon, plat, plon) <= radius:
            counts[kind] = counts.get(kind, 0) + 1
            total += weights.get(kind, 1.0)
    return total, dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def populations(db_session: Session) -> dict[int, int]:
    """Each kelurahan's population (area id → people), from the areas' ``population`` attribute."""
    rows = db_session.execute(select(Area.id, Area.attributes).where(Area.level == "kelurahan")).all()
    return {i: int(a["population"]) for i, a in rows if a and isinstance(a.get("population"), int | float)}


def _population(db_session: Session, area_id: int, table: dict[int, int]) -> tuple[int | None, int | None, str | None]:
    """The kelurahan's population and the largest kelurahan population (the scale)."""
    kel = next((info for info in get_index(db_session).chain(area_id) if info.level == "kelurahan"), None)
    if kel is None:
        return None, None, None
    return table.get(kel.id), max(table.values(), default=None), kel.name


def _flood(db_session: Session, area_id: int) -> tuple[bool | None, str | None]:
    chain = get_index(db_session).chain(area_id)
    rw = next((info for info in chain if info.level == "rw"), None)
    if rw is None:
        return None, None
    attributes = db_session.scalar(select(Area.attributes).where(Area.id == rw.id)) or {}
    value = attributes.get("floodprone")
    return (None if value is None else truthy(value)), rw.name


def score(*, db_session: Session, settings: Settings, req: CameraRequest, now: datetime | None = None,
          population_table: dict[int, int] | None = None) -> dict[str, Any]:
    """The score and every part: its raw figure, its 0–1 value, its weight and its points
    (``population_table``: ``populations()`` read once for many requests)."""
    now = now or utcnow()
    full_gap = settings.score_gap_full_m
    nearest, camera_code = _nearest_camera(db_session, req.lat, req.lon, full_gap)
    need, need_counts = _need(db_session, settings, req.lat, req.lon, now)
    flood, rw_name = _flood(db_session, req.area_id)
    table = populations(db_session) if population_table is None else population_table
    population, largest, kel_name = _population(db_session, req.area_id, table)
    values = {
        "gap": 1.0 if nearest is None else min(1.0, nearest / full_gap),
        "need": min(1.0, need / settings.score_need_full),
        "flood": 1.0 if flood else 0.0,
        "population": (population / largest) if population and largest else 0.0,
        "support": min(1.0, (req.support_count or 0) / settings.score_support_full),
    }
    raw = {
        "gap": {"distance_m": None if nearest is None else round(nearest), "camera": camera_code, "full_m": full_gap},
        "need": {"weighted": round(need, 2), "counts": need_counts, "radius_m": settings.score_radius_m,
                 "full": settings.score_need_full},
        "flood": {"floodprone": flood, "rw": rw_name},
        "population": {"population": population, "largest": largest, "kelurahan": kel_name},
        "support": {"supporters": req.support_count or 0, "full": settings.score_support_full},
    }
    weights = settings.score_weights
    total_weight = sum(weights.get(p, 0.0) for p in PARTS) or 1.0
    parts = {p: {"value": round(values[p], 4), "weight": weights.get(p, 0.0),
                 "points": round(100 * weights.get(p, 0.0) * values[p] / total_weight, 2), **raw[p]} for p in PARTS}
    return {"score": round(sum(v["points"] for v in parts.values()), 1), "parts": parts, "at": now.isoformat()}


def store(*, db_session: Session, settings: Settings, req: CameraRequest, now: datetime | None = None,
          population_table: dict[int, int] | None = None) -> dict[str, Any]:
    result = score(db_session=db_session, settings=settings, req=req, now=now, population_table=population_table)
    req.score = result["score"]
    req.score_parts = result
    req.assessed_at = now or utcnow()
    return result


def reassess_all(*, db_session: Session, settings: Settings, now: datetime | None = None) -> int:
    """Scores every open request again (after cameras, reports or weights changed)."""
    n = 0
    table = populations(db_session)
    for req in db_session.scalars(select(CameraRequest).where(
            CameraRequest.status.in_([s.value for s in OPEN_REQUEST_STATUSES]))):
        store(db_session=db_session, settings=settings, req=req, now=now, population_table=table)
        n += 1
    return n

