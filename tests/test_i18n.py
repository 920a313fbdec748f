"""The gettext catalogues: every string the code can show is translated into Indonesian, keeps its
placeholders, and the app serves Indonesian by default and English on request.

The msgids come from a fresh extraction of the source (babel.cfg, the same configuration as
``pybabel extract -F babel.cfg``), not from messages.pot, so a string added without a translation
fails here by name even if nobody re-ran the extraction.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from siskamling.core.i18n import LANGUAGES, LOCALE_DIR
from tests.helpers import html

ROOT = Path(__file__).resolve().parents[1]

# Messages shown to users that extraction cannot see. Empty since N_() marks such messages where
# they are defined (HTTP error texts, role and level labels); add here only what N_ cannot reach.
RUNTIME_MSGIDS: set[str] = set()

PLACEHOLDER = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")


@cache
def extracted() -> dict[str, list[str]]:
    """msgid -> ["file:line", ...] for every message in the source, as pybabel would extract it."""
    with (ROOT / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh, "babel.cfg")
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(ROOT, method_map, options_map):
        for msgid in message if isinstance(message, tuple) else (message,):
            if msgid:
                found.setdefault(msgid, []).append(f"{filename}:{lineno}")
    return found


@cache
def catalogue(language: str) -> Catalog:
    with (LOCALE_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=language)


def required_msgids() -> dict[str, list[str]]:
    return {**{m: ["siskamling/core/web.py (not extractable)"] for m in RUNTIME_MSGIDS}, **extracted()}


def test_extraction_finds_the_source_strings():
    found = extracted()
    # One of each kind: a template, a gettext() call, a domain exception, MfaRequired's fixed message.
    for msgid in ("Log in", "Wrong username or password.", "Area %(code)s not found", "Two-factor verification required"):
        assert msgid in found, msgid


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_catalogue_exists(language):
    assert catalogue(language).locale is not None
    assert len(catalogue(language)) > 0


def test_every_msgid_is_translated_into_indonesian():
    cat = catalogue("id")
    problems = []
    for msgid, where in sorted(required_msgids().items()):
        message = cat.get(msgid)
        if message is None:
            problems.append(f"missing     {msgid!r}  ({', '.join(where)})")
        elif message.fuzzy:
            problems.append(f"fuzzy       {msgid!r}  ({', '.join(where)})")
        elif not message.string:
            problems.append(f"untranslated {msgid!r}  ({', '.join(where)})")
    assert not problems, (
        "Strings without an Indonesian translation in siskamling/core/locale/id/LC_MESSAGES/messages.po "
        "(re-extract and update as babel.cfg describes, then translate):\n  " + "\n  ".join(problems)
    )


def test_english_catalogue_has_no_fuzzy_entries():
    # English is the source language: an empty msgstr means "as written". A fuzzy entry would be
    # ignored silently, so there must be none.
    fuzzy = [m.id for m in catalogue("en") if m.id and m.fuzzy]
    assert not fuzzy, fuzzy


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_placeholders_survive_translation(language):
    problems = []
    for message in catalogue(language):
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = {name for i in ids for name in PLACEHOLDER.findall(i)}
        for string in strings:
            got = set(PLACEHOLDER.findall(string))
            if got != wanted:
                problems.append(f"{message.id!r} -> {string!r}: placeholders {sorted(got)}, expected {sorted(wanted)}")
                continue
            # The translation must format the way the source does (a stray "%" breaks it).
            try:
                string % {name: "x" for name in wanted}
            except (ValueError, TypeError, KeyError) as exc:
                problems.append(f"{message.id!r} -> {string!r}: {exc}")
    assert not problems, "\n".join(problems)


# Through the app ---------------------------------------------------------------------------------


def test_login_page_is_indonesian_by_default(browser):
    page = html(browser.get("/login"))
    assert page.html["lang"] == "id"
    assert page.h1.get_text(strip=True) == "Masuk"
    labels = [label.get_text(strip=True) for label in page.select("#login-form label")]
    assert labels == ["Nama pengguna", "Kata sandi"]


def test_language_switch_to_english_and_back(browser):
    r = browser.post("/lang", {"lang": "en", "next": "/login"})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    page = html(browser.get(r.headers["location"]))
    assert page.html["lang"] == "en"
    assert page.h1.get_text(strip=True) == "Log in"

    r = browser.post("/lang", {"lang": "id", "next": "/login"})
    assert html(browser.get(r.headers["location"])).h1.get_text(strip=True) == "Masuk"


def test_accept_language_picks_english_without_a_cookie(browser):
    page = html(browser.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}))
    assert page.h1.get_text(strip=True) == "Log in"


def test_login_error_is_translated(browser):
    r = browser.post("/login", {"username": "bob", "password": "not the password"})
    assert html(r).select_one("[role=alert]").get_text(strip=True) == "Nama pengguna atau kata sandi salah."


def test_domain_error_message_follows_the_language(login_as):
    bob = login_as("bob")
    r = bob.get("/api/v1/areas/99.99")
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "Wilayah tidak ditemukan"

    bob.client.cookies.set("lang", "en")
    r = bob.get("/api/v1/areas/99.99")
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "Area not found"


def test_unknown_page_message_is_translated(login_as):
    bob = login_as("bob")
    assert bob.get("/api/v1/no-such-thing").json()["error"]["message"] == "Halaman tidak ditemukan"
    bob.client.cookies.set("lang", "en")
    assert bob.get("/api/v1/no-such-thing").json()["error"]["message"] == "Page not found"
