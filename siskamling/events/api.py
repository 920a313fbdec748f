"""Server-Sent Events: dashboards receive the events their user may see, as they happen."""

from __future__ import annotations

import json
import logging
import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from siskamling.audit.watch import watch_of
from siskamling.core.db import read_scope, session_scope
from siskamling.core.deps import SESSION_COOKIE, principal_for_session_token, recheck_at, stream_viewer
from siskamling.core.errors import Unauthenticated
from siskamling.core.scope import Principal
from siskamling.events import service as events

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
POLL_S = 1.0
RETRY_S = 5.0  # a re-check that failed is tried again this soon
RECHECK_S = 900.0  # a safety net: woken by the access watch, and when a grant or the session ends
RESUME_WINDOW = 100  # events a reconnecting stream may catch up on
LOOK_BACK = 50  # ids re-read each poll: commits out of id order on PostgreSQL


def _principal_now(factory, settings, token: str | None) -> tuple[Principal | None, float]:
    """The stream's user as of now (None once they logged out or their session ended), and when to
    look again unless woken."""
    with session_scope(factory) as db:
        principal = principal_for_session_token(db, settings, token)
        return principal, (recheck_at(db, principal, token, RECHECK_S) if principal else 0.0)


def _fetch(factory, principal, after_id: int):
    with read_scope(factory) as db:  # polled once a second per stream: never SQLite's write lock
        return [(e.id, e.kind, e.payload, e.created_at.isoformat())
                for e in events.since(db_session=db, principal=principal, after_id=after_id)]


def _start_id(factory) -> int:
    with read_scope(factory) as db:
        return events.latest_id(db_session=db)


@router.get("/events/stream")
async def stream(request: Request, principal: Principal = Depends(stream_viewer)):
    """``text/event-stream`` of new events (no history: the pages show the current state)."""
    factory, settings = request.app.state.session_factory, request.app.state.settings
    token = request.cookies.get(SESSION_COOKIE)
    watch = watch_of(request.app)
    subscription = await watch.join(principal.username)  # before the check below: a change after it wakes us
    try:
        principal, recheck = await run_in_threadpool(_principal_now, factory, settings, token)
        if principal is None:
            raise Unauthenticated("Please log in")
        newest = await run_in_threadpool(_start_id, factory)
    except BaseException:
        watch.leave(subscription)
        raise
    last_event = request.headers.get("last-event-id")
    # A reconnecting browser resumes where it was, but not further back than a short window.
    after = max(int(last_event), newest - RESUME_WINDOW) if last_event and last_event.isdigit() else newest
    after = min(after, newest)

    async def body():
        nonlocal principal, recheck
        seen: dict[int, None] = {}
        low = after
        try:
            yield ": connected\n\n"
            while not await request.is_disconnected():
                # Ids are handed out at insert and become visible at commit, so on PostgreSQL a lower
                # id can appear after a higher one: look back over a window and skip what was sent.
                for event_id, kind, payload, at in await run_in_threadpool(_fetch, factory, principal, low):
                    if event_id in seen:
                        continue
                    seen[event_id] = None
                    data = json.dumps({**payload, "at": at}, ensure_ascii=False)
                    yield f"id: {event_id}\nevent: {kind}\ndata: {data}\n\n"
                if seen:
                    low = max(after, max(seen) - LOOK_BACK)
                    for old in [i for i in seen if i <= low]:
                        del seen[old]
                if await subscription.wait(POLL_S) or time.monotonic() > recheck:
                    try:
                        principal, recheck = await run_in_threadpool(_principal_now, factory, settings, token)
                    except Exception:  # noqa: BLE001 - the database did not answer: keep the stream, ask again soon
                        log.warning("could not check an event stream's access again", exc_info=True)
                        recheck = time.monotonic() + RETRY_S
                        continue
                    if principal is None:
                        return
        finally:
            watch.leave(subscription)

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
