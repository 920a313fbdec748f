"""Photos sent with a report: checked to be images, size-limited, and re-encoded as JPEG so that
nothing but the pixels survives (no EXIF, no GPS position, no maker notes)."""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from siskamling.core.errors import Invalid

MAX_PHOTOS = 5
MAX_SIDE = 2560  # longer side after re-encoding
MAX_PIXELS = 40_000_000  # refuse decompression bombs before decoding
ACCEPTED = {"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"}


@dataclass(frozen=True)
class CleanPhoto:
    data: bytes
    width: int
    height: int
    sha256: str


def clean(raw: bytes, *, max_bytes: int, name: str = "") -> CleanPhoto:
    label = name or "photo"
    if not raw:
        raise Invalid("%(name)s is empty", name=label)
    if len(raw) > max_bytes:
        # Uploads are read only up to the limit (and one byte more): the true size is not known.
        raise Invalid("%(name)s is too large (at most %(max)s MB)", name=label, max=f"{max_bytes / 1e6:.0f}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(raw))
            if probe.format not in ACCEPTED:
                raise Invalid("%(name)s is not a photo (JPEG, PNG or WebP)", name=label)
            if probe.width * probe.height > MAX_PIXELS:
                raise Invalid("%(name)s has too many pixels", name=label)
            probe.verify()
            image = Image.open(io.BytesIO(raw))
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning, ValueError):
        raise Invalid("%(name)s is not a photo (JPEG, PNG or WebP)", name=label) from None
    image = ImageOps.exif_transpose(image)  # keep the picture upright once its EXIF is gone
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGBA").convert("RGB") if "A" in image.mode or image.mode == "P" else image.convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    # A fresh save with no exif/icc/comment arguments writes only the pixels.
    image.save(out, format="JPEG", quality=85, optimize=True)
    data = out.getvalue()
    return CleanPhoto(data=data, width=image.width, height=image.height, sha256=hashlib.sha256(data).hexdigest())


def write(media_dir: Path, relative: str, data: bytes) -> None:
    """Durably: the file is on disk before the database row that names it commits."""
    target = media_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)


@contextmanager
def stored(media_dir: Path, folder: str, cleaned: list[CleanPhoto]) -> Iterator[list[tuple[int, str, CleanPhoto]]]:
    """Writes the photos as ``folder/1.jpg``, ``2.jpg``… (durably) and yields (number, relative
    path, photo) for the rows that name them; if the block fails (its transaction will not
    commit), the files are removed again."""
    written: list[Path] = []
    try:
        saved = []
        for n, photo in enumerate(cleaned, 1):
            relative = f"{folder}/{n}.jpg"
            write(media_dir, relative, photo.data)
            written.append(media_dir / relative)
            saved.append((n, relative, photo))
        yield saved
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
