"""Decoded video for analytics: the camera's sub-stream (or a small main stream) decoded in the
recorder process, scaled to at most 640x360 grey, at 5 frames per second, and handed to a
consumer. The built-in consumer is a motion detector whose events go on the recordings timeline;
detectors of people or vehicles plug in at the same place (``Consumer``).

Decoding runs in a thread of the recorder process (FFmpeg releases the GIL while it decodes): the
recorder's own loop, which stream-copies and delivers live video, never waits for it. When it
falls behind, it drops work at the next keyframe instead of queueing without bound.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import av
import numpy as np

log = logging.getLogger(__name__)
MAX_WIDTH, MAX_HEIGHT = 640, 360
DEFAULT_FPS = 5.0
SMALL_MAIN_PIXELS = 800 * 480  # a main stream this small is decoded itself when there is no sub-stream
STATS_FILE = "analytics.json"
STATS_EVERY_S = 2.0


class Consumer(Protocol):
    def __call__(self, grey: np.ndarray, at: datetime) -> None: ...


@dataclass
class MotionSettings:
    pixel_delta: int = 25  # grey levels a pixel must change by to count as changed
    area: float = 0.003  # share of the picture that must change: motion (a person far off is ~0.5 %)
    min_samples: int = 2  # consecutive samples above `area` to start an event
    quiet_s: float = 3.0  # an event ends after this long without motion


class MotionDetector:
    """Frame differencing on a 4x-subsampled grey picture: cheap (well under a millisecond per
    frame) and good enough to mark "something moved here" on a timeline."""

    def __init__(self, on_start: Callable[[datetime], object], on_end: Callable[[object, datetime, float], None],
                 settings: MotionSettings | None = None) -> None:
        self.on_start, self.on_end = on_start, on_end
        self.s = settings or MotionSettings()
        self.previous: np.ndarray | None = None
        self.above = 0
        self.event = None
        self.peak = 0.0
        self.last_motion: datetime | None = None

    def __call__(self, grey: np.ndarray, at: datetime) -> None:
        small = grey[::4, ::4].astype(np.int16)
        if self.previous is None or self.previous.shape != small.shape:
            self.previous = small
            return
        changed = float(np.count_nonzero(np.abs(small - self.previous) > self.s.pixel_delta)) / small.size
        self.previous = small
        if changed >= self.s.area:
            self.above += 1
            self.last_motion = at
            self.peak = max(self.peak, changed)
            if self.event is None and self.above >= self.s.min_samples:
                self.event = self.on_start(at)
        else:
            self.above = 0
        if self.event is not None and self.last_motion and (at - self.last_motion).total_seconds() >= self.s.quiet_s:
            self.close(self.last_motion)

    def close(self, at: datetime | None = None) -> None:
        """End the event in progress (the recorder stopping ends it at the last motion seen)."""
        if self.event is not None:
            self.on_end(self.event, at or self.last_motion or datetime.now(UTC), round(self.peak, 4))
        self.event, self.peak, self.above = None, 0.0, 0


def scaled_size(width: int, height: int) -> tuple[int, int]:
    """At most 640x360, aspect kept, even numbers."""
    factor = min(1.0, MAX_WIDTH / width, MAX_HEIGHT / height)
    return max(2, int(width * factor) // 2 * 2), max(2, int(height * factor) // 2 * 2)


YUV_FORMATS = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12"}


def luma(frame, size: tuple[int, int]) -> np.ndarray:
    """The picture in grey at ``size``: a frame already that size gives its Y plane as it is
    (a view, no conversion: 0.003 ms instead of 0.24 ms for 640x360); others are scaled."""
    if (frame.width, frame.height) == size and frame.format.name in YUV_FORMATS:
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)
        return rows[:, :frame.width]
    return frame.reformat(width=size[0], height=size[1], format="gray").to_ndarray()


class FrameSampler:
    """Decodes every packet (P-frames need their references) and passes on one frame per
    1/fps seconds, converted to grey at most 640x360."""

    def __init__(self, codec: str, extradata: bytes | None, consumer: Consumer, fps: float = DEFAULT_FPS,
                 stats_folder: Path | None = None) -> None:
        self.decoder = av.CodecContext.create(codec, "r")
        if extradata:
            self.decoder.extradata = extradata
        self.decoder.thread_count = 1  # one core's share per camera; many cameras run side by side
        self.consumer, self.interval = consumer, 1.0 / fps
        self.next_due = 0.0
        self.stats_folder = stats_folder
        self.decoded = self.analysed = 0
        self.window_start, self.window_analysed = time.monotonic(), 0
        self.next_stats = time.monotonic() + STATS_EVERY_S
        self.size: tuple[int, int] | None = None

    def packet(self, packet) -> None:
        try:
            frames = self.decoder.decode(packet)
        except av.error.FFmpegError:
            return  # a damaged packet: decoding resumes by itself at the next keyframe
        now = time.monotonic()
        for frame in frames:
            self.decoded += 1
            if now < self.next_due:
                continue
            self.next_due = max(self.next_due + self.interval, now - self.interval)
            if self.size is None:
                self.size = scaled_size(frame.width, frame.height)
            grey = luma(frame, self.size)
            self.analysed += 1
            self.window_analysed += 1
            self.consumer(grey, datetime.now(UTC))
        if self.stats_folder is not None and now >= self.next_stats:
            self._stats(now)

    def _stats(self, now: float) -> None:
        fps = self.window_analysed / max(now - self.window_start, 1e-6)
        self.window_start, self.window_analysed, self.next_stats = now, 0, now + STATS_EVERY_S
        tmp = self.stats_folder / (STATS_FILE + ".tmp")
        tmp.write_text(json.dumps({"frames": self.analysed, "decoded": self.decoded, "fps": round(fps, 2),
                                   "size": self.size, "updated": time.time()}))
        os.replace(tmp, self.stats_folder / STATS_FILE)


class PacketTap:
    """Analytics on the main stream's own packets (no second connection): the recorder offers
    copies; a thread decodes them. A full queue drops packets until the next keyframe."""

    def __init__(self, sampler: FrameSampler, depth: int = 90) -> None:
        self.sampler = sampler
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.resync = False
        self.dropped = 0
        self.thread = threading.Thread(target=self._run, name="analytics", daemon=True)
        self.thread.start()

    def offer(self, packet) -> None:
        if self.resync and not packet.is_keyframe:
            return
        copy = av.Packet(bytes(packet))
        copy.pts, copy.dts, copy.time_base = packet.pts, packet.dts, packet.time_base
        try:
            self.queue.put_nowait(copy)
            self.resync = False
        except queue.Full:
            self.resync = True
            self.dropped += 1

    def _run(self) -> None:
        while (packet := self.queue.get()) is not None:
            self.sampler.packet(packet)

    def close(self) -> None:
        try:
            self.queue.put(None, timeout=1.0)
        except queue.Full:
            pass
        self.thread.join(timeout=5.0)


class SubstreamReader:
    """Analytics on the camera's sub-stream: its own connection, read in a thread, reconnecting
    with backoff, until stopped."""

    def __init__(self, open_source: Callable[[], object], consumer: Consumer, stats_folder: Path,
                 should_stop: Callable[[], bool], fps: float = DEFAULT_FPS, realtime: bool = False) -> None:
        self.open_source, self.consumer, self.stats_folder = open_source, consumer, stats_folder
        self.should_stop, self.fps, self.realtime = should_stop, fps, realtime
        self.stopped = threading.Event()
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, name="substream", daemon=True)
        self.thread.start()

    def _stop(self) -> bool:
        return self.stopped.is_set() or self.should_stop()

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop():
            try:
                self._read_once()
                backoff = 1.0
                if self.realtime:
                    continue  # a file played as a camera ended: loop it, like the recorder does
            except (av.error.FFmpegError, OSError) as exc:
                self.error = getattr(exc, "strerror", None) or type(exc).__name__
                log.warning("sub-stream failed: %s", self.error)
            if self.stopped.wait(backoff):
                return
            backoff = min(backoff * 2, 30.0)

    def _read_once(self) -> None:
        container = self.open_source()
        try:
            stream = container.streams.video[0]
            sampler = FrameSampler(stream.codec_context.name, stream.codec_context.extradata, self.consumer,
                                   self.fps, self.stats_folder)
            tb, first, wall = float(stream.time_base), None, time.monotonic()
            for packet in container.demux(stream):
                if self._stop():
                    return
                if packet.dts is None:
                    continue
                if self.realtime:  # a file played as a camera: at its own pace
                    t = packet.dts * tb
                    first = t if first is None else first
                    delay = (t - first) - (time.monotonic() - wall)
                    if delay > 0 and self.stopped.wait(delay):
                        return
                sampler.packet(packet)
        finally:
            container.close()

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5.0)
