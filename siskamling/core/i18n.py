"""Indonesian first, English second. Source strings are English; ``locale/<lang>/LC_MESSAGES/
messages.po`` holds the translations, compiled in memory at start-up (no build step)."""

from __future__ import annotations

import gettext as _gettext
import io
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = {"id": "Bahasa Indonesia", "en": "English"}
DEFAULT_LANGUAGE = "id"

current_language: ContextVar[str] = ContextVar("current_language", default=DEFAULT_LANGUAGE)


@lru_cache
def translations(language: str) -> _gettext.NullTranslations:
    po = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return _gettext.NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=language)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf)


def gettext(message: str) -> str:
    return translations(current_language.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_language.get()).ngettext(singular, plural, n)


_ = gettext


def N_(message: str) -> str:
    """Marks a message for extraction where it is defined; translate it where it is shown."""
    return message


ROLE_LABELS = {
    "admin": N_("Administrator"), "operator": N_("Operator"), "officer": N_("Officer"), "ketua_rw": N_("RW head"),
    "ketua_rt": N_("RT head"), "fkdm": N_("FKDM member"), "satpam": N_("Security guard"), "linmas": N_("Linmas"),
    "warga": N_("Resident"),
}
LEVEL_LABELS = {
    "provinsi": N_("Province"), "kota": N_("City / regency"), "kecamatan": N_("District"),
    "kelurahan": N_("Village"), "rw": N_("RW"), "rt": N_("RT"),
}


SITE_LABELS = {
    "taman_24_jam": N_("24-hour park"), "rawan_bencana": N_("Disaster/flood-prone area"), "jalan": N_("Street"),
    "pasar": N_("Market"), "sekolah": N_("School"), "fasilitas_umum": N_("Public facility"), "lainnya": N_("Other"),
}


HEALTH_LABELS = {
    "unknown": N_("Not yet connected"), "online": N_("Online"), "degraded": N_("Degraded"), "offline": N_("Offline"),
    "disabled": N_("Disabled"),
}


PROBE_LABELS = {  # siskamling.cameras.probe.Status
    "online": N_("Online"), "unreachable": N_("Unreachable"), "unauthorized": N_("Username or password refused"),
    "not_found": N_("Stream not found at this address"), "unsupported_codec": N_("Unsupported video codec"),
    "no_video": N_("No video in the stream"), "timeout": N_("No answer in time"),
    "bad_url": N_("Invalid stream address"), "error": N_("Stream error"),
}


# The JAKI workflow: the Indonesian names are what citizens know (siskamling.reports.models.Status).
REPORT_STATUS_LABELS = {
    "menunggu": N_("Waiting"), "koordinasi": N_("Coordinating"), "disposisi": N_("Dispatched"),
    "proses": N_("In progress"), "selesai": N_("Done"), "ditolak": N_("Rejected"), "duplikat": N_("Duplicate"),
}
STEP_LABELS = {  # siskamling.reports.models.Step.kind
    "filed": N_("Report received"), "status": N_("Status changed"), "handover": N_("Handed over to another unit"),
    "assign": N_("Assigned to an officer"), "comment": N_("Note"), "support": N_("A resident supports the report"),
    "merge": N_("Merged into another report"), "merged_in": N_("A duplicate report was merged in"),
    "confirm": N_("The reporter confirmed the fix"), "dispute": N_("The reporter disputed the fix; reopened"),
}


# Camera requests (siskamling.placement.models.RequestStatus), with their Indonesian names.
REQUEST_STATUS_LABELS = {
    "diajukan": N_("Submitted"), "ditinjau": N_("Under review"), "disetujui": N_("Approved"),
    "ditolak": N_("Refused"), "ditunda": N_("Deferred"), "terpasang": N_("Installed"),
}
REQUEST_REASON_LABELS = {
    "rawan_kriminalitas": N_("Crime-prone spot"), "taman_24_jam": N_("24-hour park"),
    "rawan_banjir": N_("Flood-prone"), "sekolah": N_("School"), "pasar": N_("Market"),
    "gang_gelap": N_("Dark alley"), "lainnya": N_("Other"),
}
SCORE_PART_LABELS = {
    "gap": N_("Coverage gap (nearest camera)"), "need": N_("Reports and incidents nearby (12 months)"),
    "flood": N_("Flood-prone RW"), "population": N_("Population of the kelurahan"), "support": N_("Residents' support"),
}


PLAN_METHOD_LABELS = {"mip": N_("exact solver (MIP)"), "greedy": N_("greedy with the Lagrangian bound")}
PLAN_STATUS_LABELS = {
    "optimal": N_("proven optimal"), "feasible": N_("best found within the time limit"),
    "greedy": N_("greedy, not proven optimal"),
}
PLAN_INPUT_LABELS = {
    "name": N_("Name"), "mode": N_("Planned by"), "count": N_("Number of cameras"), "budget": N_("Budget (Rp)"),
    "area_code": N_("Area"), "radius_m": N_("Coverage radius (m)"), "since": N_("Demand from"),
    "until": N_("Demand until (not included)"), "include_requests": N_("Open camera requests as candidates"),
    "include_generated": N_("Generated sites as candidates"), "unit_cost": N_("Cost of one camera site (Rp)"),
    "site_costs": N_("Costs per site type (Rp)"), "category_weights": N_("Weight per category"),
    "flood_weight": N_("Weight of a flood-prone RW"), "method": N_("Method"), "time_limit": N_("Time limit (s)"),
}
DEMAND_LABELS = {"reports": N_("Citizen reports"), "incidents": N_("Incidents"), "flood_rw": N_("Flood-prone RWs")}


def label_in(table: dict[str, str], key: str) -> str:
    return gettext(table[key]) if key in table else key


def format_number(value, digits: int = 0) -> str:
    """A number in the reader's language: 1.750.000.000 in Indonesian, 1,750,000,000 in English."""
    from babel.numbers import format_decimal

    if value is None:
        return "–"
    fmt = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=fmt, locale="id_ID" if current_language.get() == "id" else "en_US")


def request_status_label(status: str) -> str:
    return label_in(REQUEST_STATUS_LABELS, status)


def request_reason_label(reason: str) -> str:
    return label_in(REQUEST_REASON_LABELS, reason)


def score_part_label(part: str) -> str:
    return label_in(SCORE_PART_LABELS, part)


def report_status_label(status: str) -> str:
    return gettext(REPORT_STATUS_LABELS[status]) if status in REPORT_STATUS_LABELS else status


def step_label(step) -> str:
    label = gettext(STEP_LABELS[step.kind]) if step.kind in STEP_LABELS else step.kind
    if step.kind == "status" and step.status_to:
        return f"{label}: {report_status_label(step.status_to)}"
    if step.kind == "handover" and step.unit_to is not None:
        return f"{label}: {step.unit_to.name}"
    if step.kind == "assign" and step.officer is not None:
        return f"{label}: {step.officer.full_name}"
    return label


def probe_label(status: str) -> str:
    return gettext(PROBE_LABELS[status]) if status in PROBE_LABELS else status


def health_label(health: str) -> str:
    return gettext(HEALTH_LABELS[health]) if health in HEALTH_LABELS else health


def site_label(site: str) -> str:
    return gettext(SITE_LABELS[site]) if site in SITE_LABELS else site


def role_label(role: str) -> str:
    return gettext(ROLE_LABELS[role]) if role in ROLE_LABELS else role


def level_label(level: str) -> str:
    return gettext(LEVEL_LABELS[level]) if level in LEVEL_LABELS else level


def pick_language(cookie: str | None, user_language: str | None, accept: str | None, default: str) -> str:
    for candidate in (cookie, user_language):
        if candidate in LANGUAGES:
            return candidate
    for part in (accept or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return default
