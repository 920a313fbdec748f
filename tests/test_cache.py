"""The short-lived per-process copies intake reads (core.cache): never a row another request
should not see, never unbounded."""

from __future__ import annotations

from sqlalchemy import insert

from siskamling.core import cache
from siskamling.reports import catalogue
from siskamling.reports.models import Category


def test_a_value_loaded_while_a_change_commits_is_not_kept():
    recent = cache.Recent()
    loads = []

    def load_during_a_change():
        loads.append(1)
        cache.clear_all()  # an admin's change committed while this request read the old row
        return "old"

    assert recent.get("k", load_during_a_change) == "old"
    assert recent.get("k", lambda: "new") == "new", "the old row was not kept"
    assert recent.get("k", lambda: "newer") == "new", "the new one is"


def test_a_session_that_changed_cached_rows_reads_past_the_cache_and_fills_nothing(db):
    from sqlalchemy import text

    recent = cache.Recent()
    assert recent.get("k", lambda: "committed") == "committed"
    db.execute(text("SELECT 1"))  # in a transaction, as a service that changes a category is
    cache.changed(db)
    assert recent.get("k", lambda: "mine, uncommitted", db) == "mine, uncommitted"
    assert recent.get("k", lambda: "theirs") == "theirs", "the uncommitted row reached nobody else"
    db.rollback()
    assert not db.info.get(cache.CHANGED)


def test_unknown_and_overlong_category_codes_are_not_kept(db):
    import pytest

    from siskamling.core.errors import NotFound

    for code in ("belum_ada", "x" * 100_000):
        with pytest.raises(NotFound):
            catalogue.intake_category(db_session=db, code=code)
    assert catalogue._recent_categories._data == {}
    # A category created on another node (no cache of this process cleared) is usable at once.
    db.execute(insert(Category).values(code="belum_ada", name_id="Belum ada", name_en="Not yet", group="umum",
                                       description="", keywords="", emergency=False, attributes=[], active=True,
                                       sort_order=99))
    assert catalogue.intake_category(db_session=db, code="belum_ada").name_id == "Belum ada"
