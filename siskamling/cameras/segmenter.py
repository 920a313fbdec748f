"""FFmpeg's own segmenter as the recording engine: one ``ffmpeg -c copy -f segment`` child per
camera, supervised by the camera's recorder process.

Stream-copying a camera costs about as much in FFmpeg's demuxer and muxer as anywhere, but
doing it packet by packet from Python (PyAV) adds the interpreter's work for every frame: about
1.3 × FFmpeg's CPU before the recorder does anything of its own (docs/benchmarks.md). So the
packets of a camera nobody watches never enter Python: the child writes the segments, reports
each one it finishes on a pipe (``-segment_list``, CSV: file, start, end in stream seconds) and
its progress on another (``-progress``: frames and bytes written, once a second), and the recorder
indexes segments, reports health and detects stalls from those two pipes, and otherwise sleeps
(about one wake-up every 2 s per camera).

The child runs in a session of its own (a Ctrl-C meant for the server does not cut a segment
short) and dies with the thread that started it (``PR_SET_PDEATHSIG``), so a recorder killed
outright leaves no camera connection behind.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import selectors
import shutil
import signal
import subprocess
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

PR_SET_PDEATHSIG = 1
PROGRESS_S = 2.0  # how often the child reports its progress
FRAGMENTED = "movflags=frag_keyframe+empty_moov+default_base_moof"
_LIBC = ctypes.CDLL(None, use_errno=True) if os.name == "posix" else None
_PRCTL = _LIBC.prctl if _LIBC is not None else None  # looked up now: the child runs as little as it can
_PREFIX = re.compile(r"^\[[\w.-]+ @ 0x[0-9a-f]+\]\s*")


class NoFfmpeg(Exception):
    """No ffmpeg program to record with."""


MIN_VERSION = (5, 0)  # before 5.0 the RTSP option ``timeout`` meant "listen", and I/O timeout was ``stimeout``
_VERSION = re.compile(rb"version n?(\d+)\.(\d+)")


@functools.cache
def ffmpeg_version(path: str) -> tuple[int, int] | None:
    """(major, minor) of an ffmpeg program; None when it does not say (a development build)."""
    try:
        out = subprocess.run([path, "-version"], capture_output=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = _VERSION.search(out.split(b"\n", 1)[0])
    return (int(found[1]), int(found[2])) if found else None


def _recent(path: str) -> bool:
    version = ffmpeg_version(path)
    return version is None or version >= MIN_VERSION


def find_ffmpeg(configured: str | None = None) -> str:
    """The ffmpeg program: the configured one, else ``ffmpeg`` on PATH (the system's, kept
    up to date with it) if it is 5.0 or newer, else the one the ``imageio-ffmpeg`` wheel installs
    with the project."""
    if configured:
        path = shutil.which(configured)
        if path is None:
            raise NoFfmpeg(f"ffmpeg not found at {configured} (setting ffmpeg_path)")
        if not _recent(path):
            raise NoFfmpeg(f"ffmpeg at {configured} is older than 5.0 (setting ffmpeg_path)")
        return path
    path = shutil.which("ffmpeg")
    if path and _recent(path):
        return path
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise NoFfmpeg(f"no ffmpeg program: install ffmpeg or the imageio-ffmpeg package ({exc})") from None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@dataclass
class Progress:
    frames: int = 0  # packets written so far
    at: float = 0.0  # when the child reported it (monotonic clock)
    media_s: float = 0.0  # the stream time written so far

    def fps_since(self, earlier: Progress) -> float | None:
        """The camera's frame rate between two reports, on the stream's own clock (the pipe's
        delivery times jitter; a late report would look like a burst of frames)."""
        span = self.media_s - earlier.media_s
        return (self.frames - earlier.frames) / span if span >= 0.5 else None


@dataclass
class Finished:
    """A segment the child closed: its file and its span in stream seconds."""

    path: Path
    start: float
    end: float


@dataclass
class Segmenter:
    ffmpeg: str
    source: str  # what ffmpeg opens (credentials included: never logged, see ``reason``)
    folder: Path  # where the child writes; finished files are moved on by the recorder
    prefix: str
    segment_seconds: float
    rtsp_transport: str = "tcp"
    io_timeout_s: float = 5.0
    realtime_file: bool = False  # a file played as a live camera: at its own pace, looping
    proc: subprocess.Popen | None = None
    progress: Progress = field(default_factory=Progress)
    _frames: int = 0
    _media_s: float = 0.0
    errors: deque = field(default_factory=lambda: deque(maxlen=5))

    def command(self, list_fd: int) -> list[str]:
        scheme = urlsplit(self.source).scheme
        timeout_us = str(int(self.io_timeout_s * 1_000_000))
        cmd = [self.ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-nostats",
               "-progress", "pipe:1", "-stats_period", f"{PROGRESS_S:g}", "-analyzeduration", "1000000"]
        if scheme in ("rtsp", "rtsps"):
            cmd += ["-rtsp_transport", self.rtsp_transport, "-timeout", timeout_us]
        elif scheme in ("http", "https"):
            cmd += ["-rw_timeout", timeout_us]
        elif self.realtime_file:
            cmd += ["-re", "-stream_loop", "-1"]
        source = self.source if scheme else f"file:{self.source}"
        return cmd + ["-i", source, "-map", "0:v:0", "-c", "copy",
                      "-f", "segment", "-segment_time", f"{self.segment_seconds:g}", "-segment_format", "mp4",
                      "-segment_format_options", FRAGMENTED, "-reset_timestamps", "1",
                      "-segment_list", f"pipe:{list_fd}", "-segment_list_type", "csv",
                      str(self.folder / f"{self.prefix}%06d.mp4.part")]

    def start(self) -> Segmenter:
        self.folder.mkdir(parents=True, exist_ok=True)
        read_list, write_list = os.pipe()
        try:
            self.proc = subprocess.Popen(
                self.command(write_list), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=(write_list,), start_new_session=True, preexec_fn=_die_with_parent)
        except OSError:
            os.close(read_list)
            raise
        finally:
            os.close(write_list)
        self._list = os.fdopen(read_list, "rb", buffering=0)
        self._selector = selectors.DefaultSelector()
        self._pending = {"list": b"", "progress": b"", "errors": b""}
        for name, stream in (("list", self._list), ("progress", self.proc.stdout), ("errors", self.proc.stderr)):
            os.set_blocking(stream.fileno(), False)
            self._selector.register(stream, selectors.EVENT_READ, name)
        self._open = 3
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def also_wake_on(self, fileobj) -> None:
        """Return from ``read`` when ``fileobj`` (e.g. an ``InterestWatch``) becomes readable
        too; its owner reads it."""
        if fileobj.fileno() >= 0:
            self._selector.register(fileobj, selectors.EVENT_READ, "other")

    def read(self, timeout: float) -> list[Finished]:
        """Wait up to ``timeout`` s for the child; return the segments it finished meanwhile
        (``progress`` and ``errors`` are updated as a side effect)."""
        finished: list[Finished] = []
        if not self._open:
            time.sleep(timeout)
            return finished
        for key, _ in self._selector.select(timeout):
            name = key.data
            if name == "other":
                continue
            try:
                data = os.read(key.fileobj.fileno(), 65536)
            except BlockingIOError:
                continue
            if not data:  # the child closed it (it ended)
                self._selector.unregister(key.fileobj)
                self._open -= 1
                data = b"\n"
            lines = (self._pending[name] + data).split(b"\n")
            self._pending[name] = lines.pop()
            for line in lines:
                text = line.decode("utf-8", "replace").strip()
                if text:
                    self._line(name, text, finished)
        return finished

    def _line(self, name: str, text: str, finished: list[Finished]) -> None:
        if name == "list":
            file, start, end = text.rsplit(",", 2)
            finished.append(Finished(self.folder / file, float(start), float(end)))
        elif name == "progress":
            key, _, value = text.partition("=")
            if key == "frame" and value.isdigit():
                self._frames = int(value)
            elif key == "out_time_us" and value.isdigit():
                self._media_s = int(value) / 1_000_000
            elif key == "progress":  # the end of one report
                self.progress = Progress(self._frames, time.monotonic(), self._media_s)
        else:
            self.errors.append(text)

    def reason(self) -> str:
        """The child's last error, without the source's address (the caller redacts credentials
        that may remain elsewhere in the line)."""
        if not self.errors:
            code = self.proc.returncode if self.proc else None
            return f"ffmpeg exited ({code})" if code else "the stream ended"
        text = _PREFIX.sub("", self.errors[-1])
        if text.startswith(self.source):
            text = text[len(self.source):].lstrip(": ")
        return text

    def stop(self) -> None:
        """Ask the child to finish (it closes and reports the segment it is writing)."""
        if self.running:
            self.proc.send_signal(signal.SIGTERM)

    def close(self, wait_s: float = 10.0) -> list[Finished]:
        """Stop the child and collect what it finished on the way out."""
        finished: list[Finished] = []
        if self.proc is None:
            return finished
        self.stop()
        deadline = time.monotonic() + wait_s
        while self._open and time.monotonic() < deadline:
            finished += self.read(0.2)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self._list, self.proc.stdout, self.proc.stderr):
            stream.close()
        self._selector.close()
        self._open = 0
        return finished
