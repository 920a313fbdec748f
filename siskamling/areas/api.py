"""JSON API for areas: point lookup (public) and the scoped tree for the area browser."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from siskamling.accounts import service as accounts
from siskamling.areas import schemas
from siskamling.areas import service as areas
from siskamling.areas.models import Area, Level
from siskamling.core.deps import SessionDep, public, require
from siskamling.core.i18n import gettext
from siskamling.core.permissions import Permission
from siskamling.core.scope import Principal

router = APIRouter(prefix="/api/v1", tags=["areas"])
AreaViewer = Annotated[Principal, Depends(require(Permission.area_view))]


def current_area(code: str, db: SessionDep, principal: AreaViewer) -> Area:
    """The one dependency that loads a single area, in scope or 404."""
    return areas.get_in_scope(db_session=db, principal=principal, code=code)


CurrentArea = Annotated[Area, Depends(current_area)]


def counts_for(db: Session, items: list[Area]) -> dict[int, dict[str, int]]:
    children = areas.child_counts(db_session=db, area_ids=[a.id for a in items])
    watchers = accounts.count_watchers(db_session=db, paths=[a.path for a in items])
    return {a.id: {"children": children.get(a.id, 0), "watchers": watchers.get(a.path, 0)} for a in items}


def geojson(db: Session, items: list[Area]) -> Response:
    return Response(areas.feature_collection(items, counts_for(db, items)), media_type="application/geo+json")


@router.get("/locate", response_model=schemas.LocationOut, dependencies=[Depends(public)],
            response_model_exclude_none=True)
def locate(request: Request, db: SessionDep, lat: Annotated[float, Query(ge=-90, le=90)],
           lon: Annotated[float, Query(ge=-180, le=180)]):
    """Which kelurahan / RW a point is in. Public: the citizen report form needs it before login."""
    tolerance = request.app.state.settings.locate_edge_tolerance_m
    body = areas.locate(db_session=db, lat=lat, lon=lon, edge_tolerance_m=tolerance).as_dict()
    if "note" in body:
        body["note"] = gettext(body["note"])
    return body


@router.get("/areas", responses={200: {"content": {"application/geo+json": {}}}})
def list_areas(db: SessionDep, principal: AreaViewer, level: Level | None = None):
    """GeoJSON of the areas in scope: one level (e.g. all kelurahan), or the user's top areas."""
    if level is not None:
        return geojson(db, areas.list_level(db_session=db, principal=principal, level=level))
    return geojson(db, areas.list_children(db_session=db, principal=principal, parent=None))


@router.get("/areas/{code}", response_model=schemas.AreaOut)
def get_area(area: CurrentArea, db: SessionDep):
    counts = counts_for(db, [area])[area.id]
    counts.update(areas.count_by_level(db_session=db, path=area.path))
    return schemas.AreaOut(
        code=area.code, name=area.name, level=area.level, path=area.path,
        parent_code=area.parent.code if area.parent else None, attributes=area.attributes or {},
        centroid=[area.centroid_lon, area.centroid_lat] if area.centroid_lon is not None else None,
        bbox=[area.min_lon, area.min_lat, area.max_lon, area.max_lat] if area.min_lon is not None else None,
        counts=counts,
    )


@router.get("/areas/{code}/children", responses={200: {"content": {"application/geo+json": {}}}})
def area_children(area: CurrentArea, db: SessionDep, principal: AreaViewer):
    return geojson(db, areas.list_children(db_session=db, principal=principal, parent=area))
