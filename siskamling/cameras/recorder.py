"""Recording one camera: stream-copy into fixed-length fragmented-MP4 segments and measure the
camera's health while doing it. No decoding, no re-encoding.

Two engines (setting ``recording_engine``):

- ``ffmpeg`` (the default): FFmpeg's segmenter in a child process writes the segments
  (segmenter.py); this process indexes them, reports health from the child's progress and
  detects stalls. Nobody's packets enter Python while nobody watches. While someone watches
  live video or the camera wall asks for fresh snapshots, a second connection to the camera
  (``LiveIngest``, PyAV) feeds live delivery and snapshots, and ends when they stop asking.
  Between views a thumbnail is taken from a finished segment once a minute.
- ``pyav``: this process demuxes the camera once and feeds the segments, live delivery,
  snapshots and analytics from that one connection: one camera session at all times, at about
  twice the CPU. A camera whose main stream is analysed (no sub-stream, small enough to decode)
  is always recorded this way, since its every packet enters Python anyway.

A segment is written as ``….mp4.part`` and renamed when it is complete, then indexed in the
database; a recorder killed mid-segment (even with SIGKILL) leaves finished segments intact and
at most one ``.part`` behind, which the next start deletes.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import av

from siskamling.cameras.analytics import SMALL_MAIN_PIXELS, FrameSampler, MotionDetector, PacketTap, SubstreamReader
from siskamling.cameras.live import WANT_FILE, WANT_SNAPSHOT_FILE, InterestWatch, LiveWriter, live_folder, wanted
from siskamling.cameras.models import Health
from siskamling.cameras.segmenter import PROGRESS_S, Finished, NoFfmpeg, Progress, Segmenter, find_ffmpeg

log = logging.getLogger(__name__)
FRAGMENTED_MP4 = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
SUPPORTED_CODECS = {"h264", "hevc"}


class SourceError(Exception):
    """The camera cannot be read now (unreachable, refused, stalled, unsupported); retried later."""


@dataclass
class RecorderConfig:
    media_dir: Path
    segment_seconds: float = 10.0
    open_timeout_s: float = 8.0
    stall_timeout_s: float = 5.0  # no packet for this long: the stream is stalled (detected within 10 s)
    health_interval_s: float = 5.0  # fps, bitrate, last frame to the database (the first after 2 s)
    first_health_s: float = 2.0
    realtime_files: bool = True  # pace file:// sources like a live camera, looping at the end
    rtsp_transport: str = "tcp"
    analytics_fps: float = 5.0  # decoded frames per second handed to analytics (0: none)
    snapshot_every_s: float = 300.0  # a thumbnail this often when nobody looks (looking makes them fresh)
    engine: str = "ffmpeg"  # "ffmpeg": FFmpeg's segmenter records; "pyav": this process does (see above)
    ffmpeg: str | None = None  # the ffmpeg program (None: found by segmenter.find_ffmpeg)
    first_snapshot_s: float = 3.0  # how long the opening probe waits for a keyframe to take a snapshot of


@dataclass
class HealthReport:
    health: Health
    message: str | None = None
    fps: float | None = None
    bitrate_kbps: float | None = None
    last_frame_at: datetime | None = None
    codec: str | None = None
    width: int | None = None
    height: int | None = None


@dataclass
class Callbacks:
    """How a recorder talks to the rest of the system (the database, in production)."""

    on_segment: Callable[[datetime, datetime, Path, int], None]
    on_health: Callable[[HealthReport], None]
    should_stop: Callable[[], bool] = field(default=lambda: False)
    on_motion_start: Callable[[datetime], object] | None = None  # returns a handle for on_motion_end
    on_motion_end: Callable[[object, datetime, float], None] | None = None


def source_url(url: str, credentials: tuple[str, str] | None) -> str:
    """The address PyAV opens: credentials go into RTSP/HTTP URLs here and nowhere else."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return parts.path
    if not credentials:
        return url
    user, password = (quote(c, safe="") for c in credentials)
    return urlunsplit((parts.scheme, f"{user}:{password}@{parts.netloc}", parts.path, parts.query, ""))


def ffmpeg_reason(exc: Exception) -> str:
    """FFmpeg's own words for an error, without the URL PyAV appends (it carries credentials)."""
    return getattr(exc, "strerror", None) or type(exc).__name__


def redact(text: str, credentials: tuple[str, str] | None) -> str:
    for secret in credentials or ():
        if secret:
            text = text.replace(secret, "***").replace(quote(secret, safe=""), "***")
    return text


class SegmentWriter:
    """One segment at a time; timestamps rebased so each file starts at zero."""

    def __init__(self, folder: Path, code: str, template) -> None:
        self.folder, self.code, self.template = folder, code, template
        self.container = None
        self.path: Path | None = None
        self.started_at: datetime | None = None
        self.first_dts = 0
        self.first_time = 0.0
        self.last_dts: int | None = None

    @property
    def is_open(self) -> bool:
        return self.container is not None

    def open(self, started_at: datetime, first_dts: int, first_time: float) -> None:
        day = self.folder / started_at.strftime("%Y/%m/%d/%H")
        day.mkdir(parents=True, exist_ok=True)
        self.path = day / f"{self.code}-{started_at.strftime('%Y%m%dT%H%M%S.%fZ')}.mp4.part"
        self.container = av.open(str(self.path), "w", format="mp4", options=FRAGMENTED_MP4)
        self.stream = self.container.add_stream_from_template(self.template)
        self.started_at, self.first_dts, self.first_time = started_at, first_dts, first_time
        self.last_dts = None

    def write(self, packet) -> None:
        dts = packet.dts - self.first_dts
        pts = (packet.pts if packet.pts is not None else packet.dts) - self.first_dts
        # Cameras send parameter sets as packets of their own with a repeated timestamp; the MP4
        # muxer needs strictly increasing DTS, so such a packet moves one tick later.
        if self.last_dts is not None and dts <= self.last_dts:
            dts = self.last_dts + 1
        packet.dts, packet.pts = dts, max(pts, dts)
        self.last_dts = dts
        packet.stream = self.stream
        self.container.mux(packet)

    def close(self) -> tuple[Path, int]:
        self.container.close()
        final = self.path.with_suffix("")  # drop .part: the segment is complete
        os.replace(self.path, final)
        self.container = None
        return final, final.stat().st_size


def clean_partials(folder: Path) -> int:
    """Delete segments a killed recorder left unfinished."""
    removed = 0
    for part in folder.rglob("*.mp4.part"):
        part.unlink(missing_ok=True)
        removed += 1
    return removed


class Snapshotter:
    """A fresh JPEG of the camera, from keyframes only (no full decode): ``live/<code>/snapshot.jpg``,
    replaced atomically so readers never see half a file. At most once a second while someone
    looks (the snapshot endpoint touches ``want-snapshot``), otherwise every ``idle_interval_s``."""

    def __init__(self, folder: Path, template, min_interval_s: float = 1.0, idle_interval_s: float = 60.0) -> None:
        self.folder, self.path = folder, folder / "snapshot.jpg"
        folder.mkdir(parents=True, exist_ok=True)
        self.decoder = av.CodecContext.create(template.codec_context.name, "r")
        self.decoder.extradata = template.codec_context.extradata
        self.decoder.thread_count = 1
        self.encoder = None
        self.pictures = 0
        self.min_interval_s, self.idle_interval_s = min_interval_s, idle_interval_s
        self.last = -1e9

    def offer(self, packet) -> None:
        if not packet.is_keyframe:
            return
        since = time.monotonic() - self.last
        if since < self.min_interval_s or (since < self.idle_interval_s and not wanted(self.folder, WANT_SNAPSHOT_FILE)):
            return
        try:
            frames = self.decoder.decode(packet)
        except av.error.FFmpegError:
            return  # a damaged keyframe: the next one will do
        for frame in frames:
            self._write(frame)

    def due(self) -> bool:
        """Time for a thumbnail although nobody looks."""
        return time.monotonic() - self.last >= self.idle_interval_s

    def drain(self) -> None:
        """The pictures a decoder still holds (one that waits for later frames before its first
        picture); it decodes nothing after this."""
        try:
            for frame in self.decoder.decode(None):
                self._write(frame)
        except av.error.FFmpegError:
            pass

    def keyframes_done(self) -> None:
        """No more keyframes will be offered (only ``from_file`` from now on): the decoder and
        its picture buffers, about 10 MB at 720p, go."""
        self.decoder = None

    def from_file(self, path: Path) -> None:
        """A thumbnail from the first picture of a finished segment."""
        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                stream.codec_context.thread_count = 1
                for frame in container.decode(stream):
                    self._write(frame)
                    return
        except (av.error.FFmpegError, IndexError, OSError) as exc:
            log.debug("no thumbnail from %s: %s", path.name, exc)

    def _write(self, frame) -> None:
        if self.encoder is None:
            self.encoder = av.CodecContext.create("mjpeg", "w")
            self.encoder.width, self.encoder.height = frame.width, frame.height
            self.encoder.pix_fmt = "yuvj420p"
            self.encoder.time_base = Fraction(1, 25)
            self.encoder.options = {"q:v": "5"}
            self.encoder.thread_count = 1  # one picture now and then: no threads of its own (and their memory)
        picture = frame.reformat(format="yuvj420p", width=self.encoder.width, height=self.encoder.height)
        # Pictures come from different sources (live packets, segment files) without a common
        # clock; the encoder wants increasing timestamps.
        self.pictures += 1
        picture.pts, picture.time_base = self.pictures, self.encoder.time_base
        data = b"".join(bytes(p) for p in self.encoder.encode(picture))
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, self.path)
        self.last = time.monotonic()


class Meter:
    """Frames and bytes over a sliding window, for fps and bitrate."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.frames = 0
        self.bytes = 0
        self.since = time.monotonic()

    def add(self, size: int) -> None:
        self.frames += 1
        self.bytes += size

    def read(self) -> tuple[float, float]:
        elapsed = max(time.monotonic() - self.since, 1e-6)
        return self.frames / elapsed, self.bytes * 8 / 1000 / elapsed


class CameraRecorder:
    def __init__(self, *, code: str, url: str, credentials: tuple[str, str] | None, config: RecorderConfig,
                 callbacks: Callbacks, substream_url: str | None = None) -> None:
        self.code, self.url, self.credentials = code, url, credentials
        self.substream_url = substream_url
        self.config, self.cb = config, callbacks
        self.folder = config.media_dir / "recordings" / code
        self.live_folder = live_folder(config.media_dir, code)
        self.is_file = urlsplit(url).scheme == "file"
        self.runs = 0  # FFmpeg children started: names their files apart

    def run(self) -> None:
        """Record until told to stop, reconnecting with backoff (1 s doubling to 30 s, each wait
        drawn between half and all of it, so cameras that lost a shared link, a switch or a
        recorder host, do not all knock again at the same instant)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        clean_partials(self.folder)
        backoff = 1.0
        while not self.cb.should_stop():
            try:
                self.record_once()
                backoff = 1.0
            except SourceError as exc:
                self.cb.on_health(HealthReport(Health.offline, redact(str(exc), self.credentials)))
                deadline = time.monotonic() + backoff * random.uniform(0.5, 1.0)
                while time.monotonic() < deadline and not self.cb.should_stop():
                    time.sleep(0.2)
                backoff = min(backoff * 2, 30.0)

    def _open(self, url: str | None = None):
        url = url or self.url
        # A camera's SDP or playlist says most of what FFmpeg needs: one second of analysis, not five.
        options = {"analyzeduration": "1000000"}
        if url.startswith("rtsp"):
            options["rtsp_transport"] = self.config.rtsp_transport
        try:
            return av.open(source_url(url, self.credentials), options=options,
                           timeout=(self.config.open_timeout_s, self.config.stall_timeout_s))
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceError(f"cannot open the stream: {ffmpeg_reason(exc)}") from None

    def _analytics(self, stream):
        """The sub-stream's reader, or a tap on the main stream when it is small enough to decode
        cheaply, or None (no analytics for this camera)."""
        cb = self.cb
        if not self.config.analytics_fps or cb.on_motion_start is None or cb.on_motion_end is None:
            return None, None
        detector = MotionDetector(cb.on_motion_start, cb.on_motion_end)
        if self.substream_url:
            def open_substream():
                try:
                    return self._open(self.substream_url)
                except SourceError as exc:
                    raise OSError(str(exc)) from None
            realtime = urlsplit(self.substream_url).scheme == "file" and self.config.realtime_files
            return SubstreamReader(open_substream, detector, self.live_folder, self.cb.should_stop,
                                   self.config.analytics_fps, realtime), detector
        ctx = stream.codec_context
        if ctx.width and ctx.height and ctx.width * ctx.height <= SMALL_MAIN_PIXELS:
            sampler = FrameSampler(ctx.name, ctx.extradata, detector, self.config.analytics_fps, self.live_folder)
            return PacketTap(sampler), detector
        return None, None

    def record_once(self) -> None:
        """One connection: record until the source ends, fails or stalls, or we are told to stop."""
        container = self._open()
        writer = analytics = detector = None
        try:
            if not container.streams.video:
                raise SourceError("the stream has no video")
            stream = container.streams.video[0]
            codec = stream.codec_context.name
            if codec not in SUPPORTED_CODECS:
                raise SourceError(f"unsupported codec {codec}: cameras must send H.264 or H.265")
            analytics, detector = self._analytics(stream)
            snapshots = Snapshotter(self.live_folder, stream, idle_interval_s=self.config.snapshot_every_s)
            if self.config.engine == "pyav" or isinstance(analytics, PacketTap):
                writer = SegmentWriter(self.folder, self.code, stream)
                live = LiveWriter(self.live_folder, stream)
                try:
                    self._pump(container, stream, writer, codec, snapshots, live,
                               analytics if isinstance(analytics, PacketTap) else None)
                finally:
                    live.close()
                return
            size = (stream.codec_context.width, stream.codec_context.height)
            self._first_snapshot(container, stream, snapshots)
            snapshots.keyframes_done()  # later thumbnails come from finished segments
            container.close()
            self._record_ffmpeg(codec, size, snapshots)
        except av.error.FFmpegError as exc:
            raise SourceError(f"the stream failed: {ffmpeg_reason(exc)}") from None
        finally:
            if analytics is not None:
                analytics.close()
            if detector is not None:
                detector.close()
            if writer is not None and writer.is_open:
                self._finish(writer, datetime.now(UTC))
            container.close()

    def _first_snapshot(self, container, stream, snapshots: Snapshotter) -> None:
        """A picture for the camera wall as soon as the camera answers: its first keyframe."""
        deadline = time.monotonic() + self.config.first_snapshot_s
        for packet in container.demux(stream):
            if packet.dts is None or self.cb.should_stop():
                return
            if packet.is_keyframe:
                snapshots.offer(packet)
                if time.monotonic() - snapshots.last > 1.0:
                    snapshots.drain()
                return
            if time.monotonic() > deadline:
                return

    def _record_ffmpeg(self, codec: str, size: tuple[int, int], snapshots: Snapshotter) -> None:
        """Record with FFmpeg's segmenter until it ends or stalls, or we are told to stop."""
        config = self.config
        try:
            ffmpeg = find_ffmpeg(config.ffmpeg)
        except NoFfmpeg as exc:
            raise SourceError(str(exc)) from None
        self.runs += 1
        segmenter = Segmenter(ffmpeg, source_url(self.url, self.credentials), self.folder,
                              f"{self.code}-{os.getpid()}-{self.runs}-", config.segment_seconds,
                              rtsp_transport=config.rtsp_transport, io_timeout_s=config.stall_timeout_s,
                              realtime_file=self.is_file and config.realtime_files)
        try:
            segmenter.start()
        except OSError as exc:
            raise SourceError(f"cannot start ffmpeg: {exc}") from None
        started = time.monotonic()
        session_wall = datetime.now(UTC)
        ingest: LiveIngest | None = None
        pending: list[tuple[Finished, float, datetime]] = []  # listed; the child closes the file just after
        last_end: tuple[float, datetime, datetime] | None = None  # the last segment: stream end, wall end, wall start
        seen_frames, seen_at, frame_wall = 0, started, None
        next_report, window = started + config.first_health_s, Progress()
        kbps = None  # from the segments finished: the child cannot count bytes on the way
        stopping = False

        def index(ready: list[tuple[Finished, float, datetime]]) -> None:
            """Wall times: a segment ends when the child reports it and begins where the one before
            ended; several reported at once (the child ended before the loop read them) follow one
            another by their stream times, so each keeps a span and a file name of its own."""
            nonlocal last_end, kbps
            for done, _, reported in ready:
                duration = timedelta(seconds=max(done.end - done.start, 0))
                contiguous = last_end is not None and abs(last_end[0] - done.start) < 0.5
                began = last_end[1] if contiguous else reported - duration
                if last_end is not None and began <= last_end[2]:
                    began = last_end[2] + timedelta(microseconds=1)
                began = max(began, session_wall)
                ended = max(reported, began + duration)
                last_end = (done.end, ended, began)
                size = self._index(done.path, began, ended, snapshots if ingest is None else None)
                if size and done.end - done.start > 0.5:
                    kbps = round(size * 8 / 1000 / (done.end - done.start), 1)

        # The loop sleeps until the child reports (progress every 2 s, a segment every 10 s) or a web
        # process asks for live video or snapshots (inotify); without inotify it looks every second.
        interest = InterestWatch(self.live_folder)
        segmenter.also_wake_on(interest)
        tick = min(PROGRESS_S + 0.5 if interest.fileno() >= 0 else 1.0, config.health_interval_s / 2)
        look_first = True
        try:
            while segmenter.running:
                finished = segmenter.read(0.3 if pending else tick)
                pending += [(done, time.monotonic(), datetime.now(UTC)) for done in finished]
                now = time.monotonic()
                ready = [p for p in pending if now - p[1] >= 0.3]
                if ready:
                    pending = pending[len(ready):]
                    index(ready)
                progress = segmenter.progress
                if progress.frames > seen_frames:
                    seen_frames, seen_at, frame_wall = progress.frames, now, datetime.now(UTC)
                if self.cb.should_stop():
                    stopping = True
                    break
                waited = now - seen_at
                if waited > config.stall_timeout_s + (config.open_timeout_s if seen_frames == 0 else 0):
                    raise SourceError(f"no video for {waited:.0f} s: the stream stalled")
                fps = progress.fps_since(window) if now >= next_report else None
                if fps is not None or (seen_frames and window.at == 0.0):  # online as soon as video flows
                    self.cb.on_health(HealthReport(Health.online, None, fps and round(fps, 2), kbps, frame_wall,
                                                   codec, *size))
                    if fps is not None:
                        next_report = now + config.health_interval_s
                    window = progress
                if interest.touched() or ingest is not None or interest.fileno() < 0 or look_first:
                    look_first = False  # (interest renewed before the watch began sends no event)
                    if wanted(self.live_folder, WANT_FILE) or wanted(self.live_folder, WANT_SNAPSHOT_FILE):
                        if ingest is None or not ingest.alive:
                            ingest = LiveIngest(self)
                    elif ingest is not None:
                        ingest.stop()
                        ingest = None
        finally:
            interest.close()
            if ingest is not None:
                ingest.stop()
            ended = datetime.now(UTC)
            index(pending + [(done, 0.0, ended) for done in segmenter.close(10.0 if stopping else 3.0)])
            for part in self.folder.glob(f"{segmenter.prefix}*.mp4.part"):
                part.unlink(missing_ok=True)  # begun and never finished (the child was killed)
        if stopping:
            return
        if self.is_file and not config.realtime_files:
            self.cb.should_stop = lambda: True  # a file recorded once, as fast as possible (tests, imports)
            return
        raise SourceError(redact(f"the stream failed: {segmenter.reason()}", self.credentials))

    def _index(self, part: Path, started_at: datetime, ended_at: datetime, snapshots: Snapshotter | None) -> int:
        """A segment the child finished: moved to its place, indexed, maybe a thumbnail taken.
        Returns its size in bytes."""
        if not part.exists():
            return 0
        folder = self.folder / started_at.strftime("%Y/%m/%d/%H")
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{self.code}-{started_at.strftime('%Y%m%dT%H%M%S.%fZ')}.mp4"
        os.replace(part, final)
        if ended_at <= started_at:
            ended_at = started_at + timedelta(milliseconds=1)
        size = final.stat().st_size
        self.cb.on_segment(started_at, ended_at, final, size)
        if snapshots is not None and snapshots.due():
            snapshots.from_file(final)
        return size

    def _pump(self, container, stream, writer: SegmentWriter | None, codec: str, snapshots: Snapshotter,
              live: LiveWriter, tap: PacketTap | None = None, stop: Callable[[], bool] | None = None) -> None:
        """Demux in this process: record (``writer``) and report health, or, without a writer,
        only feed live delivery and snapshots (``LiveIngest``) until ``stop`` says so."""
        stop = stop or self.cb.should_stop
        tb = float(stream.time_base)
        meter = Meter()
        last_report = time.monotonic() - self.config.health_interval_s + self.config.first_health_s
        wall_start = None
        first_time = None
        for packet in container.demux(stream):
            if stop():
                return
            if packet.dts is None:
                continue  # the demuxer's end-of-stream marker, or a packet without timing
            arrived = time.time()
            now = datetime.now(UTC)
            t = packet.dts * tb
            if first_time is None:
                first_time, wall_start = t, time.monotonic()
            if self.is_file and self.config.realtime_files:
                delay = (t - first_time) - (time.monotonic() - wall_start)
                while delay > 0 and not stop():
                    time.sleep(min(delay, 0.5))
                    delay = (t - first_time) - (time.monotonic() - wall_start)
                now = datetime.now(UTC)
                arrived = time.time()
            meter.add(packet.size)
            snapshots.offer(packet)
            if live.usable:
                live.write(packet, arrived)  # before the segment writer rebases the packet's timestamps
            if tap is not None:
                tap.offer(packet)
            if writer is None:
                continue
            if packet.is_keyframe and (not writer.is_open or t - writer.first_time >= self.config.segment_seconds):
                if writer.is_open:
                    self._finish(writer, now)
                writer.open(now, packet.dts, t)
            if writer.is_open:
                writer.write(packet)
            if time.monotonic() - last_report >= self.config.health_interval_s:
                fps, kbps = meter.read()
                self.cb.on_health(HealthReport(Health.online, None, round(fps, 2), round(kbps, 1), now, codec,
                                               stream.codec_context.width, stream.codec_context.height))
                meter.reset()
                last_report = time.monotonic()
        if not self.is_file:
            raise SourceError("the stream ended")
        if writer is not None and not self.config.realtime_files:
            self.cb.should_stop = lambda: True  # a file recorded once, as fast as possible (tests, imports)

    def _finish(self, writer: SegmentWriter, ended_at: datetime) -> None:
        started_at = writer.started_at
        path, size = writer.close()
        if ended_at <= started_at:
            ended_at = started_at + timedelta(milliseconds=1)
        self.cb.on_segment(started_at, ended_at, path, size)


class LiveIngest:
    """A camera's own connection for live delivery and fresh snapshots while someone asks for
    them, beside FFmpeg's recording (engine ``ffmpeg``): read in a thread of the recorder
    process, reconnecting with backoff, until stopped."""

    def __init__(self, recorder: CameraRecorder) -> None:
        self.recorder = recorder
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="live-ingest", daemon=True)
        self.thread.start()

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def _stop(self) -> bool:
        return self.stopped.is_set() or self.recorder.cb.should_stop()

    def _run(self) -> None:
        recorder, backoff = self.recorder, 1.0
        while not self._stop():
            try:
                container = recorder._open()
            except SourceError as exc:
                log.warning("camera %s: live connection failed: %s", recorder.code, redact(str(exc), recorder.credentials))
            else:
                try:
                    stream = container.streams.video[0]
                    live = LiveWriter(recorder.live_folder, stream)
                    try:
                        recorder._pump(container, stream, None, stream.codec_context.name,
                                       Snapshotter(recorder.live_folder, stream,
                                                   idle_interval_s=recorder.config.snapshot_every_s),
                                       live, stop=self._stop)
                        backoff = 1.0
                    finally:
                        live.close()
                except (av.error.FFmpegError, SourceError, IndexError) as exc:
                    log.warning("camera %s: live connection ended: %s", recorder.code,
                                redact(ffmpeg_reason(exc) if isinstance(exc, av.error.FFmpegError) else str(exc),
                                       recorder.credentials))
                finally:
                    container.close()
            if self.stopped.wait(backoff):
                return
            backoff = min(backoff * 2, 30.0)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(10)
