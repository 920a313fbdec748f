"""The live WebSocket: fragments from ``live/<code>/`` to the browser, for as long as the viewer's
grant lasts. Every viewing session is audited with its start and end."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from pathlib import Path

from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from siskamling.audit import service as audit
from siskamling.audit.events import LiveViewEnded, LiveViewStarted
from siskamling.audit.service import Actor
from siskamling.cameras import service as cameras
from siskamling.cameras.live import live_folder, read_index
from siskamling.cameras.models import Purpose
from siskamling.core.db import session_scope
from siskamling.core.deps import SESSION_COOKIE, principal_for_session_token, ws_viewer
from siskamling.core.errors import NotFound
from siskamling.core.scope import Principal

router = APIRouter()
POLL_S = 0.04
RECHECK_S = 15.0
MAX_LAG = 10  # fragments (3 s): further behind, a viewer jumps to the live edge
WAIT_FOR_VIDEO_S = 10.0
# Close codes the page understands (4000-4999 are the application's own).
RESTART, NOT_FOUND, NO_VIDEO, GRANT_ENDED = 4000, 4404, 4503, 4403


def _check(factory, settings, session_token: str | None, code: str) -> str | None:
    """Re-read the login session, its user's grants and the camera: still allowed to watch it
    live? Returns the camera's area path. A logout, an expired session or a grant that ended
    closes the view."""
    with session_scope(factory) as db:
        principal = principal_for_session_token(db, settings, session_token)
        if principal is None:
            return None
        try:
            return cameras.get_visible(db_session=db, principal=principal, code=code, purposes=[Purpose.live]).area_path
        except NotFound:
            return None


def _audit(factory, actor: Actor, area_path: str, event) -> None:
    with session_scope(factory) as db:
        audit.record(db_session=db, event=event, actor=actor, area_path=area_path)


@router.websocket("/cameras/{code}/live.ws")
async def live(websocket: WebSocket, code: str, principal: Principal = Depends(ws_viewer)):
    app = websocket.app
    factory, settings = app.state.session_factory, app.state.settings
    token = websocket.cookies.get(SESSION_COOKIE)
    area_path = await run_in_threadpool(_check, factory, settings, token, code)
    if area_path is None:
        await websocket.close(code=NOT_FOUND, reason="camera not found")
        return
    actor = Actor(principal.user_id, principal.username, websocket.client.host if websocket.client else None)
    await websocket.accept()
    started = time.time()
    await run_in_threadpool(_audit, factory, actor, area_path, LiveViewStarted(code=code))
    recheck = functools.partial(_check, factory, settings, token, code)
    sender = asyncio.create_task(_send(websocket, live_folder(settings.media_dir, code), recheck))
    watcher = asyncio.create_task(_until_disconnect(websocket))
    reason = "viewer left"
    try:
        done, _ = await asyncio.wait({sender, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if sender in done and sender.exception() is None:
            reason = sender.result()
    finally:
        for task in (sender, watcher):
            task.cancel()
        await run_in_threadpool(_audit, factory, actor, area_path,
                                LiveViewEnded(code=code, seconds=round(time.time() - started, 1), reason=reason))


async def _until_disconnect(websocket: WebSocket) -> None:
    """Viewers send nothing; this notices when they leave, even while no fragment is due."""
    try:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    except (WebSocketDisconnect, RuntimeError):
        pass


async def _send(websocket: WebSocket, folder: Path, recheck) -> str:
    deadline = time.monotonic() + WAIT_FOR_VIDEO_S
    index = read_index(folder)
    while index is None or not index.get("keyframes") or not index.get("codec"):
        if time.monotonic() > deadline:
            await websocket.close(code=NO_VIDEO, reason="no live video from this camera")
            return "no video"
        await websocket.send_text(json.dumps({"status": "waiting"}))
        await asyncio.sleep(0.5)
        index = read_index(folder)
    generation = index["generation"]
    await websocket.send_text(json.dumps({"status": "live", "codec": index["codec"], "generation": generation}))
    await websocket.send_bytes((folder / "init.mp4").read_bytes())
    seq = index["keyframes"][-1]  # join at the newest keyframe
    sent_since_index = 0
    next_check = time.monotonic() + RECHECK_S
    while True:
        # Checked on every pass, whether or not a fragment is waiting: a viewer who reads slowly
        # on purpose must not outstay their grant.
        if time.monotonic() > next_check:
            next_check = time.monotonic() + RECHECK_S
            if await run_in_threadpool(recheck) is None:
                await websocket.close(code=GRANT_ENDED, reason="access ended")
                return "access ended"
        if sent_since_index < MAX_LAG:
            try:
                data = (folder / f"f{seq}.m4s").read_bytes()
            except FileNotFoundError:
                data = None  # not written yet, or the camera restarted: the index says which
            if data is not None:
                await websocket.send_bytes(data)
                seq += 1
                sent_since_index += 1
                continue
        index = read_index(folder)
        sent_since_index = 0
        if index is None or index["generation"] != generation:
            await websocket.close(code=RESTART, reason="the camera reconnected")
            return "camera restarted"
        if seq < index["latest"] - MAX_LAG:  # fell behind: jump to the newest keyframe
            seq = index["keyframes"][-1]
        elif seq > index["latest"]:
            await asyncio.sleep(POLL_S)
