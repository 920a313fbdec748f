"""The live WebSocket: frames from ``live/<code>/`` to the browser, for as long as the viewer's grant
lasts. Every viewing session is audited with its start and end.

One ``Feed`` per camera per web process reads each fragment once (woken by inotify where the
kernel has it, polling otherwise) and fans it out to all of that camera's viewers: a fragment is
framed as a WebSocket message once and written to each viewer's socket as it is. A viewer who
cannot keep up (more than ``MAX_BUFFER`` bytes waiting in their socket) skips frames until the
next keyframe instead of falling behind. A new viewer starts at once with the frames since the
last keyframe.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import struct
import time
from pathlib import Path

from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from siskamling.audit import service as audit
from siskamling.audit.events import LiveViewEnded, LiveViewStarted
from siskamling.audit.service import Actor
from siskamling.audit.watch import Subscription, watch_of
from siskamling.cameras import service as cameras
from siskamling.cameras.live import (
    WANT_FILE,
    WANT_RENEW_S,
    inotify_watch,
    live_folder,
    read_index,
    split_fragment,
    touch,
)
from siskamling.cameras.models import Purpose
from siskamling.core import metrics
from siskamling.core.db import session_scope
from siskamling.core.deps import SESSION_COOKIE, principal_for_session_token, recheck_at, ws_viewer
from siskamling.core.errors import NotFound
from siskamling.core.scope import Principal

log = logging.getLogger(__name__)
router = APIRouter()
POLL_S = 0.1  # without inotify (or when it misses a write on a network disk): look this often
INDEX_EVERY_S = 1.0
RECHECK_S = 900.0  # a safety net: access is checked again when the audit log says it changed
# (audit.watch, within seconds) and exactly when a grant or the session ends
MAX_BUFFER = 4 * 1024 * 1024  # bytes queued in a viewer's socket before they skip to the next keyframe
WAIT_FOR_VIDEO_S = 10.0
RETRY_S = 5.0  # a re-check that failed (the database busy or away) is tried again this soon
MAX_HOLD_S = 0.25  # a frame held for the next message goes alone after this long (a camera paused)
# Close codes the page understands (4000-4999 are the application's own).
RESTART, NOT_FOUND, NO_VIDEO, GRANT_ENDED = 4000, 4404, 4503, 4403


def _check(factory, settings, session_token: str | None, code: str) -> tuple[str, float] | None:
    """Re-read the login session, its user's grants and the camera: still allowed to watch it
    live? Returns the camera's area path and when to check again without being woken: the
    moment a grant of the user ends (a satpam's duty) or the session expires, at the latest
    RECHECK_S from now. A logout, a revoked grant, a disabled account or the camera's new sharing
    wakes the check within seconds (``audit.watch``)."""
    with session_scope(factory) as db:
        principal = principal_for_session_token(db, settings, session_token)
        if principal is None:
            return None
        try:
            area_path = cameras.get_visible(db_session=db, principal=principal, code=code,
                                            purposes=[Purpose.live]).area_path
        except NotFound:
            return None
        return area_path, recheck_at(db, principal, session_token, RECHECK_S)


def _audit(factory, actor: Actor, area_path: str, event) -> None:
    with session_scope(factory) as db:
        audit.record(db_session=db, event=event, actor=actor, area_path=area_path)


def ws_frame(payload: bytes, text: bool = False) -> bytes:
    """A complete, unmasked server-to-client WebSocket message (RFC 6455 section 5.2)."""
    first = 0x81 if text else 0x82
    n = len(payload)
    if n < 126:
        header = struct.pack(">BB", first, n)
    elif n < 65536:
        header = struct.pack(">BBH", first, 126, n)
    else:
        header = struct.pack(">BBQ", first, 127, n)
    return header + payload


def _raw_transport(websocket: WebSocket) -> asyncio.Transport | None:
    """The viewer's socket under uvicorn (its protocol object owns ``receive``); None elsewhere
    (the test client), where messages go through ASGI instead."""
    transport = getattr(getattr(websocket._receive, "__self__", None), "transport", None)
    # Duck-typed: uvloop's transports are not subclasses of asyncio's.
    needed = ("write", "get_write_buffer_size", "is_closing")
    return transport if all(callable(getattr(transport, name, None)) for name in needed) else None


class Viewer:
    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.transport = _raw_transport(websocket)
        self.queue: asyncio.Queue | None = None if self.transport else asyncio.Queue()
        self.started = False
        self.upto = -1  # the sequence number of the last fragment this viewer was sent
        self.skipping = False
        self.ended: asyncio.Future = asyncio.get_running_loop().create_future()

    def end(self, code: int, reason: str) -> None:
        if not self.ended.done():
            self.ended.set_result((code, reason))

    def _backlog(self) -> int:
        if self.transport is not None:
            return -1 if self.transport.is_closing() else self.transport.get_write_buffer_size()
        return self.queue.qsize() * 20_000

    def send(self, frame: bytes, payload: bytes | str, key: bool) -> None:
        backlog = self._backlog()
        if backlog < 0:
            return
        if backlog > MAX_BUFFER or (self.skipping and not key):
            self.skipping = True
            metrics.live_dropped.inc()
            return
        self.skipping = False
        if self.transport is not None:
            self.transport.write(frame)
        else:
            self.queue.put_nowait(payload)

    def start(self, hello: str, init: bytes, gop: list[tuple[int, bytes, bytes]]) -> None:
        self.started = True
        self.send(ws_frame(hello.encode(), text=True), hello, True)
        self.send(ws_frame(init), init, True)
        for seq, frame, payload in gop:
            self.send(frame, payload, False)
            self.upto = seq

    async def relay(self) -> None:
        """Without a raw socket: send what the feed queued, through ASGI."""
        if self.queue is None:
            return
        while True:
            item = await self.queue.get()
            if isinstance(item, str):
                await self.websocket.send_text(item)
            else:
                await self.websocket.send_bytes(item)


class _Inotify:
    """Wakes a feed when a file is renamed into its folder (how fragments are written)."""

    IN_MOVED_TO = 0x00000080

    def __init__(self, folder: Path, event: asyncio.Event) -> None:
        self.fd, self.event = inotify_watch(folder, self.IN_MOVED_TO), event
        if self.fd >= 0:
            asyncio.get_running_loop().add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            while os.read(self.fd, 65536):
                pass
        except BlockingIOError:
            pass
        self.event.set()

    def close(self) -> None:
        if self.fd >= 0:
            asyncio.get_running_loop().remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1


class Feed:
    """One camera's live video in this process: read once, sent to every viewer."""

    def __init__(self, hub: LiveHub, code: str, folder: Path) -> None:
        self.hub, self.code, self.folder = hub, code, folder
        self.viewers: set[Viewer] = set()
        self.generation: str | None = None
        self.hello = ""
        self.init = b""
        self.gop: list[tuple[int, bytes, bytes]] = []  # (sequence number, message, payload) since the keyframe
        self.task: asyncio.Task | None = None

    def join(self, viewer: Viewer) -> None:
        self.viewers.add(viewer)
        if self.gop:
            viewer.start(self.hello, self.init, self.gop)
        else:
            waiting = json.dumps({"status": "waiting"})
            viewer.send(ws_frame(waiting.encode(), text=True), waiting, True)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())

    def leave(self, viewer: Viewer) -> None:
        self.viewers.discard(viewer)

    def _end_all(self, code: int, reason: str) -> None:
        for viewer in list(self.viewers):
            viewer.end(code, reason)
        self.viewers.clear()

    async def _run(self) -> None:
        wake = asyncio.Event()
        self.folder.mkdir(parents=True, exist_ok=True)
        watcher = _Inotify(self.folder, wake)
        loop = asyncio.get_running_loop()
        ticker = None

        def tick() -> None:  # the fallback when inotify misses a write (network disks) or is absent
            nonlocal ticker
            wake.set()
            ticker = loop.call_later(POLL_S, tick)

        tick()
        try:
            await self._pump(wake)
        except Exception:
            log.exception("live feed of %s failed", self.code)
            self._end_all(RESTART, "the live feed restarted")
        finally:
            ticker.cancel()
            watcher.close()
            if self.hub.feeds.get(self.code) is self and not self.viewers:
                del self.hub.feeds[self.code]

    async def _pump(self, wake: asyncio.Event) -> None:
        seq: int | None = None
        since = time.monotonic()
        next_touch = next_index = 0.0
        prefix = os.path.join(self.folder, "f")
        per_message = self.hub.frames_per_message
        # Frames read but not yet sent to the viewers already watching: up to ``per_message`` of them
        # go out as one message (fewer writes per viewer); a keyframe goes at once, on its own.
        pending: list[tuple[int, bytes, float | None]] = []
        held_since = 0.0
        while self.viewers:
            now = time.monotonic()
            if now >= next_touch:
                touch(self.folder, WANT_FILE)  # the recorder writes live fragments while this is fresh
                next_touch = now + WANT_RENEW_S
            if seq is None or now >= next_index:
                next_index = now + INDEX_EVERY_S
                seq = self._follow_index(seq, since)
                if pending and seq != pending[-1][0] + 1:
                    pending = []  # the feed jumped (to the newest keyframe, or a restarted camera)
                if seq is None:
                    await asyncio.sleep(0.2)
                    continue
            wake.clear()
            try:
                with open(f"{prefix}{seq}.m4s", "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                if pending and now - held_since >= MAX_HOLD_S:  # the camera paused: do not sit on a frame
                    self._deliver(pending, key=False)
                    pending = []
                await wake.wait()
                continue
            this, seq = seq, seq + 1
            arrived, key, payload = split_fragment(data)
            if key:
                if pending:
                    self._deliver(pending, key=False)
                    pending = []
                self.gop = []
            elif not self.gop:
                continue  # joined between keyframes: wait for the next one
            frame = ws_frame(payload)
            self.gop.append((this, frame, payload))
            for viewer in list(self.viewers):
                if not viewer.started and key:
                    viewer.start(self.hello, self.init, self.gop)
            if key or per_message <= 1:
                self._deliver([(this, payload, arrived)], key=key, frame=frame)
                continue
            if not pending:
                held_since = now
            pending.append((this, payload, arrived))
            if len(pending) >= per_message:
                self._deliver(pending, key=False)
                pending = []

    def _deliver(self, parts: list[tuple[int, bytes, float | None]], key: bool, frame: bytes | None = None) -> None:
        """``parts`` (consecutive fragments) as one message to every viewer watching who has not had
        them yet: a viewer who joined meanwhile got the first of them with the frames since the
        keyframe, and gets only the rest."""
        first, last = parts[0][0], parts[-1][0]
        payload = parts[0][1] if len(parts) == 1 else b"".join(p for _s, p, _a in parts)
        frame = frame or ws_frame(payload)
        for viewer in list(self.viewers):
            if not viewer.started or viewer.upto >= last:
                continue
            if viewer.upto < first:
                viewer.send(frame, payload, key)
            else:
                rest = b"".join(p for s, p, _a in parts if s > viewer.upto)
                viewer.send(ws_frame(rest), rest, key)
            viewer.upto = last
        if self.viewers:  # written to every viewer's socket by now
            wall = time.time()
            for _s, _p, arrived in parts:
                if arrived is not None:
                    metrics.live_delay.observe(max(0.0, wall - arrived))

    def _follow_index(self, seq: int | None, since: float) -> int | None:
        """Where to read next, from the index: the newest keyframe at first, after a camera
        restart (viewers reconnect) or when fragments were deleted before we read them."""
        index = read_index(self.folder)
        if not index or not index.get("codec") or not index.get("keyframes"):
            if seq is None and time.monotonic() - since > WAIT_FOR_VIDEO_S:
                self._end_all(NO_VIDEO, "no live video from this camera")
            return seq
        if index["generation"] != self.generation:
            if self.generation is not None:
                self._end_all(RESTART, "the camera reconnected")
                self.generation = None
                return None
            try:
                self.init = (self.folder / "init.mp4").read_bytes()
            except FileNotFoundError:
                return None
            self.generation = index["generation"]
            self.hello = json.dumps({"status": "live", "codec": index["codec"], "generation": self.generation})
            self.gop = []
            return index["keyframes"][-1]
        if seq is None or seq < index.get("oldest", 0):
            self.gop = []
            return index["keyframes"][-1]
        return seq


class LiveHub:
    """The live feeds of one web process (``app.state.live_hub``)."""

    def __init__(self, media_dir: Path, frames_per_message: int = 1) -> None:
        self.media_dir = media_dir
        self.frames_per_message = frames_per_message
        self.feeds: dict[str, Feed] = {}

    def join(self, code: str, viewer: Viewer) -> Feed:
        feed = self.feeds.get(code)
        if feed is None:
            feed = self.feeds[code] = Feed(self, code, live_folder(self.media_dir, code))
        feed.join(viewer)
        return feed


def hub_of(app) -> LiveHub:
    hub = getattr(app.state, "live_hub", None)
    settings = app.state.settings
    if hub is None or hub.media_dir != settings.media_dir or hub.frames_per_message != settings.live_frames_per_message:
        hub = app.state.live_hub = LiveHub(settings.media_dir, settings.live_frames_per_message)
    return hub


@router.websocket("/cameras/{code}/live.ws")
async def live(websocket: WebSocket, code: str, principal: Principal = Depends(ws_viewer)):
    app = websocket.app
    token = websocket.cookies.get(SESSION_COOKIE)
    watch = watch_of(app)
    subscription = await watch.join(principal.username, code)  # before the check: a change after it wakes us
    try:
        await _watch_live(websocket, code, principal, token, subscription)
    finally:
        watch.leave(subscription)


async def _watch_live(websocket: WebSocket, code: str, principal: Principal, token: str | None,
                      subscription: Subscription) -> None:
    app = websocket.app
    factory, settings = app.state.session_factory, app.state.settings
    checked = await run_in_threadpool(_check, factory, settings, token, code)
    if checked is None:
        await websocket.close(code=NOT_FOUND, reason="camera not found")
        return
    area_path, next_check = checked
    actor = Actor(principal.user_id, principal.username, websocket.client.host if websocket.client else None)
    await websocket.accept()
    started = time.time()
    await run_in_threadpool(_audit, factory, actor, area_path, LiveViewStarted(code=code))
    viewer = Viewer(websocket)
    feed = hub_of(app).join(code, viewer)
    metrics.live_viewers.inc()
    recheck = functools.partial(_check, factory, settings, token, code)
    tasks = {asyncio.create_task(_until_disconnect(websocket)), asyncio.create_task(_recheck(viewer, recheck, next_check, subscription))}
    if viewer.queue is not None:
        tasks.add(asyncio.create_task(viewer.relay()))
    reason = "viewer left"
    try:
        done, _ = await asyncio.wait(tasks | {viewer.ended}, return_when=asyncio.FIRST_COMPLETED)
        if viewer.ended in done:
            code_, reason = viewer.ended.result()
            if viewer.queue is not None:  # let the relay send what is queued before the close
                while not viewer.queue.empty():
                    await asyncio.sleep(0.01)
            try:
                await websocket.close(code=code_, reason=reason)
            except RuntimeError:
                pass  # the viewer had already gone
    finally:
        feed.leave(viewer)
        metrics.live_viewers.dec()
        for task in tasks:
            task.cancel()
        await run_in_threadpool(_audit, factory, actor, area_path,
                                LiveViewEnded(code=code, seconds=round(time.time() - started, 1), reason=reason))


async def _until_disconnect(websocket: WebSocket) -> None:
    """Viewers send nothing; this notices when they leave, even while no frame is due."""
    try:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    except (WebSocketDisconnect, RuntimeError):
        pass


async def _recheck(viewer: Viewer, recheck, next_check: float, subscription: Subscription) -> None:
    """Whether or not frames flow: a viewer who reads slowly on purpose must not outstay their grant."""
    while True:
        woken = await subscription.wait(next_check - time.monotonic())
        if not woken and time.monotonic() < next_check:
            continue
        try:
            result = await run_in_threadpool(recheck)
        except Exception:  # noqa: BLE001 - the database did not answer: the view goes on, and asks again soon
            log.warning("could not check a live viewer's access again", exc_info=True)
            next_check = time.monotonic() + RETRY_S
            continue
        if result is None:
            viewer.end(GRANT_ENDED, "access ended")
            return
        next_check = result[1]
