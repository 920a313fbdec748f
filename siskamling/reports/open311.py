"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2), in JSON and XML, with the common
extensions: pagination (``page``, ``page_size``), ``updated_after``/``updated_before``,
``extensions=true`` for our own fields, and service request updates (as FixMyStreet serves them).

The read side is public, as the spec intends, and so shows only what the public may see: public
reports, their positions snapped to the public grid, never who reported. Writing needs an
``api_key`` issued to the client application (``siskamling reports clients add``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from siskamling.areas.index import get_index
from siskamling.audit.service import Actor
from siskamling.core.config import Settings
from siskamling.core.db import reader_session
from siskamling.core.deps import SessionDep, SettingsDep, client_ip, public
from siskamling.core.errors import DomainError, Invalid, NotFound
from siskamling.core.time import WIB, utcnow
from siskamling.core.web import run_intake
from siskamling.reports import catalogue, channels
from siskamling.reports import service as reports
from siskamling.reports.models import CLOSED_STATUSES, OPEN_STATUSES, Category, Channel, Report, Status, Step

router = APIRouter(tags=["open311"], dependencies=[Depends(public)])

FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
DEFAULT_DAYS = 90
MAX_REQUESTS = 1000
SPEC = "http://wiki.open311.org/GeoReport_v2"
# Filters the spec lets a client declare "multiple times, comma delimited": repeated, they are joined.
LIST_PARAMS = frozenset({"service_request_id", "service_code", "status"})
# Characters XML 1.0 cannot carry at all (a description may hold them): dropped from XML answers.
XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class Open311Error(DomainError):
    """An error in the spec's format: ``[{"code": 400, "description": "…"}]``."""

    def __init__(self, status: int, message: str, **params: Any) -> None:
        super().__init__(message, **params)
        self.status_code = status


# --- formats -----------------------------------------------------------------------------------


def _fmt(fmt: str) -> str:
    if fmt not in FORMATS:
        raise Open311Error(404, "Unknown format %(fmt)s: use .json or .xml", fmt=fmt)
    return fmt


def _xml_value(parent: ET.Element, key: str, value: Any, item: str) -> None:
    node = ET.SubElement(parent, key)
    if isinstance(value, list):
        for v in value:
            _xml_value(node, item, v, item)
    elif isinstance(value, dict):
        for k, v in value.items():
            _xml_value(node, k, v, _ITEM_NAMES.get(k, "item"))
    elif isinstance(value, bool):
        node.text = "true" if value else "false"
    elif value is not None:
        node.text = XML_INVALID.sub("", str(value))


# XML element names for the members of a list, as the spec's examples write them.
_ITEM_NAMES = {"attributes": "attribute", "values": "value", "endpoints": "endpoint", "formats": "format",
               "keywords": "keyword"}


def to_xml(root: str, item: str | None, body: Any) -> bytes:
    top = ET.Element(root)
    if isinstance(body, list):
        for element in body:
            _xml_value(top, item or "item", element, "item")
            node = top[-1]
            node.text = None
            if isinstance(element, dict):
                node.clear()
                for k, v in element.items():
                    _xml_value(node, k, v, _ITEM_NAMES.get(k, "item"))
    else:
        for k, v in body.items():
            _xml_value(top, k, v, _ITEM_NAMES.get(k, "item"))
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(top, encoding="utf-8")


def respond(fmt: str, root: str, item: str | None, body: Any, status: int = 200) -> Response:
    if fmt == "xml":
        return Response(to_xml(root, item, body), status_code=status, media_type=FORMATS["xml"])
    # orjson: a 1,000-request page serialises in a few milliseconds instead of tens.
    return Response(orjson.dumps(body), status_code=status, media_type=FORMATS["json"])


def error_response(request: Request, status: int, message: str) -> Response:
    """Every error under /open311/, in the spec's format and the request's own format."""
    fmt = "xml" if request.url.path.endswith(".xml") else "json"
    code = status if status in (400, 403, 404, 500) else (400 if status < 500 else 500)
    return respond(fmt, "errors", "error", [{"code": code, "description": message}], status=code)


_WIB_OFFSET = timedelta(hours=7)  # Asia/Jakarta has kept +07:00, without summer time, since 1964


def _time(value: datetime | None) -> str | None:
    # The zone's fixed offset added by hand: ``astimezone(WIB)`` was a sixth of a 1,000-row page.
    if value is None:
        return None
    if value.year < 1970:
        return value.astimezone(WIB).isoformat(timespec="seconds")
    return (value.astimezone(UTC).replace(tzinfo=None) + _WIB_OFFSET).isoformat(timespec="seconds") + "+07:00"


def _parse_time(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        parsed = None
    # Year 1 or 9999 passes the parser but overflows the conversion to UTC or the 90-day window.
    if parsed is None or not 1900 <= parsed.year <= 9000:
        raise Open311Error(400, "%(name)s must be a W3C date and time, e.g. 2026-01-31T08:00:00+07:00",
                           name=name)
    return parsed.replace(tzinfo=WIB) if parsed.tzinfo is None else parsed


def _params(request: Request, form: dict[str, Any] | None = None) -> dict[str, Any]:
    """Query (and form) parameters with empty values dropped: the spec treats them as absent."""
    merged: dict[str, Any] = {}
    for source in (request.query_params.multi_items(), (form or {}).items()):
        for key, value in source:
            if isinstance(value, list):
                value = [v for v in value if not (isinstance(v, str) and v.strip() == "")]
                if not value:
                    continue
            if isinstance(value, str) and value.strip() == "":
                continue
            if key in merged and key.endswith("[]"):
                merged[key] = [*merged[key], *(value if isinstance(value, list) else [value])]
            elif key in merged and key in LIST_PARAMS:
                merged[key] = f"{merged[key]},{value}"
            else:
                merged[key] = [value] if key.endswith("[]") and not isinstance(value, list) else value
    return merged


def _jurisdiction(params: dict[str, Any], settings: Settings) -> None:
    wanted = params.get("jurisdiction_id")
    if wanted is not None and wanted != settings.jurisdiction_id:
        raise Open311Error(404, "jurisdiction_id %(id)s is not served here (this is %(ours)s)", id=wanted,
                           ours=settings.jurisdiction_id)


# --- discovery and services --------------------------------------------------------------------


@router.get("/open311/discovery.{fmt}", summary="Open311 discovery")
def discovery(fmt: str, request: Request, settings: SettingsDep) -> Response:
    fmt = _fmt(fmt)
    base = str(request.base_url).rstrip("/")
    body = {
        "changeset": "2026-11-28T00:00:00+07:00",
        "contact": "Diskominfotik DKI Jakarta, via " + base,
        "key_service": base + "/reports/clients",
        "endpoints": [{
            "specification": SPEC, "url": base + "/open311/v2", "changeset": "2026-11-28T00:00:00+07:00",
            "type": "production", "formats": ["application/json", "text/xml"],
        }],
    }
    return respond(fmt, "discovery", None, body)


def service_out(category: Category) -> dict[str, Any]:
    return {
        "service_code": category.code, "service_name": category.name_id, "description": category.description or
        category.name_en, "metadata": bool(category.attributes), "type": "realtime",
        "keywords": category.keywords, "group": category.group,
    }


@router.get("/open311/v2/services.{fmt}", summary="Open311: the categories a report can have")
def services(fmt: str, request: Request, db: SessionDep, settings: SettingsDep) -> Response:
    fmt = _fmt(fmt)
    _jurisdiction(_params(request), settings)
    return respond(fmt, "services", "service", [service_out(c) for c in catalogue.categories(db_session=db)])


@router.get("/open311/v2/services/{code}.{fmt}", summary="Open311: a category's extra questions")
def service_definition(code: str, fmt: str, request: Request, db: SessionDep, settings: SettingsDep) -> Response:
    fmt = _fmt(fmt)
    _jurisdiction(_params(request), settings)
    try:
        category = catalogue.category(db_session=db, code=code)
    except NotFound:
        raise Open311Error(404, "service_code %(code)s not found", code=code) from None
    attributes = [{
        "variable": a.get("variable", True), "code": a["code"], "datatype": a["datatype"],
        "required": a["required"], "datatype_description": a.get("datatype_description") or None,
        "order": a["order"], "description": a["description"],
        **({"values": a["values"]} if a["datatype"].endswith("valuelist") else {}),
    } for a in category.attributes or []]
    return respond(fmt, "service_definition", None, {"service_code": category.code, "attributes": attributes})


# --- requests ----------------------------------------------------------------------------------


# Steps whose note speaks to the public about the report itself (a "merged_in" step's note is the
# ticket of the duplicate folded into it, not news about this report).
NOTE_KINDS = ("status", "comment", "handover", "merge")


def _last_public_note(db: Session, report: Report) -> str | None:
    return db.scalar(select(Step.note).where(Step.report_id == report.id, Step.public.is_(True),
                                             Step.by_staff.is_(True), Step.note.is_not(None),
                                             Step.kind.in_(NOTE_KINDS))
                     .order_by(Step.at.desc(), Step.id.desc()).limit(1))


def request_out(db: Session, settings: Settings, base: str, report: Report, extensions: bool) -> dict[str, Any]:
    """One report (``GET requests/{id}``), shaped as a list page's rows are."""
    area_code, area_name = (report.area.code, report.area.name) if report.area else (None, None)
    row = _ListRow(report.ticket, report.status, report.description, report.lat, report.lon, report.photo_count,
                   report.support_count, report.created_at, report.updated_at, report.category.code,
                   report.category.name_id, report.unit.name if report.unit else None, area_code, area_name,
                   report.duplicate_of.ticket if report.duplicate_of else None, _last_public_note(db, report))
    return _row_out(settings, base, row, extensions)


_OPEN_VALUES = frozenset(s.value for s in OPEN_STATUSES)


def _row_out(settings: Settings, base: str, row: Any, extensions: bool) -> dict[str, Any]:
    lat, lon = reports.coarse(row.lat, row.lon, settings.report_public_grid_m)
    body: dict[str, Any] = {
        "service_request_id": row.ticket, "status": "open" if row.status in _OPEN_VALUES else "closed",
        "status_notes": row.note, "service_name": row.service_name, "service_code": row.service_code,
        "description": row.description, "agency_responsible": row.agency,
        "service_notice": None, "requested_datetime": _time(row.created_at),
        "updated_datetime": _time(row.updated_at), "expected_datetime": None,
        "address": row.area_name, "address_id": None, "zipcode": None,
        "lat": lat, "long": lon,
        "media_url": f"{base}/laporan/{row.ticket}/foto/1.jpg" if row.photo_count else None,
    }
    if extensions:
        body["extended_attributes"] = {
            "status": row.status, "support_count": row.support_count, "area_code": row.area_code,
            "duplicate_of": row.duplicate_of, "tracking_url": f"{base}/laporan/{row.ticket}",
        }
    return body


@dataclass(slots=True)
class _ListRow:
    ticket: str
    status: str
    description: str | None
    lat: float
    lon: float
    photo_count: int
    support_count: int
    created_at: datetime
    updated_at: datetime
    service_code: str = ""
    service_name: str = ""
    agency: str | None = None
    area_code: str | None = None
    area_name: str | None = None
    duplicate_of: str | None = None
    note: str | None = None


# A page is up to 1,000 reports: plain rows (no ORM objects), the report's own columns only, so
# the filter keeps its plan; categories are read whole, the page's units, duplicates and notes one
# query each, the areas' codes and names from the in-memory area index.
_LIST_COLUMNS = (Report.id, Report.ticket, Report.status, Report.description, Report.lat, Report.lon,
                 Report.photo_count, Report.support_count, Report.created_at, Report.updated_at, Report.category_id,
                 Report.unit_id, Report.area_id, Report.duplicate_of_id)


def _list_rows(db: Session, conditions: list[Any], order: bool, offset: int = 0, limit: int = MAX_REQUESTS,
               ) -> list[_ListRow]:
    from siskamling.reports.models import Unit

    stmt = select(*_LIST_COLUMNS).where(Report.public.is_(True), *conditions)
    stmt = stmt.order_by(Report.created_at.desc(), Report.id.desc()).offset(offset).limit(limit) if order else \
        stmt.order_by(Report.created_at.desc())
    raw = db.connection().execute(stmt).all()
    if not raw:
        return []
    categories = {cid: (code, name) for cid, code, name in db.execute(select(Category.id, Category.code,
                                                                             Category.name_id))}
    unit_ids = {r.unit_id for r in raw if r.unit_id is not None}
    units = dict(db.execute(select(Unit.id, Unit.name).where(Unit.id.in_(unit_ids))).all()) if unit_ids else {}
    known = get_index(db).areas  # every area's code and name, in memory
    areas = {r.area_id: (known[r.area_id].code, known[r.area_id].name) for r in raw if r.area_id in known}
    dup_ids = {r.duplicate_of_id for r in raw if r.duplicate_of_id is not None}
    dups = dict(db.execute(select(Report.id, Report.ticket).where(Report.id.in_(dup_ids))).all()) if dup_ids else {}
    notes = _notes_for(db, [r.id for r in raw])
    out = []
    for r in raw:
        code, name = categories.get(r.category_id, ("", ""))
        area_code, area_name = areas.get(r.area_id, (None, None))
        out.append(_ListRow(r.ticket, r.status, r.description, r.lat, r.lon, r.photo_count, r.support_count,
                            r.created_at, r.updated_at, code, name, units.get(r.unit_id), area_code, area_name,
                            dups.get(r.duplicate_of_id), notes.get(r.id)))
    return out


def _notes_for(db: Session, ids: list[int]) -> dict[int, str]:
    notes: dict[int, str] = {}
    if not ids:
        return notes
    rows = db.execute(select(Step.report_id, Step.note).where(
        Step.report_id.in_(ids), Step.public.is_(True), Step.by_staff.is_(True), Step.note.is_not(None),
        Step.kind.in_(NOTE_KINDS)).order_by(Step.at, Step.id))
    for report_id, note in rows:
        notes[report_id] = note  # the last one wins
    return notes


def _int(params: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise Open311Error(400, "%(name)s must be a whole number", name=name) from None
    if not low <= value <= high:
        raise Open311Error(400, "%(name)s must be between %(low)s and %(high)s", name=name, low=low, high=high)
    return value


@router.get("/open311/v2/requests.{fmt}", summary="Open311: public reports, filtered")
def list_requests(fmt: str, request: Request, db: SessionDep, settings: SettingsDep) -> Response:
    # Public reads: outside the write transaction (on SQLite, the write lock intake needs).
    with reader_session(request.app.state.engine, db) as reader:
        return _list_requests(fmt, request, reader, settings)


def _list_requests(fmt: str, request: Request, db: Session, settings: Settings) -> Response:
    fmt = _fmt(fmt)
    params = _params(request)
    _jurisdiction(params, settings)
    base = str(request.base_url).rstrip("/")
    extensions = params.get("extensions") == "true"
    conditions: list[Any] = []
    ids = [s.strip().upper() for s in str(params.get("service_request_id", "")).split(",") if s.strip()]
    if ids:
        # The spec: with service_request_id every other filter is ignored.
        rows = _list_rows(db, [Report.ticket.in_(ids[:MAX_REQUESTS])], order=False)
        return respond(fmt, "service_requests", "request", [_row_out(settings, base, r, extensions) for r in rows])
    codes = [s.strip() for s in str(params.get("service_code", "")).split(",") if s.strip()]
    if codes:
        found = dict(db.execute(select(Category.code, Category.id).where(Category.code.in_(codes))).all())
        unknown = [c for c in codes if c not in found]
        if unknown:
            raise Open311Error(400, "service_code not found: %(codes)s", codes=", ".join(unknown))
        conditions.append(Report.category_id.in_(found.values()))
    statuses = [s.strip().lower() for s in str(params.get("status", "")).split(",") if s.strip()]
    if any(s not in ("open", "closed") for s in statuses):
        raise Open311Error(400, "status must be open, closed or both (comma-separated)")
    if statuses and len(set(statuses)) == 1:
        chosen = OPEN_STATUSES if statuses[0] == "open" else CLOSED_STATUSES
        # As an expression (status || ''), so no index on status is used for it: a page is the
        # newest 1,000 of the window, read from the created_at index until the page is full,
        # instead of every open report of the window gathered from four status ranges, then sorted.
        conditions.append(Report.status.concat("").in_([s.value for s in chosen]))
    start = _parse_time("start_date", params.get("start_date"))
    end = _parse_time("end_date", params.get("end_date"))
    if start is None and end is None:
        start = utcnow() - timedelta(days=DEFAULT_DAYS)
    elif start is None:
        start = end - timedelta(days=DEFAULT_DAYS)
    if end is not None and end < start:
        raise Open311Error(400, "end_date must not be before start_date")
    conditions.append(Report.created_at >= start)
    if end is not None:
        conditions.append(Report.created_at <= end)
    for name, op in (("updated_after", ">"), ("updated_before", "<")):
        value = _parse_time(name, params.get(name))
        if value is not None:
            conditions.append(Report.updated_at > value if op == ">" else Report.updated_at < value)
    agency = params.get("agency_responsible")
    if agency:
        from siskamling.reports.models import Unit

        conditions.append(Report.unit_id.in_(select(Unit.id).where(or_(Unit.code == agency, Unit.name == agency))))
    page = _int(params, "page", 1, 1, 1_000_000)
    size = _int(params, "page_size", MAX_REQUESTS, 1, MAX_REQUESTS)
    rows = _list_rows(db, conditions, order=True, offset=(page - 1) * size, limit=size)
    body = [_row_out(settings, base, r, extensions) for r in rows]
    return respond(fmt, "service_requests", "request", body)


@router.get("/open311/v2/requests/{ticket}.{fmt}", summary="Open311: one public report")
def get_request(ticket: str, fmt: str, request: Request, db: SessionDep, settings: SettingsDep) -> Response:
    fmt = _fmt(fmt)
    params = _params(request)
    _jurisdiction(params, settings)
    report = db.scalar(select(Report).where(Report.ticket == ticket.upper(), Report.public.is_(True)))
    if report is None:
        raise Open311Error(404, "service_request_id %(id)s not found", id=ticket)
    base = str(request.base_url).rstrip("/")
    return respond(fmt, "service_requests", "request",
                   [request_out(db, settings, base, report, params.get("extensions") == "true")])


@router.get("/open311/v2/tokens/{token}.{fmt}", summary="Open311: the request a token became")
def get_token(token: str, fmt: str, request: Request, db: SessionDep, settings: SettingsDep) -> Response:
    """We create requests at once, so a token is the ticket itself and always resolves."""
    fmt = _fmt(fmt)
    _jurisdiction(_params(request), settings)
    report = db.scalar(select(Report).where(Report.ticket == token.upper(), Report.public.is_(True)))
    if report is None:
        raise Open311Error(404, "token %(token)s not found", token=token)
    return respond(fmt, "service_requests", "request", [{"service_request_id": report.ticket, "token": token}])


def _client(db: Session, params: dict[str, Any], touch_now: bool = True) -> channels.ClientRef:
    client = channels.resolve(db_session=db, key=params.get("api_key"), touch_now=touch_now)
    if client is None:
        raise Open311Error(403, "api_key is missing or not valid")
    return client


def _attributes(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key.startswith("attribute[") and "]" in key:
            code = key[len("attribute["):key.index("]")]
            out[code] = value if key.endswith("[]") else value
    return out


async def _form(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").lower()
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        if not await request.body():
            return {}  # every parameter in the query string, as some clients send them
        raise Open311Error(400, "Send the parameters form-encoded (application/x-www-form-urlencoded)")
    try:
        form = await request.form()
    except Exception:  # noqa: BLE001 - a malformed body is the client's error, whatever the parser says
        raise Open311Error(400, "The form body could not be read") from None
    out: dict[str, Any] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            continue
        if key.endswith("[]"):
            out.setdefault(key, []).append(value)
        else:
            out[key] = value
    return out


# Read on the event loop; the routes that take it are plain functions, run in the threadpool, so
# their database work never blocks the loop (on SQLite a blocked loop cannot hand another
# request's commit to its thread, and both wait out the busy timeout).
Open311Form = Annotated[dict[str, Any], Depends(_form)]


def _float(params: dict[str, Any], name: str) -> float | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        raise Open311Error(400, "%(name)s must be a number", name=name) from None


@router.post("/open311/v2/requests.{fmt}", summary="Open311: file a report (api_key required)")
async def post_request(fmt: str, request: Request, db: SessionDep, settings: SettingsDep,
                       form: Open311Form) -> Response:
    return await run_intake(request, _post_request, fmt, request, db, settings, form)


def _post_request(fmt: str, request: Request, db: Session, settings: Settings, form: dict[str, Any]) -> Response:
    fmt = _fmt(fmt)
    params = _params(request, form)
    _jurisdiction(params, settings)
    # Every lookup in a read transaction first; the write transaction (on SQLite, the one write
    # lock every process shares) then holds only the inserts.
    with reader_session(request.app.state.engine, db) as reader:
        client = _client(reader, params, touch_now=False)
        if not params.get("service_code"):
            raise Open311Error(400, "service_code is required")
        try:  # first, so an unknown service_code is what the client hears of, whatever else is wrong
            catalogue.intake_category(db_session=reader, code=str(params["service_code"]).strip())
        except NotFound:
            raise Open311Error(400, "service_code %(code)s not found", code=params["service_code"]) from None
        lat, lon = _float(params, "lat"), _float(params, "long")
        if (lat is None) != (lon is None):
            raise Open311Error(400, "Give both lat and long, or neither and an address_string")
        if lat is None and not params.get("address_string"):
            raise Open311Error(400, "A location is required: lat and long, or address_string")
        name = " ".join(p for p in (params.get("first_name"), params.get("last_name")) if p) or None
        data = reports.NewReport(
            category=params["service_code"], description=params.get("description") or "", lat=lat, lon=lon,
            address=params.get("address_string"), attributes=_attributes(params), reporter_name=name,
            reporter_phone=params.get("phone"), reporter_email=params.get("email"), anonymous=name is None,
            media_url=params.get("media_url"),
        )
        actor = Actor(None, f"open311:{client.name}", client_ip(request))

        def act() -> tuple[int, dict[str, Any]]:
            try:
                # The spec makes description optional: the category and the answers may say it all.
                filed = reports.file_report(db_session=db, settings=settings, data=data, actor=actor,
                                            channel=Channel.open311, client=client, require_description=False,
                                            reader=reader)
            except NotFound as exc:  # an unknown service_code is a bad request, not a missing page
                raise Open311Error(400, exc.message, **exc.params) from None
            channels.touch(db_session=db, client=client)
            notice = ("Darurat? Hubungi 112 sekarang." if filed.report.emergency else None)
            return 201, {"service_request_id": filed.report.ticket, "service_notice": notice,
                         "account_id": params.get("account_id")}

        if request.headers.get("idempotency-key"):
            status, body, _ = channels.idempotent(db_session=db, client=client,
                                                  key=request.headers["idempotency-key"], body=params, act=act)
        else:
            status, body = act()
        # Now, in this thread (the write lock is not held across the hop back to the event loop), and
        # before the reader closes (its clean-up need not happen inside the write).
        db.commit()
    return respond(fmt, "service_requests", "request", [body], status=status)


# --- service request updates (extension) -------------------------------------------------------


def update_out(step: Step, report: Report, status: str) -> dict[str, Any]:
    """``status`` is the report's status once this step was taken (a comment leaves it as it was)."""
    return {
        "update_id": str(step.id), "service_request_id": report.ticket,
        "status": "open" if status in {s.value for s in OPEN_STATUSES} else "closed",
        "updated_datetime": _time(step.at), "description": step.note or "", "media_url": None,
        "external_status_code": step.status_to,
    }


def _statuses_at(db: Session, steps: list[Step]) -> dict[int, str]:
    """For each step, the status its report had once it was taken: its own, or the last one before."""
    history: dict[int, list[tuple[datetime, int, str]]] = {}
    rows = db.execute(select(Step.report_id, Step.at, Step.id, Step.status_to).where(
        Step.report_id.in_({s.report_id for s in steps}), Step.status_to.is_not(None)).order_by(Step.at, Step.id))
    for report_id, at, step_id, status in rows:
        history.setdefault(report_id, []).append((at, step_id, status))
    out: dict[int, str] = {}
    for step in steps:
        before = [status for at, step_id, status in history.get(step.report_id, [])
                  if (at, step_id) <= (step.at, step.id)]
        out[step.id] = step.status_to or (before[-1] if before else Status.menunggu.value)
    return out


@router.get("/open311/v2/servicerequestupdates.{fmt}", summary="Open311 extension: updates to public reports")
def list_updates(fmt: str, request: Request, db: SessionDep, settings: SettingsDep) -> Response:
    fmt = _fmt(fmt)
    params = _params(request)
    _jurisdiction(params, settings)
    end = _parse_time("end_date", params.get("end_date"))
    start = _parse_time("start_date", params.get("start_date")) or (end or utcnow()) - timedelta(days=1)
    end = end or utcnow() + timedelta(seconds=1)
    if end < start:
        raise Open311Error(400, "end_date must not be before start_date")
    page = _int(params, "page", 1, 1, 1_000_000)
    size = _int(params, "page_size", MAX_REQUESTS, 1, MAX_REQUESTS)
    rows = db.execute(select(Step, Report).join(Report, Report.id == Step.report_id).where(
        Report.public.is_(True), Step.public.is_(True), Step.kind.in_(("status", "handover", "comment", "merge",
                                                                         "dispute", "assign")),
        Step.at >= start, Step.at <= end).order_by(Step.at, Step.id).offset((page - 1) * size).limit(size)).all()
    statuses = _statuses_at(db, [step for step, _ in rows])
    return respond(fmt, "service_request_updates", "request_update",
                   [update_out(step, report, statuses[step.id]) for step, report in rows])


@router.post("/open311/v2/servicerequestupdates.{fmt}", summary="Open311 extension: a reporter's update")
def post_update(fmt: str, request: Request, db: SessionDep, settings: SettingsDep, form: Open311Form) -> Response:
    fmt = _fmt(fmt)
    params = _params(request, form)
    _jurisdiction(params, settings)
    client = _client(db, params)
    for name in ("service_request_id", "description"):
        if not params.get(name):
            raise Open311Error(400, "%(name)s is required", name=name)
    report = db.scalar(select(Report).where(Report.ticket == str(params["service_request_id"]).upper()))
    # A private report is only the business of the client that filed it (web reports: of nobody's).
    if report is None or (not report.public and report.client_id != client.id):
        raise Open311Error(404, "service_request_id %(id)s not found", id=params["service_request_id"])
    actor = Actor(None, f"open311:{client.name}", client_ip(request))
    try:
        step = reports.comment(db_session=db, staff=None, report=report, note=params["description"], actor=actor,
                               public=True)
    except Invalid as exc:
        raise Open311Error(400, exc.message, **exc.params) from None
    body = [{"update_id": str(step.id)}]
    return respond(fmt, "service_request_updates", "request_update", body)

