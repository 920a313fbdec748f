"""The deadline sweep as a periodic job of every web node (safe on several at once)."""

from __future__ import annotations

import logging

from siskamling.core import scheduler
from siskamling.core.db import session_scope
from siskamling.sla import service as sla

log = logging.getLogger(__name__)


@scheduler.every("sla-sweep", 60.0)
def _sweep_job(app) -> None:
    with session_scope(app.state.session_factory) as db:
        result = sla.sweep(db_session=db)
    if result.breached or result.reminders or result.met:
        log.info("deadline sweep: %s", result)
