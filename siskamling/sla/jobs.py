"""The deadline sweep as a periodic job of every web node (safe on several at once)."""

from __future__ import annotations

import logging

from siskamling.core import scheduler
from siskamling.sla import notify as _notify  # noqa: F401  (registers the sending job)
from siskamling.sla import service as sla

log = logging.getLogger(__name__)


@scheduler.every("sla-sweep", 60.0)
def _sweep_job(app) -> None:
    result = sla.sweep_in_batches(app.state.session_factory, settings=app.state.settings)
    if result.breached or result.reminders or result.met:
        log.info("deadline sweep: %s", result)
