"""Camera requests are scored again every few hours: new cameras, reports and incidents change
their coverage gap and need, and the reviewers' list is sorted by the score."""

from __future__ import annotations

import logging

from siskamling.core import scheduler
from siskamling.core.db import session_scope
from siskamling.placement import assess

log = logging.getLogger(__name__)


@scheduler.every("placement-rescore", 6 * 3600.0)
def _rescore_job(app) -> None:
    with session_scope(app.state.session_factory) as db:
        count = assess.reassess_all(db_session=db, settings=app.state.settings)
    if count:
        log.info("camera requests scored again: %d", count)
