"""Live video without re-encoding: the recorder stream-copies the camera into a fragmented MP4
cut into short fragments (one ingest however many people watch); each fragment is a small file
in ``live/<code>/`` and an index says which fragments start with a keyframe, so a viewer can
join at the newest one. The web app sends them over a WebSocket into the browser's Media Source
Extensions."""

from __future__ import annotations

import io
import json
import os
import struct
import time
import uuid
from pathlib import Path

import av

FRAGMENT_OPTIONS = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": "300000"}
KEEP_FRAGMENTS = 60
SAMPLE_IS_NON_SYNC = 0x00010000


def live_folder(media_dir: Path, code: str) -> Path:
    """Where a camera's live fragments and snapshot are (one place for writer and readers)."""
    return media_dir / "live" / code


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


def codec_string(stream) -> str | None:
    """The MSE codec string for an H.264 stream (``avc1.PPCCLL`` from its avcC record)."""
    extradata = stream.codec_context.extradata or b""
    if stream.codec_context.name == "h264" and len(extradata) >= 4 and extradata[0] == 1:
        return "avc1." + extradata[1:4].hex()
    return None


class _Sink(io.RawIOBase):
    def __init__(self, on_bytes) -> None:
        self.on_bytes = on_bytes

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.on_bytes(bytes(data))
        return len(data)


class LiveWriter:
    """Writes ``init.mp4``, ``f<seq>.m4s`` fragments and ``index.json`` for one camera."""

    def __init__(self, folder: Path, template) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("f*.m4s"):
            old.unlink(missing_ok=True)
        self.generation = uuid.uuid4().hex[:12]
        self.codec = codec_string(template)
        self.buffer = b""
        self.init_written = False
        self.seq = 0
        self.keyframes: list[int] = []
        self.container = av.open(_Sink(self._bytes), "w", format="mp4", options=FRAGMENT_OPTIONS)
        self.stream = self.container.add_stream_from_template(template)
        self.first_dts = None
        self.last_dts = None

    @property
    def usable(self) -> bool:
        return self.codec is not None

    def write(self, packet) -> None:
        if self.first_dts is None:
            if not packet.is_keyframe:
                return
            self.first_dts = packet.dts
        copy = av.Packet(bytes(packet))
        dts = packet.dts - self.first_dts
        if self.last_dts is not None and dts <= self.last_dts:
            dts = self.last_dts + 1
        pts = (packet.pts if packet.pts is not None else packet.dts) - self.first_dts
        copy.dts, copy.pts, copy.is_keyframe, copy.time_base = dts, max(pts, dts), packet.is_keyframe, packet.time_base
        self.last_dts = dts
        copy.stream = self.stream
        self.container.mux(copy)

    def _bytes(self, data: bytes) -> None:
        self.buffer += data
        consumed = 0
        pending_moof = None
        for kind, start, end in boxes(self.buffer):
            if kind in ("ftyp", "moov") and not self.init_written:
                if kind == "moov":
                    self._atomic("init.mp4", self.buffer[:end])
                    self.init_written = True
                    consumed = end
            elif kind == "moof":
                pending_moof = start
            elif kind == "mdat" and pending_moof is not None:
                self._fragment(self.buffer[pending_moof:end])
                consumed, pending_moof = end, None
        self.buffer = self.buffer[consumed:]

    def _fragment(self, data: bytes) -> None:
        self.seq += 1
        moof_end = struct.unpack(">I", data[:4])[0]
        self._atomic(f"f{self.seq}.m4s", data)
        if starts_with_keyframe(data[:moof_end]):
            self.keyframes = [k for k in self.keyframes if k > self.seq - KEEP_FRAGMENTS] + [self.seq]
        stale = self.folder / f"f{self.seq - KEEP_FRAGMENTS}.m4s"
        stale.unlink(missing_ok=True)
        self._atomic("index.json", json.dumps({
            "generation": self.generation, "codec": self.codec, "latest": self.seq, "keyframes": self.keyframes,
            "updated": time.time(),
        }).encode())

    def _atomic(self, name: str, data: bytes) -> None:
        tmp = self.folder / (name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, self.folder / name)

    def close(self) -> None:
        try:
            self.container.close()
        except (av.error.FFmpegError, ValueError):
            pass  # the camera went away mid-fragment; nothing to keep


def read_index(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "index.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
