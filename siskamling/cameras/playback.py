"""Playing back and exporting recordings: the segments covering a time range are stream-copied
into one MP4 (no re-encoding), with continuous timestamps; an export adds a manifest with the
SHA-256 of every file, signed with the deployment's Ed25519 key."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import av
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MAX_RANGE_S = 3 * 3600


class NothingRecorded(Exception):
    pass


@dataclass(frozen=True)
class SourceSegment:
    path: Path
    started_at: datetime
    ended_at: datetime


def remux(segments: list[SourceSegment], start: datetime, end: datetime, out: Path) -> float:
    """Write the part of ``segments`` between ``start`` and ``end`` to ``out`` (MP4, moov first so a
    browser can start playing at once). Starts at the keyframe at or before ``start``. Returns the
    duration written, in seconds."""
    output = av.open(str(out), "w", format="mp4", options={"movflags": "+faststart"})
    state = {"stream": None, "origin": None, "last_dts": None, "until": 0.0}
    pending: list = []  # the GOP running at ``start``: playback opens on its keyframe
    start_ts, end_ts = start.timestamp(), end.timestamp()

    def write(packet, wall: float, tb) -> None:
        delta = (packet.pts - packet.dts) if packet.pts is not None else 0
        dts = round((wall - state["origin"]) / float(tb))
        if state["last_dts"] is not None and dts <= state["last_dts"]:
            dts = state["last_dts"] + 1
        packet.dts, packet.pts = dts, max(dts + delta, dts)
        packet.time_base = tb
        state["last_dts"] = dts
        packet.stream = state["stream"]
        output.mux(packet)
        state["until"] = wall - state["origin"]

    try:
        for seg in segments:
            container = av.open(str(seg.path))
            try:
                source = container.streams.video[0]
                tb = source.time_base
                if state["stream"] is None:
                    state["stream"] = output.add_stream_from_template(source)
                first = None
                for packet in container.demux(source):
                    if packet.dts is None:
                        continue
                    first = packet.dts if first is None else first
                    wall = seg.started_at.timestamp() + float((packet.dts - first) * tb)
                    if wall > end_ts:
                        break
                    if state["origin"] is None:
                        if packet.is_keyframe:
                            pending = [(packet, wall)]
                        elif pending:
                            pending.append((packet, wall))
                        if wall < start_ts or not pending:
                            continue
                        state["origin"] = pending[0][1]
                        for held, held_wall in pending:
                            write(held, held_wall, tb)
                        pending = []
                        continue
                    write(packet, wall, tb)
            finally:
                container.close()
    finally:
        output.close()
    if state["origin"] is None:
        out.unlink(missing_ok=True)
        raise NothingRecorded("nothing was recorded in that time range")
    return state["until"]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def signing_key(secret_key: str) -> Ed25519PrivateKey:
    """The deployment's evidence key, derived from its secret key (so it survives restarts and is
    the same on every node)."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"siskamling-evidence:" + secret_key.encode()).digest())


def public_key_text(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def canonical(manifest: dict) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(manifest: dict, key: Ed25519PrivateKey) -> dict:
    manifest = dict(manifest, public_key=public_key_text(key))
    manifest["signature"] = base64.b64encode(key.sign(canonical(manifest))).decode()
    return manifest


@dataclass(frozen=True)
class Verdict:
    ok: bool
    problems: list[str]
    public_key: str | None = None


def verify_export(folder: Path, expected_public_key: str | None = None) -> Verdict:
    """Check an export folder: the signature over the manifest, the export file's hash, and the
    hashes of the source segments that are still present."""
    problems: list[str] = []
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError) as exc:
        return Verdict(False, [f"manifest.json cannot be read: {exc}"])
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(manifest["public_key"]))
        key.verify(base64.b64decode(manifest["signature"]), canonical(manifest))
    except (KeyError, ValueError, InvalidSignature):
        problems.append("the manifest's signature does not match its content")
    if expected_public_key and manifest.get("public_key") != expected_public_key:
        problems.append("the manifest was not signed by this deployment's key")
    video = folder / manifest.get("file", {}).get("name", "")
    if not video.is_file():
        problems.append("the exported video file is missing")
    elif sha256_file(video) != manifest["file"].get("sha256"):
        problems.append(f"{video.name} does not match its SHA-256 in the manifest")
    return Verdict(not problems, problems, manifest.get("public_key"))
