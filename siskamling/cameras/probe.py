"""Stream probe: is this camera address serving video we can record and deliver, and how?

``probe(url)`` opens an RTSP stream (TCP or UDP transport), an HLS playlist over HTTP(S) or a
local file with PyAV (FFmpeg), reads packets until it has seen — and decoded — a keyframe and has
measured the frame rate and bitrate over about two seconds of video (one for files), and returns
a ``ProbeResult``. It never raises for anything the camera or the address does: every failure is
a status with a short English message, and it returns within ``timeout_s`` (plus half a second)
whatever the network does — FFmpeg's socket timeouts, PyAV's interrupt timeouts and, for what
neither can interrupt (a slow DNS lookup), a watchdog thread.

Credentials given as ``username``/``password`` are put into the RTSP address (or, for HTTP, an
``Authorization: Basic`` header) only inside this module, on the way to FFmpeg; messages name the
address without its user, password or query string, and are scrubbed of both secrets as a last
guard. PyAV's exceptions repeat the full address they were given, so their text is never used,
only FFmpeg's error string.
"""

from __future__ import annotations

import base64
import errno
import logging
import math
import os
import socket
import statistics
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote, unquote, urlsplit, urlunsplit

log = logging.getLogger(__name__)

SUPPORTED_CODECS = {"h264": "h264", "hevc": "h265"}  # FFmpeg's name -> ours
NETWORK_WINDOW_S = 2.0  # video measured from a network source
FILE_WINDOW_S = 1.0  # ... and from a local file
WATCHDOG_GRACE_S = 0.5
ANALYZE_US = 1_000_000  # avformat_find_stream_info's budget: the SDP or playlist says most of it
# formats FFmpeg finds "video" in that are not: text shown as ANSI art, single pictures
NOT_VIDEO_FORMATS = {"tty", "image2", "bin", "xbin", "adf", "idf"}
REORDER_INTERVALS = 4  # frame intervals at the end of the measured span left out of the frame rate


class Status(StrEnum):
    online = "online"
    unreachable = "unreachable"
    unauthorized = "unauthorized"
    not_found = "not_found"
    unsupported_codec = "unsupported_codec"
    no_video = "no_video"
    timeout = "timeout"
    bad_url = "bad_url"
    error = "error"


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    status: Status
    message: str
    codec: str | None = None  # "h264", "h265", or FFmpeg's name for others ("mpeg4", "mjpeg", ...)
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    bitrate_kbps: float | None = None


class _Fail(Exception):
    """A probe outcome decided before or while reading: becomes the result as is."""

    def __init__(self, status: Status, message: str, **info):
        super().__init__(message)
        self.status, self.message, self.info = status, message, info


@dataclass(frozen=True)
class _Target:
    kind: str  # "rtsp", "http", "file"
    open_url: str  # what FFmpeg opens (may carry the credentials)
    shown: str  # the address as messages show it: no credentials, no query
    host: str | None = None
    port: int | None = None
    headers: str | None = None  # HTTP only


def probe(url: str, *, username: str | None = None, password: str | None = None, timeout_s: float = 8.0,
          transport: str = "tcp") -> ProbeResult:
    """Probe one camera address; see the module's docstring. ``transport`` ("tcp" or "udp") only
    matters for RTSP."""
    if transport not in ("tcp", "udp"):
        raise ValueError(f"transport must be 'tcp' or 'udp', not {transport!r}")
    if timeout_s <= 0:
        raise ValueError("timeout_s must be positive")
    # (messages are built without credentials; this is the last guard, for secrets long enough
    # that finding one in a message is not a coincidence of ordinary words like "fps")
    secrets = [s for s in (password, username) if s and len(s) >= 4]
    started = time.monotonic()
    box: dict[str, ProbeResult] = {}

    def run() -> None:
        try:
            box["result"] = _probe(url, username, password, timeout_s, transport, started)
        except BaseException as exc:  # noqa: BLE001 - a probe reports, it never raises
            box["result"] = ProbeResult(False, Status.error, f"probe failed: {type(exc).__name__}")

    worker = threading.Thread(target=run, name="camera-probe", daemon=True)
    worker.start()
    worker.join(timeout_s + WATCHDOG_GRACE_S)
    result = box.get("result")
    if result is None:  # the worker is still stuck (FFmpeg will give up on its own; it is a daemon)
        result = ProbeResult(False, Status.timeout, f"no answer within {_secs(timeout_s)}")
    return _scrubbed(result, secrets)


# --- addresses -------------------------------------------------------------------------------


def _target(url: str, username: str | None, password: str | None) -> _Target:
    if not isinstance(url, str) or not url.strip():
        raise _Fail(Status.bad_url, "no address given")
    url = url.strip()
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise _Fail(Status.bad_url, "the address contains spaces or control characters")
    if url.startswith("/"):
        return _file_target(url)
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError:
        raise _Fail(Status.bad_url, "the address is not a valid URL (bad port or brackets)") from None
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise _Fail(Status.bad_url, "file:// addresses must name a local file")
        return _file_target(unquote(parts.path))
    if not scheme or "://" not in url:
        raise _Fail(Status.bad_url, "not a camera address: expected rtsp://, http(s):// (HLS) or an absolute file path")
    if scheme not in ("rtsp", "rtsps", "http", "https"):
        raise _Fail(Status.bad_url, f"unsupported scheme {scheme}:// (use rtsp://, http(s):// for HLS, or a file path)")
    host = parts.hostname
    if not host:
        raise _Fail(Status.bad_url, f"the {scheme}:// address has no host")
    host_shown = f"[{host}]" if ":" in host else host
    netloc_shown = host_shown + (f":{port}" if port is not None else "")
    shown = urlunsplit((scheme, netloc_shown, parts.path, "…" if parts.query else "", ""))
    user = username if username is not None else (unquote(parts.username) if parts.username else None)
    pwd = password if username is not None or password is not None else (
        unquote(parts.password) if parts.password is not None else None)
    default_port = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}[scheme]
    if scheme.startswith("rtsp"):
        netloc = netloc_shown
        if user:
            netloc = f"{quote(user, safe='')}:{quote(pwd or '', safe='')}@{netloc_shown}"
        open_url = urlunsplit((scheme, netloc, parts.path, parts.query, ""))
        return _Target("rtsp", open_url, shown, host, port or default_port)
    headers = None
    if user:
        token = base64.b64encode(f"{user}:{pwd or ''}".encode()).decode()
        headers = f"Authorization: Basic {token}\r\n"
    open_url = urlunsplit((scheme, netloc_shown, parts.path, parts.query, ""))
    return _Target("http", open_url, shown, host, port or default_port, headers)


def _file_target(path: str) -> _Target:
    if not os.path.isabs(path):
        raise _Fail(Status.bad_url, "a local file must be given by its absolute path")
    if not os.path.exists(path):
        raise _Fail(Status.not_found, f"no such file: {path}")
    if not os.path.isfile(path):
        raise _Fail(Status.bad_url, f"not a regular file: {path}")
    return _Target("file", path, path)


def _resolve(target: _Target) -> None:
    """Resolve the host name first, in Python: FFmpeg's lookup cannot be interrupted, and its
    failure comes back as a bare I/O error."""
    try:
        socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise _Fail(Status.unreachable, f"cannot resolve host {target.host}") from None


# --- the probe itself ------------------------------------------------------------------------


def _probe(url, username, password, timeout_s, transport, started) -> ProbeResult:
    import av  # deferred: importing FFmpeg costs ~0.1 s, and most of the app never probes

    try:
        target = _target(url, username, password)
        if target.host:
            _resolve(target)
        return _read(av, target, timeout_s, transport, started)
    except _Fail as fail:
        return ProbeResult(fail.status is Status.online, fail.status, fail.message, **fail.info)


def _container_options(target: _Target, timeout_s: float, transport: str) -> dict[str, str]:
    # FFmpeg's socket timeouts a little longer than PyAV's interrupt timeout, which fires first and
    # is unambiguous (FFmpeg's RTSP code turns its own socket timeout into "invalid data")
    us = str(int((timeout_s + 2) * 1_000_000))
    if target.kind == "rtsp":
        # FFmpeg >= 5: "timeout" is the RTSP socket I/O timeout in µs (it was "stimeout" before)
        return {"rtsp_transport": transport, "timeout": us, "analyzeduration": str(ANALYZE_US)}
    if target.kind == "http":
        # rw_timeout is passed on by the HLS demuxer to every playlist and segment request
        opts = {"rw_timeout": us, "analyzeduration": str(ANALYZE_US)}
        if target.headers:
            opts["headers"] = target.headers
        return opts
    return {}


def _read(av, target: _Target, timeout_s: float, transport: str, started: float) -> ProbeResult:
    deadline = started + timeout_s
    remaining = max(0.1, deadline - time.monotonic())
    try:
        container = av.open(target.open_url, container_options=_container_options(target, timeout_s, transport),
                            timeout=(remaining, remaining))
    except Exception as exc:  # noqa: BLE001
        raise _failure(av, exc, target, timeout_s, started, opening=True) from None
    try:
        return _measure(av, container, target, timeout_s, started)
    finally:
        try:
            container.close()
        except Exception:  # noqa: BLE001, S110 - closing a dead connection may fail; nothing to report
            pass


def _measure(av, container, target: _Target, timeout_s: float, started: float) -> ProbeResult:
    deadline = started + timeout_s
    videos = list(container.streams.video)
    if not videos:
        kinds = sorted({s.type for s in container.streams})
        what = f" (it has only {', '.join(kinds)})" if kinds else ""
        raise _Fail(Status.no_video, f"no video stream at {target.shown}{what}")
    fmt = container.format.name if container.format else ""
    if target.kind == "file" and (fmt in NOT_VIDEO_FORMATS or fmt.endswith("_pipe")):
        raise _Fail(Status.no_video, f"{target.shown} is not a video file (FFmpeg reads it as {fmt})")
    stream = videos[0]
    ctx = stream.codec_context
    ffname = ctx.name if ctx is not None else None
    codec = SUPPORTED_CODECS.get(ffname, ffname)
    info = {"codec": codec, "width": ctx.width or None, "height": ctx.height or None,
            "fps": _rate(stream.average_rate) or _rate(stream.guessed_rate)}
    if ffname not in SUPPORTED_CODECS:
        raise _Fail(Status.unsupported_codec,
                    f"video codec {codec or 'unknown'} is not supported (H.264 or H.265 needed)", **info)

    window = FILE_WINDOW_S if target.kind == "file" else NETWORK_WINDOW_S
    tb = float(stream.time_base) if stream.time_base else None
    times: list[float] = []
    sizes = 0
    packets = 0
    keyframe = False
    frame = None
    decode_errors = 0
    stalled = None
    ended = False  # the input came to its end (a file, an HLS recording, or an RTSP server hanging up)
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # the flush packet at the end of input
                continue
            packets += 1
            if packet.is_keyframe:
                keyframe = True
            if keyframe:
                if packet.pts is not None and tb:  # bytes and times of the same packets
                    sizes += packet.size
                    times.append(packet.pts * tb)
                if frame is None and decode_errors < 30:
                    try:
                        frames = ctx.decode(packet)
                        if frames:
                            frame = frames[0]
                    except av.error.FFmpegError:
                        decode_errors += 1
            if keyframe and frame is not None and times and max(times) - min(times) >= window:
                break
            if time.monotonic() >= deadline:
                break
        else:
            ended = True
    except Exception as exc:  # noqa: BLE001 - a read timeout, a dropped connection, ...
        stalled = exc

    if frame is None and keyframe:  # a decoder with a reordering delay: ask for what it holds
        try:
            frames = ctx.decode(None)
            frame = frames[0] if frames else None
        except Exception:  # noqa: BLE001
            frame = None
    if frame is not None:
        info["width"], info["height"] = frame.width, frame.height
    fps = _measured_fps(times)
    if fps:
        info["fps"] = fps
    if fps and len(set(times)) >= 2:
        info["bitrate_kbps"] = round(sizes * 8 / (len(set(times)) / fps) / 1000, 1)

    if frame is None:
        if stalled is not None and not _is_timeout(av, stalled):
            raise _failure(av, stalled, target, timeout_s, started, opening=False, info=info)
        if not packets:
            raise _Fail(Status.timeout, f"no video arrived from {target.shown} within {_secs(timeout_s)}", **info)
        if not keyframe:
            raise _Fail(Status.timeout, f"no keyframe from {target.shown} within {_secs(timeout_s)}", **info)
        if target.kind == "file" or decode_errors:
            raise _Fail(Status.error, f"the video from {target.shown} cannot be decoded", **info)
        raise _Fail(Status.timeout, f"no decodable picture from {target.shown} within {_secs(timeout_s)}", **info)
    if stalled is not None and target.kind != "file":
        # a picture came, then the stream stopped: report that rather than a healthy camera
        status = Status.timeout if _is_timeout(av, stalled) else Status.error
        raise _Fail(status, f"the stream from {target.shown} stalled after {packets} packets", **info)
    if ended and target.kind == "rtsp":  # a camera does not end its stream
        raise _Fail(Status.error, f"the stream from {target.shown} ended after {packets} packets", **info)
    parts = [f"{(codec or '?').upper()} {info['width']}x{info['height']}"]
    if info.get("fps"):
        parts.append(f"{info['fps']:g} fps")
    if info.get("bitrate_kbps") is not None:
        parts.append(f"{info['bitrate_kbps']:g} kb/s")
    return ProbeResult(True, Status.online, "online: " + ", ".join(parts), **info)


def _measured_fps(times: list[float]) -> float | None:
    """Frames per second from presentation times: made unique (parameter sets may travel in packets
    of their own, with the picture's time) and sorted (B-frames arrive out of order). Frames counted
    over the span, leaving out its last few intervals (pictures whose time falls there may not have
    arrived yet, being reordered); the median interval instead if the span holds a discontinuity."""
    ts = sorted(set(times))
    if len(ts) < 3:
        return None
    deltas = [b - a for a, b in zip(ts, ts[1:])]
    median = statistics.median(deltas)
    if median <= 0:
        return None
    dense = [t for t in ts if t <= ts[-1] - REORDER_INTERVALS * median]
    if len(dense) < 3 or max(deltas) > 10 * median:
        return round(1 / median, 2)
    return round((len(dense) - 1) / (dense[-1] - dense[0]), 2)


def _rate(rate) -> float | None:
    try:
        value = float(rate) if rate else None
    except (TypeError, ZeroDivisionError):
        return None
    return round(value, 2) if value and math.isfinite(value) else None


def _secs(s: float) -> str:
    return f"{s:g} s"


# --- errors ------------------------------------------------------------------------------------


def _is_timeout(av, exc: BaseException) -> bool:
    # ExitError: PyAV's interrupt callback gave up; TimeoutError: FFmpeg's own socket timeout
    return isinstance(exc, (av.error.ExitError, TimeoutError))


def _failure(av, exc: BaseException, target: _Target, timeout_s: float, started: float, *, opening: bool,
             info: dict | None = None) -> _Fail:
    """Map an FFmpeg/PyAV exception to a status. Only FFmpeg's error string is used (``strerror``):
    PyAV's own text repeats the address, credentials included."""
    info = info or {}
    reason = getattr(exc, "strerror", None) or type(exc).__name__
    where = target.shown
    err = av.error
    network = target.kind != "file"
    if isinstance(exc, (err.HTTPUnauthorizedError, err.HTTPForbiddenError)) or (
            network and isinstance(exc, PermissionError)):
        return _Fail(Status.unauthorized, f"the camera refused the login at {where} ({reason})", **info)
    if isinstance(exc, (err.HTTPNotFoundError, FileNotFoundError)):
        return _Fail(Status.not_found, f"no stream at {where} ({reason})", **info)
    if _is_timeout(av, exc) or (time.monotonic() - started >= 0.95 * timeout_s and not isinstance(exc, err.HTTPError)):
        what = "no answer from" if opening else "the stream stalled at"
        return _Fail(Status.timeout, f"{what} {where} within {_secs(timeout_s)}", **info)
    if isinstance(exc, (ConnectionRefusedError, ConnectionResetError, ConnectionAbortedError)):
        return _Fail(Status.unreachable, f"cannot connect to {where} ({reason})", **info)
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE_ERRNOS:
        return _Fail(Status.unreachable, f"cannot reach {where} ({reason})", **info)
    if isinstance(exc, err.ProtocolNotFoundError):
        return _Fail(Status.bad_url, f"this FFmpeg cannot open {where} ({reason})", **info)
    if isinstance(exc, (err.InvalidDataError, err.DemuxerNotFoundError)):
        if not network:
            return _Fail(Status.no_video, f"{where} is not a video file FFmpeg can read", **info)
        return _Fail(Status.error, f"the answer from {where} is not a stream FFmpeg can read ({reason})", **info)
    if isinstance(exc, err.HTTPError):
        return _Fail(Status.error, f"the server at {where} answered: {reason}", **info)
    if isinstance(exc, PermissionError):
        return _Fail(Status.error, f"cannot read {where} (permission denied)", **info)
    log.debug("probe of %s failed: %s (%s)", where, type(exc).__name__, reason)
    return _Fail(Status.error, f"cannot open {where} ({reason})" if opening else f"reading {where} failed ({reason})",
                 **info)


_UNREACHABLE_ERRNOS = {getattr(errno, n) for n in (
    "EHOSTUNREACH", "ENETUNREACH", "EHOSTDOWN", "ENETDOWN", "ECONNREFUSED", "EADDRNOTAVAIL") if hasattr(errno, n)}


def _scrubbed(result: ProbeResult, secrets: list[str]) -> ProbeResult:
    """The last guard: no message carries a credential, raw or percent-encoded."""
    message = result.message
    for secret in secrets:
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            if form and form in message:
                message = message.replace(form, "***")
    if message == result.message:
        return result
    return ProbeResult(result.ok, result.status, message, result.codec, result.width, result.height, result.fps,
                       result.bitrate_kbps)
