"""Live video without re-encoding, one ingest however many people watch.

While someone watches a camera (a web process touches ``live/<code>/want-live``), its recorder
writes every frame the moment it arrives as a fragment of a fragmented MP4: ``init.mp4`` once,
then ``f<seq>.m4s`` = a ``free`` box (arrival time, keyframe flag) + ``moof`` + ``mdat`` of one
sample, and ``index.json`` at each keyframe (where a viewer or an HLS segment can start). The web
process reads each fragment once and fans it out to every viewer (stream.py); nobody watching
costs one ``stat`` per keyframe.

Fragments are built here rather than by FFmpeg's MP4 muxer, which holds a fragment back until
the next frame arrives (one frame time of delay, 67-200 ms at 5-15 fps). The init segment still
comes from FFmpeg (the muxer's ``moov`` with the track's ``avcC``).
"""

from __future__ import annotations

import io
import json
import os
import struct
import time
import uuid
from pathlib import Path

import av

INIT_OPTIONS = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
KEEP_SECONDS = 12.0  # fragments kept on disk: enough for an HLS playlist of six 1-2 s segments
WANT_FILE = "want-live"
WANT_SNAPSHOT_FILE = "want-snapshot"
WANTED_FOR_S = 10.0  # a viewer's web process renews its interest every WANT_RENEW_S
WANT_RENEW_S = 2.0
HEADER = struct.Struct(">I4s4sdI")  # free box: size, "free", "sklv", arrival (unix time), flags
HEADER_TAG = b"sklv"
FLAG_KEYFRAME = 1
SAMPLE_SYNC = 0x02000000  # sample_depends_on = 2 (an I picture)
SAMPLE_NON_SYNC = 0x01010000  # depends on others, not a sync sample
SAMPLE_IS_NON_SYNC = 0x00010000


def live_folder(media_dir: Path, code: str) -> Path:
    """Where a camera's live fragments and snapshot are (one place for writer and readers)."""
    return media_dir / "live" / code


# --- interest: web processes say "someone is watching", recorders look ------------------------


def touch(folder: Path, name: str) -> None:
    """Renew interest in a camera's live video or snapshots (readers call this)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    try:
        os.utime(path)
    except FileNotFoundError:
        path.touch()


def wanted(folder: Path, name: str, now: float | None = None) -> bool:
    try:
        return (now or time.time()) - (folder / name).stat().st_mtime < WANTED_FOR_S
    except FileNotFoundError:
        return False


def inotify_watch(folder: Path, mask: int) -> int:
    """A non-blocking inotify descriptor watching ``folder`` for ``mask``, or -1 where inotify is
    missing (not Linux, no more watches): callers then look by themselves."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            return -1
        if libc.inotify_add_watch(fd, str(folder).encode(), mask) < 0:
            os.close(fd)
            return -1
    except (OSError, AttributeError):
        return -1
    return fd


class InterestWatch:
    """Tells a recorder the moment a web process renews interest in its camera (inotify on the
    camera's live folder), so that it need not look every second. ``fileno`` is -1 where inotify
    is missing: the recorder then looks at each wake-up."""

    IN_ATTRIB, IN_CREATE = 0x00000004, 0x00000100
    EVENT = struct.Struct("iIII")  # wd, mask, cookie, length of the name that follows
    NAMES = {WANT_FILE.encode(), WANT_SNAPSHOT_FILE.encode()}

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.fd = inotify_watch(folder, self.IN_ATTRIB | self.IN_CREATE)

    def fileno(self) -> int:
        return self.fd

    def touched(self) -> bool:
        """Whether a want file was touched since the last call (drains the events)."""
        found = False
        try:
            while data := os.read(self.fd, 65536):
                i = 0
                while i + self.EVENT.size <= len(data):
                    length = self.EVENT.unpack_from(data, i)[3]
                    name = data[i + self.EVENT.size:i + self.EVENT.size + length].rstrip(b"\0")
                    found = found or name in self.NAMES
                    i += self.EVENT.size + length
        except (BlockingIOError, OSError):
            pass
        return found

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# --- MP4 boxes -----------------------------------------------------------------------------------


def boxes(data: bytes, start: int = 0, end: int | None = None):
    """(type, start, end) of the complete MP4 boxes in ``data[start:end]`` (top level, or the
    children of a box when given its body)."""
    end = len(data) if end is None else end
    i = start
    while i + 8 <= end:
        size, kind = struct.unpack(">I4s", data[i:i + 8])
        if size < 8 or i + size > end:
            return
        yield kind.decode("latin-1"), i, i + size
        i += size


def find_box(data: bytes, path: list[str], start: int = 0, end: int | None = None) -> tuple[int, int] | None:
    """(start, end) of the first box along ``path`` (e.g. ["moov", "trak", "mdia", "mdhd"])."""
    for kind, s, e in boxes(data, start, end):
        if kind == path[0]:
            return (s, e) if len(path) == 1 else find_box(data, path[1:], s + 8, e)
    return None


def starts_with_keyframe(moof: bytes) -> bool:
    """Whether a fragment's first sample is a sync sample (from its tfhd/trun flags)."""
    for kind, s, e in boxes(moof, 8):
        if kind != "traf":
            continue
        default_flags = None
        for sub, ss, se in boxes(moof, s + 8, e):
            if sub == "tfhd":
                flags = int.from_bytes(moof[ss + 9:ss + 12], "big")
                offset = ss + 16 + (8 if flags & 0x1 else 0) + (4 if flags & 0x2 else 0) + \
                    (4 if flags & 0x8 else 0) + (4 if flags & 0x10 else 0)
                if flags & 0x20:
                    default_flags = int.from_bytes(moof[offset:offset + 4], "big")
            elif sub == "trun":
                flags = int.from_bytes(moof[ss + 9:ss + 12], "big")
                offset = ss + 16 + (4 if flags & 0x1 else 0)
                if flags & 0x4:
                    first = int.from_bytes(moof[offset:offset + 4], "big")
                elif flags & 0x400:
                    entry = offset + (4 if flags & 0x100 else 0) + (4 if flags & 0x200 else 0)
                    first = int.from_bytes(moof[entry:entry + 4], "big")
                else:
                    first = default_flags or 0
                return not first & SAMPLE_IS_NON_SYNC
    return False


def split_fragment(data: bytes) -> tuple[float | None, bool, bytes]:
    """(arrival time, starts with a keyframe, the moof+mdat to send) of a fragment file."""
    if len(data) >= HEADER.size and data[4:8] == b"free" and data[8:12] == HEADER_TAG:
        _, _, _, arrived, flags = HEADER.unpack_from(data)
        return arrived, bool(flags & FLAG_KEYFRAME), data[HEADER.size:]
    moof = find_box(data, ["moof"])
    return None, bool(moof) and starts_with_keyframe(data[moof[0]:moof[1]]), data


def _box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def moof_mdat(seq: int, decode_time: int, duration: int, cts: int, sample: bytes, keyframe: bool) -> bytes:
    """One fragment holding one sample of track 1 (tfhd default-base-is-moof, tfdt v1, trun with
    data offset, duration, size, flags and composition offset)."""
    trun_flags = 0x000001 | 0x000100 | 0x000200 | 0x000400 | 0x000800
    mfhd = _box(b"mfhd", struct.pack(">II", 0, seq))
    tfhd = _box(b"tfhd", struct.pack(">II", 0x020000, 1))
    tfdt = _box(b"tfdt", struct.pack(">IQ", 0x01000000, decode_time))
    # moof = 8 + mfhd 16 + traf (8 + tfhd 16 + tfdt 20 + trun 36) = 104; data starts after mdat's header
    trun = _box(b"trun", struct.pack(">IIiIIII", trun_flags, 1, 104 + 8, duration, len(sample),
                                     SAMPLE_SYNC if keyframe else SAMPLE_NON_SYNC, cts))
    moof = _box(b"moof", mfhd, _box(b"traf", tfhd, tfdt, trun))
    return moof + struct.pack(">I4s", 8 + len(sample), b"mdat") + sample


def annexb_to_avcc(data: bytes) -> bytes:
    """H.264/H.265 access unit from start codes (RTSP) to 4-byte lengths (MP4)."""
    out = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        start = i + 3
        j = data.find(b"\x00\x00\x01", start)
        end = len(data) if j < 0 else j
        while end > start and data[end - 1] == 0:  # the next 4-byte start code's leading zero
            end -= 1
        if end > start:
            out.append(struct.pack(">I", end - start))
            out.append(data[start:end])
        i = j
    return b"".join(out)


def codec_string(init: bytes) -> str | None:
    """The MSE codec string (``avc1.PPCCLL``) from the init segment's avcC record."""
    avcc = find_box(init, ["moov", "trak", "mdia", "minf", "stbl", "stsd"])
    if avcc is None:
        return None
    s, e = avcc
    i = init.find(b"avcC", s, e)
    if i < 0 or i + 8 > e or init[i + 4] != 1:
        return None
    return "avc1." + init[i + 5:i + 8].hex()


def timescale_of(init: bytes) -> int:
    s, _ = find_box(init, ["moov", "trak", "mdia", "mdhd"])
    version = init[s + 8]
    return struct.unpack_from(">I", init, s + 12 + (16 if version == 1 else 8))[0]


class _Sink(io.RawIOBase):
    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.data += data
        return len(data)


def make_init(template) -> bytes:
    """ftyp + moov for a stream, from FFmpeg's MP4 muxer (which builds avcC from whatever form
    the camera's parameter sets come in)."""
    sink = _Sink()
    container = av.open(sink, "w", format="mp4", options=INIT_OPTIONS)
    container.add_stream_from_template(template)
    container.start_encoding()
    data = bytes(sink.data)
    try:
        container.close()
    except (av.error.FFmpegError, ValueError):
        pass
    moov = find_box(data, ["moov"])
    return data[:moov[1]] if moov else b""


class LiveWriter:
    """Writes ``init.mp4``, one ``f<seq>.m4s`` per frame and ``index.json`` for one camera while
    someone wants it (checked at each keyframe)."""

    def __init__(self, folder: Path, template) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("f*.m4s"):
            old.unlink(missing_ok=True)
        (folder / "index.json").unlink(missing_ok=True)
        self.generation = uuid.uuid4().hex[:12]
        self.time_base = template.time_base
        try:
            self.init = make_init(template) if template.codec_context.name == "h264" else b""
        except (av.error.FFmpegError, ValueError):
            self.init = b""
        self.codec = codec_string(self.init) if self.init else None
        extradata = template.codec_context.extradata or b""
        self.annexb = not (extradata[:1] == b"\x01")  # avcC extradata: samples are length-prefixed
        self.timescale = timescale_of(self.init) if self.codec else 90000
        self.active = False
        self.held: tuple[int, int, bytes, float] | None = None  # a keyframe waiting for its next packet
        self.splits_keyframes: bool | None = None  # unknown until three keyframes came whole, or one split
        self.whole_keyframes = 0
        self.last_packet_dts: int | None = None
        self.last_was_key = False
        self.init_written = False
        self.seq = 0
        self.oldest = 1
        self.keyframes: list[tuple[int, float]] = []
        self.keyframe_count = 0  # written since the recorder connected: numbers HLS segments
        self.first_dts = None
        self.last_dts = None
        self.last_duration = self.timescale // 15

    @property
    def usable(self) -> bool:
        return self.codec is not None

    def write(self, packet, arrived: float) -> None:
        """One frame, as soon as it arrives; ``arrived`` is the wall time the packet was read.

        Some cameras (x264 among them) send a keyframe's slices as two packets with one
        timestamp, which must be one sample: for those, a keyframe waits for the packet after it
        (which follows within microseconds). Whether a camera does is learnt from its first
        keyframes; every other frame goes out at once."""
        held, self.held = self.held, None
        if held is not None:
            if packet.dts == held[0]:
                self.splits_keyframes = True
                self._sample(held[0], held[1], held[2] + self._data(packet), True, held[3])
                return
            self.whole_keyframes += 1  # (a stream's very first keyframe often comes whole)
            if self.whole_keyframes >= 3 and not self.splits_keyframes:
                self.splits_keyframes = False
            self._sample(*held[:3], True, held[3])
        elif packet.dts == self.last_packet_dts and self.last_was_key:
            self.splits_keyframes = True  # learnt late: this one goes out as a sample of its own
        self.last_packet_dts, self.last_was_key = packet.dts, bool(packet.is_keyframe)
        if packet.is_keyframe:
            was_active, self.active = self.active, wanted(self.folder, WANT_FILE, arrived)
            if was_active and not self.active:  # nobody watches any more: nobody may join this past
                (self.folder / "index.json").unlink(missing_ok=True)
                self.keyframes = []
            if self.active and not self.init_written:
                self._atomic("init.mp4", self.init)
                self.init_written = True
        if not self.active:
            return
        pts = packet.pts if packet.pts is not None else packet.dts
        if packet.is_keyframe and self.splits_keyframes is not False:
            self.held = (packet.dts, pts, self._data(packet), arrived)
        else:
            self._sample(packet.dts, pts, self._data(packet), bool(packet.is_keyframe), arrived)

    def flush(self) -> None:
        """The stream ended with a keyframe waiting for its next packet: write it if this camera
        is known to send keyframes whole; otherwise it may be half a picture, and is dropped."""
        held, self.held = self.held, None
        if held is not None and self.splits_keyframes is False:
            self._sample(*held[:3], True, held[3])

    def _data(self, packet) -> bytes:
        data = bytes(packet)
        return annexb_to_avcc(data) if self.annexb else data

    def _sample(self, packet_dts: int, packet_pts: int, sample: bytes, key: bool, arrived: float) -> None:
        if self.first_dts is None:
            self.first_dts = packet_dts
        dts = round((packet_dts - self.first_dts) * self.time_base * self.timescale)
        cts = max(0, round((packet_pts - packet_dts) * self.time_base * self.timescale))
        if self.last_dts is not None:
            if dts <= self.last_dts:
                dts = self.last_dts + 1
            else:
                self.last_duration = dts - self.last_dts
        self.last_dts = dts
        self.seq += 1
        body = moof_mdat(self.seq, dts, self.last_duration, cts, sample, key)
        self._atomic(f"f{self.seq}.m4s", HEADER.pack(HEADER.size, b"free", HEADER_TAG, arrived,
                                                      FLAG_KEYFRAME if key else 0) + body)
        if key:
            self._keyframe(dts / self.timescale)

    def _keyframe(self, t: float) -> None:
        self.keyframes.append((self.seq, t))
        self.keyframe_count += 1
        keep = [(s, kt) for s, kt in self.keyframes if kt >= t - KEEP_SECONDS] or self.keyframes[-1:]
        for seq in range(self.oldest, keep[0][0]):
            (self.folder / f"f{seq}.m4s").unlink(missing_ok=True)
        self.oldest, self.keyframes = keep[0][0], keep
        self._atomic("index.json", json.dumps({
            "generation": self.generation, "codec": self.codec, "latest": self.seq, "oldest": self.oldest,
            "keyframes": [s for s, _ in keep], "times": [round(kt, 3) for _, kt in keep], "updated": time.time(),
            "keyframe_number": self.keyframe_count - len(keep),
        }).encode())

    def _atomic(self, name: str, data: bytes) -> None:
        tmp = self.folder / (name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, self.folder / name)

    def close(self) -> None:
        self.flush()


def read_index(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "index.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
