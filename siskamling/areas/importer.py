"""Reading boundary files into validated area records, before anything touches the database.

Every problem names the feature it comes from; the caller writes nothing unless the whole file
is clean.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.validation import explain_validity

from siskamling.areas.models import Level

CODE_PATTERNS = {
    Level.provinsi: re.compile(r"^\d{2}$"),
    Level.kota: re.compile(r"^\d{2}\.\d{2}$"),
    Level.kecamatan: re.compile(r"^\d{2}\.\d{2}\.\d{2}$"),
    Level.kelurahan: re.compile(r"^\d{2}\.\d{2}\.\d{2}\.\d{4}$"),
    Level.rw: re.compile(r"^\d{2}\.\d{2}\.\d{2}\.\d{4}\.\d{3}$"),
    Level.rt: re.compile(r"^\d{2}\.\d{2}\.\d{2}\.\d{4}\.\d{3}\.\d{3}$"),
}
LEVEL_ALIASES = {"kabupaten": Level.kota, "kab_kota": Level.kota, "desa": Level.kelurahan, "kelurahan_desa": Level.kelurahan}
# Property names holding ancestor names in the common Indonesian boundary files.
DEFAULT_ANCESTOR_NAME_PROPS = {
    Level.kecamatan: ["nama_kec", "nama_kecamatan", "kecamatan"],
    Level.kota: ["nama_kab", "nama_kota", "nama_kab_kota", "kabupaten_kota"],
    Level.provinsi: ["nama_prov", "nama_provinsi", "provinsi"],
}
MAX_ERRORS_SHOWN = 25


class OnDuplicate(StrEnum):
    error = "error"
    merge = "merge"  # features with the same code are parts of one area (MultiPolygon)


class OnMissingCode(StrEnum):
    error = "error"
    skip = "skip"


def parse_level(value: str) -> Level:
    value = value.strip().lower()
    if value in LEVEL_ALIASES:
        return LEVEL_ALIASES[value]
    try:
        return Level(value)
    except ValueError:
        raise ImportFailed([f"unknown level {value!r}: use one of {', '.join(Level)}"]) from None


def parent_code(code: str) -> str | None:
    return code.rsplit(".", 1)[0] if "." in code else None


def level_of_code(code: str) -> Level | None:
    for level, pattern in CODE_PATTERNS.items():
        if pattern.match(code):
            return level
    return None


class ImportFailed(Exception):
    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        shown = errors[:MAX_ERRORS_SHOWN]
        more = len(errors) - len(shown)
        text = "\n".join(f"  - {e}" for e in shown) + (f"\n  … and {more} more" if more > 0 else "")
        super().__init__(f"import refused, nothing was imported ({len(errors)} problem(s)):\n{text}")


@dataclass
class ImportOptions:
    level: Level
    code_prop: str | None = None
    name_prop: str | None = None
    parent_prop: str | None = None
    number_prop: str | None = None  # RW/RT number, combined with the parent code
    attr_props: list[str] = field(default_factory=list)
    ancestor_name_props: dict[Level, list[str]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # code -> name, from a reference list
    on_duplicate: OnDuplicate = OnDuplicate.error
    on_missing_code: OnMissingCode = OnMissingCode.error


@dataclass
class AreaRecord:
    code: str
    level: Level
    name: str
    parent_code: str | None
    geometry: Any | None  # shapely geometry (WGS84) or None
    attributes: dict[str, Any]
    label: str  # how the source feature is named in messages
    parts: int = 1


@dataclass
class ParsedFile:
    records: list[AreaRecord]
    ancestors: dict[str, tuple[Level, str | None]]  # code -> (level, name if the file gave one)
    features: int
    merged: list[str]
    skipped: list[str]


def read_features(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as fh:
            return [{"type": "Feature", "properties": row, "geometry": None} for row in csv.DictReader(fh)]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ImportFailed([f"{path}: no such file"]) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportFailed([f"{path}: not valid GeoJSON ({exc})"]) from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" or not isinstance(data.get("features"), list):
        raise ImportFailed([f"{path}: not a GeoJSON FeatureCollection"])
    return data["features"]


def read_names(path: Path) -> dict[str, str]:
    """A reference code list (CSV with columns kode,nama), e.g. Kemendagri's."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        code_col = next((c for c in fields if c.lower() in ("kode", "code")), None)
        name_col = next((c for c in fields if c.lower() in ("nama", "name")), None)
        if not code_col or not name_col:
            raise ImportFailed([f"{path}: a names file needs columns kode,nama (found {', '.join(fields)})"])
        return {row[code_col].strip(): row[name_col].strip() for row in reader if row.get(code_col)}


def _label(i: int, props: dict[str, Any], code: str | None) -> str:
    ident = code or props.get("OBJECTID") or props.get("id")
    return f"feature #{i}" + (f" ({ident})" if ident else "")


def _prop(props: dict[str, Any], name: str | None) -> Any:
    if not name:
        return None
    value = props.get(name)
    if isinstance(value, str):
        value = value.strip()
    return None if value in ("", None) else value


def _code(props: dict[str, Any], opts: ImportOptions, errors: list[str], i: int) -> tuple[str | None, str | None]:
    """(code, parent code) for a feature; (None, None) and an error when it has none."""
    level = opts.level
    if opts.number_prop:
        parent = _prop(props, opts.parent_prop)
        number = _prop(props, opts.number_prop)
        if parent is None or number is None:
            return None, None
        try:
            n = int(float(number))
        except (TypeError, ValueError):
            errors.append(f"{_label(i, props, None)}: {opts.number_prop}={number!r} is not a number")
            return None, None
        if not 0 < n < 1000:
            errors.append(f"{_label(i, props, None)}: {opts.number_prop}={n} is out of range 1–999")
            return None, None
        return f"{parent}.{n:03d}", str(parent)
    code = _prop(props, opts.code_prop)
    if code is None:
        return None, None
    code = str(code)
    parent = _prop(props, opts.parent_prop)
    derived = parent_code(code)
    if parent is not None and derived is not None and str(parent) != derived and level.depth > 0:
        errors.append(f"{_label(i, props, code)}: parent code {parent} does not match the code {code}")
    return code, derived


def _geometry(feature: dict[str, Any], label: str, level: Level, errors: list[str]):
    raw = feature.get("geometry")
    if raw is None:
        if level == Level.rt:
            return None
        errors.append(f"{label}: has no geometry (only RT may come without a polygon)")
        return None
    try:
        geom = shape(raw)
    except Exception as exc:  # shapely raises several types for malformed GeoJSON
        errors.append(f"{label}: geometry cannot be read ({exc})")
        return None
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        errors.append(f"{label}: geometry is a {geom.geom_type}, expected Polygon or MultiPolygon")
        return None
    if geom.is_empty:
        errors.append(f"{label}: geometry is empty")
        return None
    minx, miny, maxx, maxy = geom.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        errors.append(f"{label}: coordinates are not longitude/latitude (WGS84, lon first)")
        return None
    if not geom.is_valid:
        errors.append(f"{label}: invalid polygon ({explain_validity(geom)})")
        return None
    return geom


def parse(features: list[dict[str, Any]], opts: ImportOptions) -> ParsedFile:
    errors: list[str] = []
    by_code: dict[str, AreaRecord] = {}
    ancestors: dict[str, tuple[Level, str | None]] = {}
    merged: list[str] = []
    skipped: list[str] = []
    pattern = CODE_PATTERNS[opts.level]
    for i, feature in enumerate(features, start=1):
        if not isinstance(feature, dict) or not isinstance(feature.get("properties") or {}, dict):
            errors.append(f"feature #{i}: not a GeoJSON Feature")
            continue
        props = feature.get("properties") or {}
        code, parent = _code(props, opts, errors, i)
        label = _label(i, props, code)
        if code is None:
            if opts.on_missing_code == OnMissingCode.skip:
                skipped.append(label)
            elif not errors or not errors[-1].startswith(label):
                wanted = opts.number_prop or opts.code_prop
                errors.append(f"{label}: no code (property {wanted!r} is empty or missing)")
            continue
        if not pattern.match(code):
            errors.append(f"{label}: code {code!r} is not a Kemendagri {opts.level} code")
            continue
        geom = _geometry(feature, label, opts.level, errors)
        name = _prop(props, opts.name_prop) or opts.names.get(code) or _default_name(opts.level, code)
        attrs = {k: props.get(k) for k in opts.attr_props}
        existing = by_code.get(code)
        if existing is not None:
            if opts.on_duplicate == OnDuplicate.error:
                errors.append(f"{label}: duplicate code {code} (first seen in {existing.label})")
                continue
            _merge(existing, geom, attrs)
            merged.append(f"{label} merged into {code}")
            continue
        by_code[code] = AreaRecord(code, opts.level, str(name), parent, geom, attrs, label)
        _collect_ancestors(code, props, opts, ancestors)
    if errors:
        raise ImportFailed(errors)
    return ParsedFile(list(by_code.values()), ancestors, len(features), merged, skipped)


def _default_name(level: Level, code: str) -> str:
    tail = code.rsplit(".", 1)[-1]
    return {Level.rw: f"RW {tail}", Level.rt: f"RT {tail}"}.get(level, code)


def _merge(record: AreaRecord, geom, attrs: dict[str, Any]) -> None:
    if geom is not None:
        record.geometry = geom if record.geometry is None else shapely.union(record.geometry, geom)
    for key, value in attrs.items():
        old = record.attributes.get(key)
        if isinstance(value, bool) or isinstance(old, bool):
            # A flag such as "flood-prone" holds for the area when it holds for any part.
            record.attributes[key] = bool(old) or bool(value) if (old is not None or value is not None) else None
        elif old is None:
            record.attributes[key] = value
    record.parts += 1


def _collect_ancestors(code: str, props: dict[str, Any], opts: ImportOptions, out: dict) -> None:
    current = parent_code(code)
    while current is not None:
        level = level_of_code(current)
        if level is None or current in out:
            return
        name = opts.names.get(current)
        for prop in opts.ancestor_name_props.get(level) or DEFAULT_ANCESTOR_NAME_PROPS.get(level, []):
            name = name or _prop(props, prop)
        out[current] = (level, str(name) if name else None)
        current = parent_code(current)
