"""The web application factory."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from siskamling.accounts import api as accounts_api
from siskamling.accounts import pages as accounts_pages
from siskamling.areas import api as areas_api
from siskamling.areas import pages as areas_pages
from siskamling.audit import api as audit_api
from siskamling.audit import pages as audit_pages
from siskamling.cameras import api as cameras_api
from siskamling.cameras import hls as cameras_hls
from siskamling.cameras import pages as cameras_pages
from siskamling.cameras import recordings as cameras_recordings
from siskamling.cameras import stream as cameras_stream
from siskamling.core import maintenance, scheduler, web  # noqa: F401  (maintenance: its job)
from siskamling.core.config import Settings
from siskamling.core.context import RequestContext
from siskamling.core.db import make_engine, make_session_factory
from siskamling.core.deps import csrf_protect
from siskamling.core.errors import DomainError
from siskamling.events import api as events_api
from siskamling.placement import api as placement_api
from siskamling.placement import jobs as _placement_jobs  # noqa: F401  (registers the re-scoring)
from siskamling.placement import pages as placement_pages
from siskamling.reports import api as reports_api
from siskamling.reports import open311
from siskamling.reports import pages as reports_pages
from siskamling.reports import webhooks as _webhooks  # noqa: F401  (registers its scheduled job)
from siskamling.sla import jobs as _sla_jobs  # noqa: F401  (registers the deadline sweep)
from siskamling.sla import pages as sla_pages
from siskamling.web import pages as web_pages

STATIC_DIR = Path(__file__).parent / "core" / "static"


def content_security_policy(settings: Settings) -> str:
    """Scripts only from this site; images also from the map tile server."""
    tiles = urlsplit(settings.tile_url)
    tile_origin = f" {tiles.scheme}://{tiles.netloc.replace('{s}', '*')}" if tiles.netloc else ""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data:{tile_origin}; media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'self'; "
        "form-action 'self'"
    )


def create_app(settings: Settings, engine=None) -> FastAPI:
    app = FastAPI(
        title="Siskamling API",
        version="0.1.0",
        docs_url=None,  # served by web.pages from the vendored Swagger UI, not a CDN
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        openapi_url="/api/openapi.json",
        dependencies=[Depends(csrf_protect)],
        lifespan=scheduler.lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine or make_engine(settings.database_url)
    app.state.session_factory = make_session_factory(app.state.engine)

    web.ERROR_FORMATS["/open311/"] = open311.error_response
    app.add_exception_handler(DomainError, web.domain_error_handler)
    app.add_exception_handler(RequestValidationError, web.validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, web.http_error_handler)
    app.add_exception_handler(Exception, web.unexpected_error_handler)

    csp = content_security_policy(settings)

    app.add_middleware(RequestContext, settings=settings, csp=csp)

    # GeoJSON for a city's kelurahan is ~400 KB; compressed it is a fraction of that.
    app.add_middleware(GZipMiddleware, minimum_size=2048, compresslevel=4)  # level 9 tripled its latency
    # Open311 first: intake is the hottest route, and routes are matched in order.
    for module in (open311, web_pages, accounts_pages, accounts_api, areas_pages, areas_api, audit_pages, audit_api, cameras_pages,
                   cameras_api, cameras_stream, cameras_hls, cameras_recordings, events_api, reports_api, reports_pages,
                   sla_pages, placement_pages, placement_api):
        app.include_router(module.router)
    # Static assets (CSS, JS, vendored htmx/Leaflet) are public by nature.
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
