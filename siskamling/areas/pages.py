"""The area browser: a Leaflet map of the tree, click to descend."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from siskamling.areas import service as areas
from siskamling.areas.api import AreaViewer, CurrentArea, counts_for
from siskamling.areas.models import Level
from siskamling.core.deps import SessionDep
from siskamling.core.permissions import Permission
from siskamling.core.scope import in_scope
from siskamling.core.web import render

router = APIRouter(include_in_schema=False)  # HTML pages; the JSON API is in api.py


@router.get("/areas")
def browser_root(request: Request, db: SessionDep, principal: AreaViewer):
    tops = areas.list_children(db_session=db, principal=principal, parent=None)
    if len(tops) == 1:
        return RedirectResponse(f"/areas/{tops[0].code}", status_code=303)
    return render(request, "areas/browser.html", {"area": None, "children": tops, "counts": counts_for(db, tops),
                                                  "trail": [], "data_url": "/api/v1/areas"})


@router.get("/areas/{code}")
def browser(request: Request, area: CurrentArea, db: SessionDep, principal: AreaViewer):
    children = areas.list_children(db_session=db, principal=principal, parent=area)
    trail = [(a, in_scope(principal, Permission.area_view, a.path)) for a in areas.ancestors(db_session=db, area=area)]
    counted = areas.count_by_level(db_session=db, path=area.path)
    totals = [(level, counted[level]) for level in Level if level in counted]  # in tree order
    return render(request, "areas/browser.html", {
        "area": area, "children": children, "counts": counts_for(db, children), "trail": trail, "totals": totals,
        "data_url": f"/api/v1/areas/{area.code}/children",
    })
