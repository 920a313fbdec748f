"""Rendering pages and mapping domain errors to responses, in one place."""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
import anyio.to_thread
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from siskamling.core import i18n
from siskamling.core.deps import CSRF_COOKIE, MfaRequired
from siskamling.core.errors import DomainError, Invalid, Unauthenticated
from siskamling.core.permissions import Permission
from siskamling.core.security import csrf_token
from siskamling.core.templates import templates

log = logging.getLogger(__name__)
T = TypeVar("T")

# Parts of the site that answer errors in a format of their own (Open311's, for one):
# path prefix -> fn(request, status, message) -> Response. Domains register here.
ERROR_FORMATS: dict[str, Callable[[Request, int, str], Response]] = {}


async def run_intake(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """Run a plain function (database work) in a thread of the process's intake pool, of
    ``intake_threads`` threads, instead of the general threadpool. Report intake is the hot write
    path: on SQLite every report takes the one write lock, and the thread holding it competes for
    the interpreter lock with every other thread of its process; with one intake thread per
    process the lock's turns are shortest (with two processes on 2 cores: about 310 reports a
    second against 260-300 with three threads and 245-260 with the general pool)."""
    limiter = getattr(request.app.state, "intake_limiter", None)
    threads = request.app.state.settings.intake_threads
    if threads is None:
        threads = 1 if request.app.state.engine.dialect.name == "sqlite" else 8
    if limiter is None or limiter.total_tokens != threads:
        limiter = request.app.state.intake_limiter = anyio.CapacityLimiter(threads)
    return await anyio.to_thread.run_sync(functools.partial(fn, *args), limiter=limiter)


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path in ("/healthz", "/readyz")


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    settings = request.app.state.settings
    csrf_id = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "csrf_id", "")
    principal = getattr(request.state, "principal", None)
    ctx = {
        "principal": principal,
        "principal_permissions": {p.value for p in Permission if principal and principal.can(p)},
        "csrf_token": csrf_token(settings.secret_key, csrf_id),
        "lang": i18n.current_language.get(),
        "settings": settings,
        "path": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    }
    ctx.update(context or {})
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)


def form_float(value: Any, name: str) -> float | None:
    """A number typed into a form field: empty is None, anything else must be a finite number
    (a decimal comma, as Indonesians write -6,2045, is read as a point)."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    if "," in text and "." not in text:
        text = text.replace(",", ".")
    try:
        number = float(text)
    except ValueError:
        raise Invalid("%(field)s must be a number", field=name) from None
    if not math.isfinite(number):
        raise Invalid("%(field)s must be a number", field=name)
    return number


def form_amount(value: Any, name: str) -> float | None:
    """An amount of Rupiah as people type it: 200.000.000, Rp 200.000.000, 200,000,000 or 200000000."""
    if value in (None, ""):
        return None
    text = str(value).strip().lower().removeprefix("rp").strip().replace(" ", "")
    if re.fullmatch(r"\d{1,3}([.,]\d{3})+", text):
        text = re.sub(r"[.,]", "", text)
    return form_float(text, name)


def translated(exc: DomainError) -> str:
    message = i18n.gettext(exc.message)
    return message % exc.params if exc.params else message


def error_response(request: Request, status: int, code: str, message: str, details: Any = None) -> Response:
    for prefix, formatter in ERROR_FORMATS.items():
        if request.url.path.startswith(prefix):
            return formatter(request, status, message)
    if wants_json(request):
        body: dict[str, Any] = {"error": {"code": code, "message": message}}
        if details is not None:
            body["error"]["details"] = details
        return JSONResponse(body, status_code=status)
    template = "core/error_partial.html" if request.headers.get("hx-request") else "core/error.html"
    return render(request, template, {"status": status, "message": message}, status_code=status)


async def domain_error_handler(request: Request, exc: DomainError) -> Response:
    if isinstance(exc, Unauthenticated) and not wants_json(request):
        if isinstance(exc, MfaRequired):
            return RedirectResponse("/login/totp" if exc.enrolled else "/account/totp/setup", status_code=303)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)
    return error_response(request, exc.status_code, exc.code, translated(exc))


async def validation_error_handler(request: Request, exc: RequestValidationError) -> Response:
    details = [
        {"field": ".".join(str(p) for p in err.get("loc", ())[1:]), "message": err.get("msg", "")}
        for err in exc.errors()
    ]
    fields = ", ".join(d["field"] for d in details if d["field"])
    message = i18n.gettext("Some fields are missing or invalid: %(fields)s") % {"fields": fields}
    return error_response(request, 422, "invalid", message, details)


async def http_error_handler(request: Request, exc: StarletteHTTPException) -> Response:
    fallback = i18n.N_("Request could not be handled")
    messages = {404: i18n.N_("Page not found"), 405: i18n.N_("Method not allowed")}
    message = i18n.gettext(messages.get(exc.status_code, fallback))
    return error_response(request, exc.status_code, "http_%s" % exc.status_code, message)


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(request, 500, "internal", i18n.gettext("Something went wrong on our side. Please try again."))
