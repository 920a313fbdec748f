"""Server-Sent Events: dashboards receive the events their user may see, as they happen."""

from __future__ import annotations

import asyncio
import json
import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from siskamling.core.db import session_scope
from siskamling.core.deps import stream_viewer
from siskamling.core.scope import Principal
from siskamling.events import service as events

router = APIRouter(include_in_schema=False)
POLL_S = 1.0
RECHECK_S = 30.0


def _principal_now(factory, user_id: int):
    from siskamling.accounts import service as accounts
    from siskamling.accounts.models import User

    with session_scope(factory) as db:
        user = db.get(User, user_id)
        return accounts.principal_for(db_session=db, user=user) if user and user.is_active else None


def _fetch(factory, principal, after_id: int):
    with session_scope(factory) as db:
        return [(e.id, e.kind, e.payload, e.created_at.isoformat())
                for e in events.since(db_session=db, principal=principal, after_id=after_id)]


def _start_id(factory) -> int:
    with session_scope(factory) as db:
        return events.latest_id(db_session=db)


@router.get("/events/stream")
async def stream(request: Request, principal: Principal = Depends(stream_viewer)):
    """``text/event-stream`` of new events (no history: the pages show the current state)."""
    factory = request.app.state.session_factory
    last_event = request.headers.get("last-event-id")
    after = int(last_event) if last_event and last_event.isdigit() else await run_in_threadpool(_start_id, factory)

    async def body():
        nonlocal after, principal
        recheck = time.monotonic() + RECHECK_S
        yield ": connected\n\n"
        while not await request.is_disconnected():
            for event_id, kind, payload, at in await run_in_threadpool(_fetch, factory, principal, after):
                after = event_id
                yield f"id: {event_id}\nevent: {kind}\ndata: {json.dumps({**payload, 'at': at}, ensure_ascii=False)}\n\n"
            if time.monotonic() > recheck:
                principal = await run_in_threadpool(_principal_now, factory, principal.user_id)
                if principal is None:
                    return
                recheck = time.monotonic() + RECHECK_S
            await asyncio.sleep(POLL_S)

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
