"""The shell: home, language switch, health, readiness and metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from prometheus_client import generate_latest

from siskamling.accounts.pages import safe_next
from siskamling.areas import service as areas
from siskamling.core import i18n, metrics
from siskamling.core.deps import CurrentUser, SessionDep, public
from siskamling.core.migrate import is_current
from siskamling.core.web import render

router = APIRouter(include_in_schema=False)  # HTML pages; the JSON API is in api.py


@router.get("/")
def home(request: Request, db: SessionDep, principal: CurrentUser):
    tops = areas.list_children(db_session=db, principal=principal, parent=None)
    return render(request, "web/home.html", {"areas": tops})


@router.post("/lang", dependencies=[Depends(public)])
def switch_language(request: Request, lang: Annotated[str, Form()], next: Annotated[str, Form()] = "/"):
    response = RedirectResponse(safe_next(next), status_code=303)
    if lang in i18n.LANGUAGES:
        response.set_cookie("lang", lang, max_age=365 * 86400, samesite="lax",
                            secure=request.app.state.settings.session_cookie_secure)
    return response


@router.get("/healthz", dependencies=[Depends(public)])
def healthz():
    return {"status": "ok"}


@router.get("/readyz", dependencies=[Depends(public)])
def readyz(request: Request):
    engine = request.app.state.engine
    try:
        current = is_current(engine)  # opens a connection and reads the schema version
    except Exception as exc:  # any database failure means "not ready"
        return JSONResponse({"status": "unavailable", "database": str(exc)[:200]}, status_code=503)
    if not current:
        return JSONResponse({"status": "unavailable", "database": "schema is not at the current migration"},
                            status_code=503)
    return {"status": "ready"}


@router.get("/api/docs", dependencies=[Depends(public)], include_in_schema=False)
def api_docs(request: Request):
    """Interactive API documentation (Swagger UI from the npm registry, served locally)."""
    return render(request, "web/api_docs.html")


@router.get("/metrics", dependencies=[Depends(public)])
def prometheus_metrics():
    # Public like /healthz: aggregate counters only, no user data. Restrict at the proxy if needed.
    return PlainTextResponse(generate_latest(metrics.registry), media_type="text/plain; version=0.0.4")
