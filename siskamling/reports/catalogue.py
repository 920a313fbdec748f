"""The report catalogue: categories and their extra questions (Open311 attributes), units and
routing rules. Admins configure it; a fresh deployment starts with Jakarta's usual categories."""

from __future__ import annotations

import copy
import re
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from siskamling.audit import service as audit
from siskamling.audit.events import CatalogueChanged
from siskamling.audit.service import Actor
from siskamling.core import cache
from siskamling.core.errors import Invalid, NotFound
from siskamling.reports.models import Category, RoutingRule, Unit, UnitMember

# Open311 GeoReport v2 attribute datatypes.
DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,39}$")
UNIT_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,59}$")  # e.g. kel-31.71.01.1001

# Jakarta's usual categories (JAKI's list, simplified). Emergencies show 112 at once.
DEFAULT_CATEGORIES: list[dict[str, Any]] = [
    {"code": "kriminalitas", "name_id": "Keamanan / kriminalitas", "name_en": "Security / crime", "group": "keamanan",
     "emergency": True, "keywords": "pencurian,begal,tawuran,crime,theft",
     "attributes": [
         {"code": "sedang_terjadi", "datatype": "singlevaluelist", "required": True, "order": 1,
          "description": "Apakah kejadian masih berlangsung?",
          "values": [{"key": "ya", "name": "Ya, sedang terjadi"}, {"key": "tidak", "name": "Sudah selesai"}]},
     ]},
    {"code": "banjir", "name_id": "Banjir / genangan", "name_en": "Flood / standing water", "group": "bencana",
     "keywords": "banjir,genangan,flood",
     "attributes": [
         {"code": "tinggi_air_cm", "datatype": "number", "required": True, "order": 1,
          "description": "Perkiraan tinggi air (cm)"},
     ]},
    {"code": "kebakaran", "name_id": "Kebakaran", "name_en": "Fire", "group": "bencana", "emergency": True,
     "keywords": "api,kebakaran,fire"},
    {"code": "pohon_tumbang", "name_id": "Pohon tumbang", "name_en": "Fallen tree", "group": "bencana",
     "keywords": "pohon,tree",
     "attributes": [
         {"code": "menutup_jalan", "datatype": "singlevaluelist", "required": False, "order": 1,
          "description": "Menutup jalan?", "values": [{"key": "ya", "name": "Ya"}, {"key": "tidak", "name": "Tidak"}]},
     ]},
    {"code": "jalan_rusak", "name_id": "Jalan rusak", "name_en": "Damaged road", "group": "prasarana",
     "keywords": "jalan,lubang,pothole"},
    {"code": "pju_mati", "name_id": "Lampu jalan (PJU) mati", "name_en": "Street light out", "group": "prasarana",
     "keywords": "lampu,pju,street light",
     "attributes": [
         {"code": "nomor_tiang", "datatype": "string", "required": False, "order": 1,
          "description": "Nomor tiang lampu (jika terlihat)"},
     ]},
    {"code": "sampah", "name_id": "Sampah", "name_en": "Rubbish", "group": "kebersihan", "keywords": "sampah,rubbish"},
    {"code": "parkir_liar", "name_id": "Parkir liar", "name_en": "Illegal parking", "group": "ketertiban",
     "keywords": "parkir,parking"},
    {"code": "ketertiban", "name_id": "Gangguan ketertiban umum", "name_en": "Public order disturbance",
     "group": "ketertiban", "keywords": "bising,pkl,noise"},
    {"code": "cctv", "name_id": "CCTV rusak / tidak berfungsi", "name_en": "CCTV broken", "group": "keamanan",
     "keywords": "cctv,kamera,camera"},
    {"code": "lainnya", "name_id": "Lainnya", "name_en": "Other", "group": "umum", "keywords": ""},
]


def validate_attribute_defs(defs: Any) -> list[dict[str, Any]]:
    if not isinstance(defs, list):
        raise Invalid("Attributes must be a list")
    seen: set[str] = set()
    out = []
    for n, raw in enumerate(defs, 1):
        if not isinstance(raw, dict):
            raise Invalid("Attribute %(n)s must be an object", n=n)
        code = str(raw.get("code") or "")
        if not CODE_RE.match(code) or code in seen:
            raise Invalid("Attribute %(n)s needs a unique code of lowercase letters, digits, _ or -", n=n)
        datatype = raw.get("datatype")
        if datatype not in DATATYPES:
            raise Invalid("Attribute %(code)s: datatype must be one of %(types)s", code=code, types=", ".join(DATATYPES))
        values = raw.get("values") or []
        if datatype.endswith("valuelist") and not values:
            raise Invalid("Attribute %(code)s: a list needs at least one value", code=code)
        seen.add(code)
        out.append({
            "code": code, "datatype": datatype, "required": bool(raw.get("required", False)),
            "variable": bool(raw.get("variable", True)), "order": int(raw.get("order", n)),
            "description": str(raw.get("description") or code),
            "datatype_description": str(raw.get("datatype_description") or ""),
            "values": [{"key": str(v["key"]), "name": str(v.get("name") or v["key"])} for v in values],
        })
    return sorted(out, key=lambda a: a["order"])


def check_answers(category: Category, answers: dict[str, Any]) -> dict[str, Any]:
    """The report's answers to the category's questions, typed; a missing required answer, an
    unknown code or a value of the wrong type is refused."""
    defs = {a["code"]: a for a in category.attributes or []}
    unknown = sorted(set(answers) - set(defs))
    if unknown:
        raise Invalid("Unknown attribute for this category: %(codes)s", codes=", ".join(unknown))
    out: dict[str, Any] = {}
    for code, spec in defs.items():
        value = answers.get(code)
        if value in (None, "", []):
            if spec["required"]:
                raise Invalid("Attribute %(code)s is required: %(description)s", code=code,
                              description=spec["description"])
            continue
        out[code] = _typed(spec, value)
    return out


def _typed(spec: dict[str, Any], value: Any) -> Any:
    code, datatype = spec["code"], spec["datatype"]
    keys = [v["key"] for v in spec.get("values", [])]
    if datatype == "number":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise Invalid("Attribute %(code)s must be a number", code=code) from None
        if number != number or number in (float("inf"), float("-inf")):
            raise Invalid("Attribute %(code)s must be a number", code=code)
        return int(number) if number.is_integer() else number
    if datatype == "datetime":
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise Invalid("Attribute %(code)s must be a date and time (ISO 8601)", code=code) from None
        return parsed.isoformat()
    if datatype == "singlevaluelist":
        if isinstance(value, list):
            if len(value) != 1:
                raise Invalid("Attribute %(code)s takes exactly one value", code=code)
            value = value[0]
        if str(value) not in keys:
            raise Invalid("Attribute %(code)s must be one of: %(keys)s", code=code, keys=", ".join(keys))
        return str(value)
    if datatype == "multivaluelist":
        values = value if isinstance(value, list) else [value]
        bad = [str(v) for v in values if str(v) not in keys]
        if bad:
            raise Invalid("Attribute %(code)s must be among: %(keys)s", code=code, keys=", ".join(keys))
        return [str(v) for v in values]
    if isinstance(value, (dict, list)):
        raise Invalid("Attribute %(code)s must be text", code=code)
    text = str(value).strip()
    limit = 200 if datatype == "string" else 4000
    if len(text) > limit:
        raise Invalid("Attribute %(code)s is too long (at most %(limit)s characters)", code=code, limit=limit)
    return text


# --- categories --------------------------------------------------------------------------------


def categories(*, db_session: Session, active_only: bool = True) -> list[Category]:
    stmt = select(Category).order_by(Category.sort_order, Category.code)
    if active_only:
        stmt = stmt.where(Category.active.is_(True))
    return list(db_session.scalars(stmt))


_BY_CODE = select(Category).where(Category.code == bindparam("code"))  # built once: every intake reads it


def category(*, db_session: Session, code: str, active_only: bool = True) -> Category:
    row = db_session.scalar(_BY_CODE, {"code": code})
    if row is None or (active_only and not row.active):
        raise NotFound("Unknown category: %(code)s", code=code)
    return row


_recent_categories = cache.Recent()


def intake_category(*, db_session: Session, code: str) -> Category:
    """``category`` for report intake: an active category, as a copy kept a few seconds by the
    process (``core.cache``), detached from any session (its columns only)."""
    def load() -> Category | None:
        row = db_session.scalar(_BY_CODE, {"code": code})
        if row is None:
            return None
        return Category(**{c.key: copy.deepcopy(getattr(row, c.key)) for c in Category.__mapper__.column_attrs})

    row = _recent_categories.get((cache.db_key(db_session), code), load, db_session) if CODE_RE.match(code) else None
    if row is None or not row.active:
        raise NotFound("Unknown category: %(code)s", code=code)
    return row


def save_category(*, db_session: Session, data: dict[str, Any], actor: Actor) -> Category:
    code = str(data.get("code") or "").strip()
    if not CODE_RE.match(code):
        raise Invalid("A category code is 2–40 lowercase letters, digits, _ or -")
    name_id = str(data.get("name_id") or "").strip()
    if not name_id:
        raise Invalid("A category needs an Indonesian name")
    row = db_session.scalar(select(Category).where(Category.code == code))
    change = "changed" if row else "created"
    if row is None:
        row = Category(code=code, sort_order=len(categories(db_session=db_session, active_only=False)))
        db_session.add(row)
    row.name_id = name_id
    row.name_en = str(data.get("name_en") or name_id).strip()
    row.group = str(data.get("group") or "umum").strip()[:60]
    row.description = str(data.get("description") or "").strip()[:500]
    row.keywords = str(data.get("keywords") or "").strip()[:300]
    row.emergency = bool(data.get("emergency", False))
    row.active = bool(data.get("active", True))
    row.attributes = validate_attribute_defs(data.get("attributes") or [])
    unit_code = data.get("default_unit")
    row.default_unit = unit(db_session=db_session, code=unit_code) if unit_code else None
    db_session.flush()
    cache.changed(db_session)
    audit.record(db_session=db_session, actor=actor, event=CatalogueChanged(kind="category", name=code, change=change))
    return row


def seed_defaults(db_session: Session) -> int:
    """Adds the default categories that are missing (never changes what an admin edited)."""
    have = set(db_session.scalars(select(Category.code)))
    added = 0
    for n, spec in enumerate(DEFAULT_CATEGORIES):
        if spec["code"] in have:
            continue
        db_session.add(Category(
            code=spec["code"], name_id=spec["name_id"], name_en=spec["name_en"], group=spec["group"],
            keywords=spec.get("keywords", ""), emergency=spec.get("emergency", False), sort_order=n,
            attributes=validate_attribute_defs(spec.get("attributes", [])),
        ))
        added += 1
    db_session.flush()
    cache.changed(db_session)
    return added


# --- units and routing -------------------------------------------------------------------------


def units(*, db_session: Session) -> list[Unit]:
    return list(db_session.scalars(select(Unit).order_by(Unit.name)))


def unit(*, db_session: Session, code: str) -> Unit:
    row = db_session.scalar(select(Unit).where(Unit.code == code))
    if row is None:
        raise NotFound("Unknown unit: %(code)s", code=code)
    return row


def save_unit(*, db_session: Session, code: str, name: str, kind: str, area_path: str | None, actor: Actor) -> Unit:
    code, name = (code or "").strip(), (name or "").strip()
    if not UNIT_CODE_RE.match(code) or not name:
        raise Invalid("A unit needs a code (letters, digits, '.', _ or -) and a name")
    row = db_session.scalar(select(Unit).where(Unit.code == code))
    change = "changed" if row else "created"
    if row is None:
        row = Unit(code=code)
        db_session.add(row)
    row.name, row.kind, row.area_path = name, (kind or "lainnya").strip()[:40], area_path
    db_session.flush()
    cache.changed(db_session)
    audit.record(db_session=db_session, actor=actor, area_path=area_path,
                 event=CatalogueChanged(kind="unit", name=code, change=change))
    return row


def add_member(*, db_session: Session, unit_row: Unit, user_id: int, is_head: bool, actor: Actor) -> UnitMember:
    row = db_session.scalar(select(UnitMember).where(UnitMember.unit_id == unit_row.id, UnitMember.user_id == user_id))
    if row is None:
        row = UnitMember(unit_id=unit_row.id, user_id=user_id)
        db_session.add(row)
    row.is_head = is_head
    db_session.flush()
    audit.record(db_session=db_session, actor=actor, area_path=unit_row.area_path,
                 event=CatalogueChanged(kind="member", name=f"{unit_row.code}:{user_id}", change="created"))
    return row


def set_rule(*, db_session: Session, category_row: Category | None, area_path: str, unit_row: Unit,
             actor: Actor) -> RoutingRule:
    category_id = category_row.id if category_row else None
    row = db_session.scalar(select(RoutingRule).where(
        RoutingRule.category_id.is_(None) if category_id is None else RoutingRule.category_id == category_id,
        RoutingRule.area_path == area_path))
    if row is None:
        row = RoutingRule(category_id=category_id, area_path=area_path, unit_id=unit_row.id)
        db_session.add(row)
    row.unit_id = unit_row.id
    db_session.flush()
    name = f"{category_row.code if category_row else '*'}@{area_path}"
    cache.changed(db_session)
    audit.record(db_session=db_session, actor=actor, area_path=area_path,
                 event=CatalogueChanged(kind="rule", name=name, change="created"))
    return row


def _prefixes(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:n]) for n in range(len(parts), 0, -1)]


_RULES = select(RoutingRule.category_id, RoutingRule.area_path, RoutingRule.unit_id).where(
    RoutingRule.area_path.in_(bindparam("paths", expanding=True)),
    (RoutingRule.category_id == bindparam("category")) | RoutingRule.category_id.is_(None))


def route_unit_id(*, db_session: Session, category_row: Category, area_path: str) -> int | None:
    """The id of the unit responsible for a report of this category at this place. A rule naming
    the category beats a rule for any category ("banjir goes to Dinas SDA city-wide" wins over
    "the rest of kelurahan X goes to its office"); between rules of the same kind, the one for the
    deepest enclosing area wins. With no rule, the category's default unit."""
    rules = db_session.connection().execute(_RULES, {"paths": _prefixes(area_path), "category": category_row.id}).all()
    if rules:
        return min(rules, key=lambda r: (r.category_id is None, -len(r.area_path))).unit_id
    return category_row.default_unit_id


_recent_routes = cache.Recent()
_UNIT_CODE = select(Unit.code).where(Unit.id == bindparam("id"))


def intake_route(*, db_session: Session, category_row: Category, area_path: str) -> tuple[int | None, str | None]:
    """(id, code) of the unit a new report goes to (``route_unit_id``), kept a few seconds by the
    process (``core.cache``)."""
    def load() -> tuple[int | None, str | None]:
        unit_id = route_unit_id(db_session=db_session, category_row=category_row, area_path=area_path)
        code = db_session.connection().scalar(_UNIT_CODE, {"id": unit_id}) if unit_id is not None else None
        return unit_id, code

    key = (cache.db_key(db_session), category_row.id, category_row.default_unit_id, area_path)
    return _recent_routes.get(key, load, db_session)


def route(*, db_session: Session, category_row: Category, area_path: str) -> Unit | None:
    unit_id = route_unit_id(db_session=db_session, category_row=category_row, area_path=area_path)
    return db_session.get(Unit, unit_id) if unit_id is not None else None


def memberships(*, db_session: Session, user_id: int) -> list[UnitMember]:
    return list(db_session.scalars(select(UnitMember).where(UnitMember.user_id == user_id)))


def members(*, db_session: Session, unit_id: int) -> list[UnitMember]:
    return list(db_session.scalars(select(UnitMember).where(UnitMember.unit_id == unit_id)))


def heads(*, db_session: Session, unit_id: int | None) -> list[int]:
    """The user ids of a unit's heads, the longest-standing first."""
    if unit_id is None:
        return []
    return list(db_session.scalars(select(UnitMember.user_id).where(UnitMember.unit_id == unit_id,
                                                                    UnitMember.is_head.is_(True))
                                   .order_by(UnitMember.id)))

