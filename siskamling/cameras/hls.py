"""HLS for browsers without Media Source Extensions (iPhones before iOS 17.1, some TVs): the same
live fragments the WebSocket sends, grouped from keyframe to keyframe into fMP4 HLS segments (one
camera GOP, about a second each). Latency is a few seconds instead of a fraction of one; that is
the price of plain HLS.

Every request (playlist, init, segment) is authorised like the WebSocket and the snapshots: a copied
link stops working the moment its owner's grant or login ends. A viewing session starts with the
first playlist a user fetches for a camera and ends 30 s after their last request; both ends are
audited, as for the WebSocket.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from siskamling.audit import service as audit
from siskamling.audit.events import LiveViewEnded, LiveViewStarted
from siskamling.audit.service import Actor
from siskamling.cameras.api import LiveCamera
from siskamling.cameras.live import WANT_FILE, live_folder, read_index, split_fragment, touch
from siskamling.core.db import session_scope
from siskamling.core.deps import CurrentUser, SessionDep, SettingsDep, actor_of
from siskamling.core.errors import NotFound, Unavailable

router = APIRouter(include_in_schema=False)
PLAYLIST = "application/vnd.apple.mpegurl"
FRESH_S = 12.0  # an index older than this (several keyframe intervals): the recorder stopped writing
WAIT_S = 4.0  # how long a first playlist request waits for the recorder to start
SESSION_IDLE_S = 30.0
NO_STORE = {"Cache-Control": "no-store, private"}


def segments(index: dict) -> list[tuple[int, int, int, float]]:
    """(number, first fragment, end fragment, seconds) of each complete GOP in the index; the
    number is the keyframe's ordinal since the recorder connected, stable across playlists."""
    keys, times = index.get("keyframes", []), index.get("times", [])
    base = index.get("keyframe_number", 0)
    return [(base + i, keys[i], keys[i + 1], max(times[i + 1] - times[i], 0.001))
            for i in range(len(keys) - 1)]


def playlist(index: dict, code: str) -> str:
    parts = segments(index)
    generation = index["generation"]
    target = max(1, math.ceil(max((p[3] for p in parts), default=1.0)))
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{target}",
             f"#EXT-X-MEDIA-SEQUENCE:{parts[0][0] if parts else 0}", "#EXT-X-INDEPENDENT-SEGMENTS",
             f'#EXT-X-MAP:URI="/cameras/{code}/hls/{generation}/init.mp4"']
    for number, _, _, seconds in parts:
        lines += [f"#EXTINF:{seconds:.3f},", f"/cameras/{code}/hls/{generation}/{number}.m4s"]
    return "\n".join(lines) + "\n"


async def _fresh_index(folder) -> dict:
    """The index once the recorder writes live fragments (asked for by touching want-live) and has
    at least one complete segment."""
    deadline = time.monotonic() + WAIT_S
    touch(folder, WANT_FILE)
    while True:
        index = read_index(folder)
        if index and time.time() - index.get("updated", 0) < FRESH_S and len(index.get("keyframes", [])) >= 2:
            return index
        if time.monotonic() > deadline:
            raise Unavailable("No live video from this camera right now")
        await asyncio.sleep(0.2)


@dataclass
class _View:
    actor: Actor
    area_path: str
    started: float
    last: float


class HlsViews:
    """Open HLS viewing sessions of this process, ended (and audited) after 30 s without a request."""

    def __init__(self, factory) -> None:
        self.factory = factory
        self.views: dict[tuple[int, str], _View] = {}
        self.task: asyncio.Task | None = None

    def seen(self, user_id: int, code: str, actor: Actor, area_path: str) -> bool:
        """Note a request; True when it starts a session."""
        now = time.monotonic()
        view = self.views.get((user_id, code))
        if view is not None:
            view.last = now
            return False
        self.views[(user_id, code)] = _View(actor, area_path, time.time(), now)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._sweep())
        return True

    async def _sweep(self) -> None:
        while self.views:
            await asyncio.sleep(min(5.0, SESSION_IDLE_S / 3))
            await asyncio.to_thread(self.end_idle, time.monotonic())

    def end_idle(self, now: float, idle_s: float = SESSION_IDLE_S) -> None:
        for key, view in list(self.views.items()):
            if now - view.last >= idle_s and self.views.pop(key, None) is view:
                with session_scope(self.factory) as db:
                    audit.record(db_session=db, actor=view.actor, area_path=view.area_path,
                                 event=LiveViewEnded(code=key[1], seconds=round(time.time() - view.started, 1),
                                                     reason="hls viewer left"))


def views_of(app) -> HlsViews:
    views = getattr(app.state, "hls_views", None)
    if views is None:
        views = app.state.hls_views = HlsViews(app.state.session_factory)
    return views


@router.get("/cameras/{code}/live.m3u8")
async def live_playlist(request: Request, camera: LiveCamera, db: SessionDep, settings: SettingsDep,
                        principal: CurrentUser):
    code, area_path = camera.code, camera.area_path
    actor = actor_of(request, principal)
    started = views_of(request.app).seen(principal.user_id, code, actor, area_path)

    def record_and_commit() -> None:  # database work in the threadpool, never on the event loop
        if started:
            audit.record(db_session=db, actor=actor, area_path=area_path, event=LiveViewStarted(code=code))
        db.commit()  # nothing held while waiting for the recorder

    await run_in_threadpool(record_and_commit)
    index = await _fresh_index(live_folder(settings.media_dir, code))
    return Response(playlist(index, code), media_type=PLAYLIST, headers=NO_STORE)


def _index_for(settings, code: str, generation: str) -> tuple[dict, object]:
    folder = live_folder(settings.media_dir, code)
    index = read_index(folder)
    if not index or index["generation"] != generation:
        raise NotFound("This live segment is gone; reload the playlist")
    return index, folder


def _still_watching(request: Request, principal, code: str) -> None:
    view = views_of(request.app).views.get((principal.user_id, code))
    if view is not None:
        view.last = time.monotonic()


@router.get("/cameras/{code}/hls/{generation}/init.mp4")
def live_init(request: Request, camera: LiveCamera, settings: SettingsDep, principal: CurrentUser, generation: str):
    _, folder = _index_for(settings, camera.code, generation)
    _still_watching(request, principal, camera.code)
    try:
        data = (folder / "init.mp4").read_bytes()
    except FileNotFoundError:
        raise NotFound("This live segment is gone; reload the playlist") from None
    return Response(data, media_type="video/mp4", headers=NO_STORE)


@router.get("/cameras/{code}/hls/{generation}/{number}.m4s")
def live_segment(request: Request, camera: LiveCamera, settings: SettingsDep, principal: CurrentUser,
                 generation: str, number: int):
    index, folder = _index_for(settings, camera.code, generation)
    _still_watching(request, principal, camera.code)
    touch(folder, WANT_FILE)
    for n, first, end, _ in segments(index):
        if n == number:
            break
    else:
        raise NotFound("This live segment is gone; reload the playlist")
    body = bytearray()
    try:
        for seq in range(first, end):
            body += split_fragment((folder / f"f{seq}.m4s").read_bytes())[2]
    except FileNotFoundError:
        raise NotFound("This live segment is gone; reload the playlist") from None
    return Response(bytes(body), media_type="video/mp4", headers=NO_STORE)
