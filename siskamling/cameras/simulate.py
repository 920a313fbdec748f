"""Simulated CCTV footage, generated here so the demo cameras need no outside video.

A scene is a street seen from a pole: shophouses, a pavement, a two-lane road, a park strip; cars,
motorbikes and people cross it at their own speeds, with mild sensor noise, and a burnt-in
overlay in the top-left (title and a WIB clock that follows the video's own timestamps) as real
cameras have. Everything is drawn with numpy (slices and boolean masks, no per-pixel Python) and
encoded with PyAV's libx264 into an H.264 MP4 (yuv420p, main profile, closed GOPs of a fixed
length, so that 10-second recording segments cut cleanly on keyframes).

Motion is periodic with the clip's length (every object crosses a whole number of times), so a
clip played in a loop has no jump in the scene; only the clock goes back.

Same seed, same size and same start: the same video, byte for byte.
"""

from __future__ import annotations

import math
import os
import queue
import re
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from siskamling.core.time import WIB

__all__ = ["ClipInfo", "Scene", "clock_box", "ensure_demo_clips", "frames", "generate_clip", "probe_clip", "seed_for"]

FONT_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationMono-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSansMono-Bold.ttf",
)
CLOCK_FORMAT = "%Y-%m-%d %H:%M:%S WIB"
NOISE_AMP = 6  # noise is added in uint8 as (noise in 0..2*AMP) - AMP, so the scene stays within AMP..255-AMP
NOISE_FRAMES = 8
CODE_RE = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class ClipInfo:
    path: Path
    seconds: float
    width: int
    height: int
    fps: int
    frames: int
    bytes: int


# --- overlay -----------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in FONT_PATHS:
        if os.path.exists(path):
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)  # Pillow's own scalable font (needs FreeType)


def _font_size(height: int) -> int:
    return max(10, round(height / 20))


def _even(n: float) -> int:
    return 2 * math.ceil(n / 2)


def _layout(width: int, height: int) -> tuple[int, int, int, int]:
    """(margin, line height, stroke width, font size) of the overlay for a frame size; margin and
    line height are even so that the text sits on whole chroma samples."""
    size = _font_size(height)
    return _even(height / 45), _even(size * 1.25), max(1, round(size / 12)), size


def clock_box(width: int, height: int) -> tuple[int, int, int, int]:
    """Where the clock line is drawn, as (x0, y0, x1, y1) in pixels (x1, y1 exclusive)."""
    margin, line, stroke, size = _layout(width, height)
    text_w = _even(math.ceil(_font(size).getlength("0000-00-00 00:00:00 WIB")) + 2 * stroke + 2)
    y0 = margin + line
    return margin, y0, min(width, margin + text_w), min(height, y0 + line)


class _Overlay:
    """Burnt-in text: white with a black outline, composited on the Y plane as Y * keep + add and
    on the chroma planes towards grey, so the text is neutral whatever lies beneath.

    The title is drawn once; the clock line once per distinct second (then reused)."""

    def __init__(self, width: int, height: int, title: str):
        self.margin, self.line, self.stroke, size = _layout(width, height)
        self.font = _font(size)
        self.width, self.height = width, height
        self.title = self._render(title)
        self._clock_text: str | None = None
        self._clock: _Layer | None = None

    def _render(self, text: str) -> _Layer:
        w = min(self.width - self.margin, _even(math.ceil(self.font.getlength(text)) + 2 * self.stroke + 2))
        h = min(self.height - self.margin, self.line)
        outline = Image.new("L", (w, h))
        fill = Image.new("L", (w, h))
        at = (self.stroke + 1, max(0, (self.line - self.font.size) // 2 - 1))
        ImageDraw.Draw(outline).text(at, text, font=self.font, fill=255, stroke_width=self.stroke, stroke_fill=255)
        ImageDraw.Draw(fill).text(at, text, font=self.font, fill=255)
        s = np.asarray(outline, dtype=np.float32) / 255
        f = np.asarray(fill, dtype=np.float32) / 255
        keep = (1 - s) * (1 - f)  # the outline darkens the scene to black, the fill replaces it with white
        add = 16 * s * (1 - f) + 235 * f  # studio range: black 16, white 235
        ckeep = keep.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        return _Layer(keep, add + 0.5, ckeep, 128 * (1 - ckeep) + 0.5)

    def draw(self, planes: _Planes, clock: datetime) -> None:
        text = clock.strftime(CLOCK_FORMAT)
        if text != self._clock_text:
            self._clock_text, self._clock = text, self._render(text)
        self.title.blit(planes, self.margin, self.margin)
        self._clock.blit(planes, self.margin, self.margin + self.line)


@dataclass
class _Layer:
    keep: np.ndarray  # (h, w) float32
    add: np.ndarray
    ckeep: np.ndarray  # (h/2, w/2)
    cadd: np.ndarray

    def blit(self, planes: _Planes, x: int, y: int) -> None:
        h, w = self.keep.shape
        region = planes.y[y:y + h, x:x + w]
        region[...] = region * self.keep + self.add
        for plane in (planes.u, planes.v):
            region = plane[y // 2:(y + h) // 2, x // 2:(x + w) // 2]
            region[...] = region * self.ckeep + self.cadd


# --- scene -------------------------------------------------------------------------------------


class _Planes:
    """One yuv420p frame in a single buffer (as PyAV's from_ndarray wants it) with plane views."""

    def __init__(self, width: int, height: int, buf: np.ndarray | None = None):
        n = width * height
        self.buf = np.empty(n * 3 // 2, np.uint8) if buf is None else buf
        self.y = self.buf[:n].reshape(height, width)
        self.u = self.buf[n:n * 5 // 4].reshape(height // 2, width // 2)
        self.v = self.buf[n * 5 // 4:].reshape(height // 2, width // 2)

    def ndarray(self) -> np.ndarray:
        return self.buf.reshape(-1, self.y.shape[1])


def _yuv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BT.601 studio range, as float arrays of the same leading shape."""
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    return y, u, v


def _u8(a: np.ndarray, lo: int = 0, hi: int = 255) -> np.ndarray:
    return np.clip(np.rint(a), lo, hi).astype(np.uint8)


def _disc(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    yy, xx = np.ogrid[0:h, 0:w]
    return ((yy - cy) / max(ry, 0.5)) ** 2 + ((xx - cx) / max(rx, 0.5)) ** 2 <= 1


def _clip(shape: tuple[int, ...], mask: np.ndarray, y: int, x: int):
    """The part of a mask placed at (y, x) that falls inside a plane: (plane slices, mask slices)."""
    h, w = mask.shape
    y0, x0, y1, x1 = max(0, y), max(0, x), min(shape[0], y + h), min(shape[1], x + w)
    if y0 >= y1 or x0 >= x1:
        return None
    return (slice(y0, y1), slice(x0, x1)), (slice(y0 - y, y1 - y), slice(x0 - x, x1 - x))


def _put(plane: np.ndarray, mask: np.ndarray, values: np.ndarray, y: int, x: int) -> None:
    cut = _clip(plane.shape, mask, y, x)
    if cut:
        m = mask[cut[1]]
        plane[cut[0]][m] = values[cut[1]][m]


def _rect(img: np.ndarray, y0: float, x0: float, y1: float, x1: float, color) -> None:
    img[max(0, round(y0)):max(0, round(y1)), max(0, round(x0)):max(0, round(x1))] = color


@dataclass
class _Sprite:
    """Something drawn over the background: luma at full resolution, chroma at half, a mask for
    each, and a shadow (a mask darkening the ground under it)."""

    y: np.ndarray
    mask: np.ndarray
    u: np.ndarray
    v: np.ndarray
    cmask: np.ndarray
    shadow: np.ndarray

    @classmethod
    def from_rgb(cls, rgb: np.ndarray, mask: np.ndarray, shadow: np.ndarray, flip: bool = False) -> _Sprite:
        if flip:
            rgb, mask = rgb[:, ::-1], mask[:, ::-1]
        y, u, v = _yuv(rgb)
        return cls(_u8(y, NOISE_AMP, 255 - NOISE_AMP), mask.copy(), _u8(u[::2, ::2]), _u8(v[::2, ::2]),
                   mask[::2, ::2].copy(), shadow)

    def draw(self, planes: _Planes, y: int, x: int) -> None:
        sh = self.shadow
        cut = _clip(planes.y.shape, sh, y + self.mask.shape[0] - sh.shape[0] // 2, x)
        if cut:
            m = sh[cut[1]]
            view = planes.y[cut[0]]
            view[m] = np.maximum(view[m] >> 1, NOISE_AMP) + (view[m] >> 3)  # about 5/8, in uint8
        _put(planes.y, self.mask, self.y, y, x)
        _put(planes.u, self.cmask, self.u, y // 2, x // 2)
        _put(planes.v, self.cmask, self.v, y // 2, x // 2)


@dataclass
class _Mover:
    poses: list[_Sprite]  # walking people alternate between two poses
    baseline: int  # y of the feet / wheels
    speed: float  # px/s, negative to the left; 0 for things that stay put
    offset: float  # px along the path at t=0
    stride: float  # px between pose changes

    def draw(self, planes: _Planes, t: float) -> None:
        h, w = self.poses[0].mask.shape
        span = planes.y.shape[1] + 2 * w
        pos = (self.offset + self.speed * t) % span if self.speed else self.offset
        pose = self.poses[int(pos // self.stride) % len(self.poses)]
        pose.draw(planes, self.baseline - h, round(pos) - w)


PAINT = [(196, 160, 96), (214, 204, 178), (160, 188, 196), (222, 184, 150), (180, 170, 200), (200, 120, 90),
         (150, 170, 120), (226, 214, 160)]
CAR = [(228, 228, 224), (170, 172, 176), (38, 40, 44), (176, 40, 36), (40, 70, 140), (110, 112, 118)]
SHIRT = [(200, 50, 50), (40, 90, 170), (230, 230, 220), (240, 180, 40), (60, 140, 80), (120, 60, 140), (30, 30, 34)]
SKIN = [(200, 150, 110), (170, 120, 85), (140, 95, 65)]
PANTS = [(40, 44, 60), (70, 60, 50), (30, 30, 30), (90, 100, 120)]
HELMET = [(20, 20, 20), (220, 220, 220), (200, 40, 40), (30, 110, 60)]


def _pick(rng: np.random.Generator, palette: list[tuple[int, int, int]]) -> np.ndarray:
    return np.array(palette[rng.integers(len(palette))], np.uint8)


def _shadow(h: int, w: int) -> np.ndarray:
    sh = max(2, h)
    return _disc(sh, w, sh / 2, w / 2, sh / 2, w * 0.55)


def _person(rng: np.random.Generator, height: int) -> list[_Sprite]:
    h = max(8, height)
    w = max(5, round(h * 0.42))
    shirt, skin, pants = _pick(rng, SHIRT), _pick(rng, SKIN), _pick(rng, PANTS)
    poses = []
    for pose in range(2):
        rgb = np.zeros((h, w, 3), np.uint8)
        mask = np.zeros((h, w), bool)
        head = _disc(h, w, h * 0.1, w / 2, h * 0.1, h * 0.09)
        torso = np.zeros((h, w), bool)
        torso[round(h * 0.19):round(h * 0.58), round(w * 0.18):round(w * 0.82)] = True
        legs = np.zeros((h, w), bool)
        spread = 0.12 if pose == 0 else 0.02
        for cx in (0.5 - 0.14 - spread, 0.5 + 0.14 + spread):
            legs[round(h * 0.56):h, max(0, round(w * (cx - 0.1))):round(w * (cx + 0.1))] = True
        for part, color in ((legs, pants), (torso, shirt), (head, skin)):
            rgb[part] = color
            mask |= part
        poses.append(_Sprite.from_rgb(rgb, mask, _shadow(h // 8, w)))
    return poses


def _car(rng: np.random.Generator, length: int, facing_right: bool) -> _Sprite:
    w = max(16, length)
    h = max(8, round(w * 0.42))
    body = _pick(rng, CAR)
    rgb = np.zeros((h, w, 3), np.uint8)
    yy, xx = np.ogrid[0:h, 0:w]
    lower = (yy >= h * 0.42) & (yy < h * 0.85) & (xx >= 0)
    # the cabin is a trapezoid, narrower at the roof, with windows split by a pillar
    frac = np.clip((yy - h * 0.05) / (h * 0.4), 0, 1)
    left, right = w * (0.30 - 0.10 * frac), w * (0.72 + 0.10 * frac)
    cabin = (yy >= h * 0.05) & (yy < h * 0.45) & (xx >= left) & (xx <= right)
    glass = cabin & (yy >= h * 0.12) & (xx >= left + w * 0.03) & (xx <= right - w * 0.03)
    glass &= np.abs(xx - w * 0.52) >= max(1, w * 0.015)
    rgb[lower | cabin] = body
    rgb[glass] = (60, 78, 96)
    mask = lower | cabin
    for cx in (0.22, 0.78):
        wheel = _disc(h, w, h * 0.82, w * cx, h * 0.18, h * 0.18)
        rgb[wheel] = (16, 16, 18)
        rgb[_disc(h, w, h * 0.82, w * cx, h * 0.07, h * 0.07)] = (150, 150, 150)
        mask |= wheel
    rgb[round(h * 0.48):round(h * 0.6), w - max(2, w // 25):] = (250, 240, 200)  # head lamp
    rgb[round(h * 0.48):round(h * 0.6), :max(2, w // 30)] = (200, 20, 20)  # tail lamp
    return _Sprite.from_rgb(rgb, mask, _shadow(h // 5, w), flip=not facing_right)


def _motorbike(rng: np.random.Generator, length: int, facing_right: bool) -> _Sprite:
    w = max(10, length)
    h = max(10, round(w * 0.95))
    rgb = np.zeros((h, w, 3), np.uint8)
    mask = np.zeros((h, w), bool)
    bike = np.zeros((h, w), bool)
    bike[round(h * 0.6):round(h * 0.8), round(w * 0.12):round(w * 0.88)] = True
    rider = np.zeros((h, w), bool)
    rider[round(h * 0.2):round(h * 0.65), round(w * 0.32):round(w * 0.62)] = True
    head = _disc(h, w, h * 0.14, w * 0.5, h * 0.12, h * 0.12)
    for part, color in ((bike, _pick(rng, CAR)), (rider, _pick(rng, SHIRT)), (head, _pick(rng, HELMET))):
        rgb[part] = color
        mask |= part
    for cx in (0.18, 0.82):
        wheel = _disc(h, w, h * 0.86, w * cx, h * 0.13, h * 0.13)
        rgb[wheel] = (16, 16, 18)
        mask |= wheel
    return _Sprite.from_rgb(rgb, mask, _shadow(h // 8, w), flip=not facing_right)


def _tree(rng: np.random.Generator, r: float) -> tuple[np.ndarray, np.ndarray]:
    """A tree standing on the bottom edge of its (rgb, mask), crown of a few overlapping discs."""
    w, h = round(r * 3.2), round(r * 3.6)
    cx = w / 2
    rgb = np.zeros((h, w, 3), np.float32)
    trunk = np.zeros((h, w), bool)
    trunk[round(h - r * 1.4):, round(cx - r * 0.12):round(cx + r * 0.12) + 1] = True
    rgb[trunk] = (84, 60, 40)
    mask = trunk.copy()
    base = np.array([40, 96 + rng.integers(-15, 15), 38], np.float32)
    for dy, dx, rr in ((0, 0, 1.0), (0.3, -0.55, 0.7), (0.3, 0.55, 0.7), (-0.4, 0.2, 0.6)):
        disc = _disc(h, w, h - r * 2 + dy * r, cx + dx * r, r * rr, r * rr)
        rgb[disc] = base * rng.uniform(0.8, 1.2)
        mask |= disc
    rgb += rng.normal(0, 12, (h, w, 1)) * mask[:, :, None]  # leaves
    return np.clip(rgb, 0, 255).astype(np.uint8), mask


class Scene:
    """A deterministic street scene. `render(t)` gives the frame at t seconds as yuv420p planes.

    `period` is the loop length in seconds: every mover crosses a whole number of times in it."""

    # The layout, as fractions of the height: sky, shophouses, pavement, road, pavement, park.
    SKY, PAVE1, ROAD, ROAD2, PAVE2 = 0.13, 0.40, 0.47, 0.74, 0.79

    def __init__(self, width: int = 640, height: int = 360, seed: int = 0, period: float = 60.0):
        if width < 64 or height < 36 or width % 2 or height % 2:
            raise ValueError("frame size must be even and at least 64x36")
        self.width, self.height, self.period = width, height, period
        rng = np.random.default_rng(seed)
        self.background = _Planes(width, height)
        self._background(rng)
        self.things = self._movers(rng) + self._park_trees(rng)
        self.things.sort(key=lambda m: m.baseline)  # far ones first, so near ones cover them
        noise = rng.normal(NOISE_AMP, NOISE_AMP / 2.5, (NOISE_FRAMES, height, width))
        self.noise = _u8(noise, 0, 2 * NOISE_AMP)

    def _background(self, rng: np.random.Generator) -> None:
        w, h = self.width, self.height
        img = np.zeros((h, w, 3), np.float32)
        yy = np.arange(h, dtype=np.float32)[:, None]
        pave1, road, road2, pave2 = (round(f * h) for f in (self.PAVE1, self.ROAD, self.ROAD2, self.PAVE2))
        # hazy tropical sky, lighter at the horizon
        img[:pave1] = np.array([150, 170, 190], np.float32) + (yy[:pave1, :, None] / max(1, pave1)) * 40
        # shophouses (ruko) in a row, each with its own colour, windows and a shop awning
        x = -int(rng.integers(0, w // 10))
        while x < w:
            bw = int(rng.integers(w // 9, w // 5))
            top = round(h * rng.uniform(self.SKY, self.SKY + 0.12))
            color = np.array(PAINT[rng.integers(len(PAINT))], np.float32)
            x0, x1 = max(0, x), min(w, x + bw)
            if x1 > x0:
                img[top:pave1, x0:x1] = color
                img[top:top + max(2, h // 60), x0:x1] = color * 0.6  # roof edge
                img[top:pave1, x0:x0 + 1] = color * 0.75
                fy, fx = np.ogrid[top:pave1, x0:x1]  # windows: a grid cut by modulo masks
                step_y, step_x = max(6, h // 18), max(6, bw // 4)
                win = (((fy - top) % step_y) > step_y * 0.35) & (((fx - x) % step_x) > step_x * 0.3) & \
                      (fy < pave1 - h * 0.09) & (fy > top + h * 0.02)
                img[top:pave1, x0:x1][win] = color * 0.45 + np.array([30, 40, 50])
                img[pave1 - round(h * 0.085):pave1 - round(h * 0.065), x0:x1] = \
                    np.array(PAINT[rng.integers(len(PAINT))], np.float32) * 0.8  # awning
                img[pave1 - round(h * 0.065):pave1, x0:x1] = color * 0.35  # open shop front in shadow
            x += bw
        # pavements with tile joints and kerbs
        for a, b in ((pave1, road), (road2, pave2)):
            img[a:b] = (176, 172, 164)
            img[a:b, ::max(8, w // 40)] = (150, 146, 140)
            img[b - max(1, h // 120):b] = (120, 120, 118)
            img[a:a + max(1, h // 180)] = (205, 205, 200)
        # asphalt, dashed centre line, a zebra crossing
        img[road:road2] = (78, 80, 84)
        mid, half = (road + road2) // 2, max(1, h // 200)
        dash = max(10, w // 20)
        img[mid - half:mid + half, (np.arange(w) % (2 * dash)) < dash] = (220, 220, 210)
        zx, stripe = int(rng.integers(w // 5, 4 * w // 5)), max(3, w // 90)
        for i in range(6):
            _rect(img, road + 2, zx + i * 2 * stripe, road2 - 2, zx + i * 2 * stripe + stripe, (214, 214, 206))
        # park: grass and a paved path
        img[pave2:] = (74, 122, 60)
        path_y, half = round(h * 0.9), max(2, h // 40)
        img[path_y - half:path_y + half] = (168, 150, 120)
        # lamp posts and trees along the back pavement (behind everything that moves)
        for _ in range(max(2, w // 200)):
            lx, pole = rng.uniform(0, w), max(2, w // 320)
            _rect(img, h * 0.2, lx, pave1 + 1, lx + pole, (60, 62, 66))
            _rect(img, h * 0.2, lx - w * 0.02, h * 0.2 + max(2, h // 120), lx + pole, (60, 62, 66))
        for _ in range(max(2, w // 150)):
            rgb, mask = _tree(rng, h * 0.056 * rng.uniform(0.8, 1.2))
            th, tw = mask.shape
            cut = _clip((h, w), mask, pave1 - round(h * 0.02) - th, round(rng.uniform(0, w)) - tw // 2)
            if cut:
                m = mask[cut[1]]
                img[cut[0]][m] = rgb[cut[1]][m]
        # static grain (asphalt, grass), a lens vignette; then to yuv420p
        img += rng.normal(0, 5, (h, w, 1)).astype(np.float32)
        vy = (np.arange(h, dtype=np.float32) - h / 2) / (h / 2)
        vx = (np.arange(w, dtype=np.float32) - w / 2) / (w / 2)
        img *= (1 - 0.11 * (vy[:, None] ** 2 + vx[None, :] ** 2))[:, :, None]
        y, u, v = _yuv(np.clip(img, 0, 255))
        self.background.y[...] = _u8(y, NOISE_AMP, 255 - NOISE_AMP)  # room for the noise, see render()
        self.background.u[...] = _u8(u.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)))
        self.background.v[...] = _u8(v.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)))

    def _speed(self, wanted: float, span: float) -> float:
        """A speed near `wanted` px/s that makes a whole number of crossings in one period."""
        laps = max(1, round(wanted * self.period / span))
        return laps * span / self.period

    def _movers(self, rng: np.random.Generator) -> list[_Mover]:
        w, h = self.width, self.height
        road, road2, pave1, pave2 = (round(f * h) for f in (self.ROAD, self.ROAD2, self.PAVE1, self.PAVE2))
        far_lane, near_lane = road + round((road2 - road) * 0.45), road2 - round(h * 0.015)
        movers: list[_Mover] = []

        def add(poses: list[_Sprite], baseline: int, wanted: float, direction: int, stride: float = 1e9) -> None:
            span = w + 2 * poses[0].mask.shape[1]
            speed = self._speed(wanted * w / 640, span) * direction
            movers.append(_Mover(poses, baseline, speed, float(rng.uniform(0, span)), stride))

        for _ in range(2):  # cars in both lanes
            add([_car(rng, round(w * rng.uniform(0.15, 0.2)), True)], far_lane, rng.uniform(70, 130), 1)
            add([_car(rng, round(w * rng.uniform(0.17, 0.22)), False)], near_lane, rng.uniform(70, 130), -1)
        for lane, direction in ((far_lane, 1), (near_lane, -1), (near_lane - round(h * 0.03), -1)):  # ojek
            add([_motorbike(rng, round(w * 0.055), direction > 0)], lane, rng.uniform(90, 160), direction)
        walkways = [(pave1 + round(h * 0.05), 0.85), (pave2 - round(h * 0.01), 1.0), (round(h * 0.92), 1.1)]
        for i in range(6):  # people on the pavements and the park path
            baseline, scale = walkways[i % 3]
            add(_person(rng, round(h * 0.12 * scale)), baseline, rng.uniform(14, 40),
                1 if rng.random() < 0.5 else -1, max(3.0, h * 0.025))
        return movers

    def _park_trees(self, rng: np.random.Generator) -> list[_Mover]:
        """Trees in the park stand in front of the road, so they hide what passes behind them."""
        trees = []
        for _ in range(max(2, self.width // 160)):
            r = self.height * 0.075 * rng.uniform(0.8, 1.2)
            rgb, mask = _tree(rng, r)
            tree = _Sprite.from_rgb(rgb, mask, _shadow(max(2, round(r / 4)), mask.shape[1]))
            base = round(self.height * rng.uniform(self.PAVE2 + 0.1, 1.02))
            trees.append(_Mover([tree], base, 0.0, rng.uniform(0, self.width) + tree.mask.shape[1] / 2, 1e9))
        return trees

    def render(self, t: float, noise_index: int = 0, out: _Planes | None = None) -> _Planes:
        """The scene at `t` seconds (no overlay), into `out` or a fresh frame."""
        planes = out or _Planes(self.width, self.height)
        planes.buf[...] = self.background.buf
        for thing in self.things:
            thing.draw(planes, t)
        # sensor noise on luma: add 0..2*AMP then take AMP off; the scene's luma stays within
        # AMP..255-AMP (background, sprites and shadows are clipped so), so uint8 never wraps
        np.add(planes.y, self.noise[noise_index % NOISE_FRAMES], out=planes.y)
        np.subtract(planes.y, np.uint8(NOISE_AMP), out=planes.y)
        return planes


# --- encoding ----------------------------------------------------------------------------------


def _wib(start: datetime | None) -> datetime:
    if start is None:
        return datetime.now(WIB)
    return start.replace(tzinfo=WIB) if start.tzinfo is None else start.astimezone(WIB)


def frames(*, seconds: float, width: int = 640, height: int = 360, fps: int = 15, seed: int = 0,
           title: str = "Kamera Demo", start: datetime | None = None) -> Iterator[np.ndarray]:
    """The clip's frames, overlay included (frame i shows start + i/fps), each a fresh yuv420p
    array of shape (height * 3 / 2, width) as `av.VideoFrame.from_ndarray(a, format="yuv420p")`
    takes it."""
    count = round(seconds * fps)
    scene = Scene(width, height, seed, period=count / fps)
    overlay = _Overlay(width, height, title)
    clock0 = _wib(start)
    for i in range(count):
        planes = scene.render(i / fps, noise_index=i)
        overlay.draw(planes, clock0 + timedelta(seconds=i / fps))
        yield planes.ndarray()


def _ahead(items: Iterator[np.ndarray], depth: int = 4) -> Iterator[np.ndarray]:
    """Run a frame iterator in a thread a few frames ahead, so that drawing overlaps encoding
    (measured about 20 % faster in all on two cores)."""
    q: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    end = object()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as exc:  # handed to the consumer, raised there
            put((end, exc))

    thread = threading.Thread(target=work, name="simulate-render", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = q.get()
            if exc is not None:
                raise exc
            if item is end:
                return
            yield item
    finally:
        stop.set()
        thread.join()


def generate_clip(path: str | os.PathLike, *, seconds: float = 60, width: int = 640, height: int = 360,
                  fps: int = 15, seed: int = 0, title: str = "Kamera Demo", start: datetime | None = None,
                  gop: int | None = None, bitrate: int | None = None) -> ClipInfo:
    """Write a simulated CCTV clip as H.264 MP4 and describe it.

    `gop` (default 2*fps) is the exact keyframe interval in frames; `bitrate` defaults to about
    800 kb/s at 640x360@15, scaled with the pixel rate. The file appears atomically (written
    beside it first, then renamed)."""
    path = Path(path)
    fps = int(fps)
    gop = int(gop or 2 * fps)
    count = round(seconds * fps)
    if fps < 1 or gop < 1 or count < 1:
        raise ValueError("fps, gop and the number of frames must be positive")
    bitrate = int(bitrate or 800_000 * (width * height * fps) / (640 * 360 * 15))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as container:
            container.metadata["title"] = title
            container.metadata["comment"] = f"Siskamling simulated camera, seed {seed}"
            stream = container.add_stream("libx264", rate=fps, options={
                "preset": "veryfast",
                "tune": "zerolatency",
                "profile": "main",
                # fixed, closed GOPs: a keyframe exactly every `gop` frames, never in between
                "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:open-gop=0",
                "maxrate": str(bitrate * 3 // 2),
                "bufsize": str(bitrate * 2),
            })
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.bit_rate = bitrate
            stream.codec_context.gop_size = gop
            stream.codec_context.time_base = Fraction(1, fps)
            tb = Fraction(1, fps)
            for i, yuv in enumerate(_ahead(frames(seconds=seconds, width=width, height=height, fps=fps,
                                                  seed=seed, title=title, start=start))):
                frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
                frame.pts, frame.time_base = i, tb
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return ClipInfo(path=path, seconds=count / fps, width=width, height=height, fps=fps, frames=count,
                    bytes=path.stat().st_size)


def probe_clip(path: str | os.PathLike) -> ClipInfo | None:
    """Describe an existing clip from its headers, or None if it is missing or unreadable."""
    probed = _probe(Path(path))
    return probed[0] if probed else None


def _probe(path: Path) -> tuple[ClipInfo, str] | None:
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = stream.average_rate or stream.guessed_rate
            count = stream.frames
            seconds = float(count / fps) if fps and count else float(container.duration or 0) / av.time_base
            info = ClipInfo(path=path, seconds=seconds, width=stream.codec_context.width,
                            height=stream.codec_context.height, fps=round(fps or 0), frames=count,
                            bytes=path.stat().st_size)
            return info, container.metadata.get("title", "")
    except (OSError, av.FFmpegError, IndexError):
        return None


def seed_for(code: str) -> int:
    """A stable seed per camera code (not Python's per-process hash())."""
    return zlib.crc32(code.encode())


def ensure_demo_clips(folder: str | os.PathLike, cameras: list[tuple[str, str]], seconds: float = 60, *,
                      width: int = 640, height: int = 360, fps: int = 15) -> dict[str, Path]:
    """One clip per camera code in `folder` (CODE.mp4, seeded by the code), generated unless a clip
    of the same size, frame rate, length and title is already there."""
    folder = Path(folder)
    out: dict[str, Path] = {}
    for code, title in cameras:
        if not CODE_RE.match(code) or code in {".", ".."}:
            raise ValueError(f"camera code not usable as a file name: {code!r}")
        path = folder / f"{code}.mp4"
        have = _probe(path)
        wanted = (width, height, fps, round(seconds * fps), title)
        if not have or (have[0].width, have[0].height, have[0].fps, have[0].frames, have[1]) != wanted:
            generate_clip(path, seconds=seconds, width=width, height=height, fps=fps, seed=seed_for(code), title=title)
        out[code] = path
    return out
