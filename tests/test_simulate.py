"""Simulated camera footage: a real H.264 MP4 that PyAV decodes, with a moving scene, regular
keyframes, even timestamps and a burnt-in clock that ticks with the video's own time."""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction

import av
import numpy as np
import pytest

from siskamling.cameras.simulate import ClipInfo, clock_box, ensure_demo_clips, generate_clip, seed_for
from siskamling.core.time import WIB

W, H, FPS, SECONDS, GOP = 320, 180, 10, 4, 20
START = datetime(2026, 1, 2, 18, 0, 0, tzinfo=WIB)


def decode(path) -> tuple[dict, list[av.VideoFrame], list[np.ndarray]]:
    """The stream's description, all frames of a clip, and their luma planes as numpy arrays.
    (The stream object itself must not be used once the container is closed.)"""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        about = {"codec": ctx.name, "profile": ctx.profile, "pix_fmt": ctx.pix_fmt, "size": (ctx.width, ctx.height),
                 "frames": stream.frames, "time_base": stream.time_base}
        frames = list(container.decode(stream))
    return about, frames, [f.to_ndarray(format="gray").astype(np.int16) for f in frames]


def changed(a: np.ndarray, b: np.ndarray, box=None, threshold: int = 60) -> int:
    """How many pixels differ by more than sensor noise and compression could explain."""
    if box:
        x0, y0, x1, y1 = box
        a, b = a[y0:y1, x0:x1], b[y0:y1, x0:x1]
    return int((np.abs(a - b) > threshold).sum())


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("sim") / "cam.mp4"
    info = generate_clip(path, seconds=SECONDS, width=W, height=H, fps=FPS, seed=7, title="Kamera Uji", start=START)
    return info, *decode(path)


def test_clip_is_h264_of_the_asked_size_and_length(clip):
    info, stream, frames, _ = clip
    assert info == ClipInfo(path=info.path, seconds=SECONDS, width=W, height=H, fps=FPS, frames=SECONDS * FPS,
                            bytes=info.path.stat().st_size)
    assert info.bytes > 0 and not list(info.path.parent.glob(".*.part"))
    assert stream["codec"] == "h264"
    assert stream["profile"] in {"Baseline", "Constrained Baseline", "Main"}
    assert stream["pix_fmt"] == "yuv420p"
    assert stream["size"] == (W, H)
    assert len(frames) == stream["frames"] == SECONDS * FPS
    assert all((f.width, f.height) == (W, H) for f in frames)


def test_keyframes_and_timestamps_are_regular(clip):
    _, stream, frames, _ = clip
    keys = [i for i, f in enumerate(frames) if f.key_frame]
    assert keys[0] == 0
    assert all(b - a <= GOP for a, b in zip(keys, keys[1:], strict=False))
    assert len(frames) - 1 - keys[-1] < GOP
    assert keys == list(range(0, len(frames), GOP))  # exactly every gop frames: 10 s segments cut cleanly
    steps = {b.pts - a.pts for a, b in zip(frames, frames[1:], strict=False)}
    assert len(steps) == 1 and steps.pop() * stream["time_base"] == Fraction(1, FPS)
    assert frames[0].time == 0 and frames[-1].time == pytest.approx((len(frames) - 1) / FPS)


def test_the_scene_moves(clip):
    _, _, _, luma = clip
    below_overlay = (0, clock_box(W, H)[3], W, H)
    moved = [changed(a, b, below_overlay) for a, b in zip(luma, luma[1:], strict=False)]
    assert min(moved) > 20, moved  # something crosses the frame between any two consecutive frames


def test_clock_ticks_with_the_video_time(clip):
    _, _, frames, luma = clip
    box = clock_box(W, H)
    assert frames[FPS].time == 1.0
    for second in range(SECONDS):
        first, last = second * FPS, second * FPS + FPS - 1
        for i in range(first + 1, last + 1):  # within a second the clock stays as it is
            assert changed(luma[first], luma[i], box) <= 2, (first, i)
        if second + 1 < SECONDS:  # and it changes the moment the next second starts
            assert changed(luma[last], luma[last + 1], box) > 5, last
            assert changed(luma[first], luma[first + FPS], box) > 5, first
    # the title line above is the same all along
    x0, y0, x1, _ = box
    title = (x0, 0, x1, y0)
    assert max(changed(luma[0], f, title) for f in luma) <= 2


def test_same_seed_same_video_other_seed_other_scene(clip, tmp_path):
    info, _, _, luma = clip
    again = generate_clip(tmp_path / "again.mp4", seconds=SECONDS, width=W, height=H, fps=FPS, seed=7,
                          title="Kamera Uji", start=START)
    assert again.path.read_bytes() == info.path.read_bytes()
    assert np.array_equal(decode(again.path)[2][0], luma[0])
    other = generate_clip(tmp_path / "other.mp4", seconds=1, width=W, height=H, fps=FPS, seed=8, title="Kamera Uji",
                          start=START)
    assert np.abs(decode(other.path)[2][0] - luma[0]).mean() > 5


def test_bad_size_raises_and_leaves_nothing(tmp_path):
    with pytest.raises(ValueError):
        generate_clip(tmp_path / "odd.mp4", seconds=1, width=321, height=180, fps=FPS)
    assert list(tmp_path.iterdir()) == []


def test_ensure_demo_clips_generates_once_per_camera(tmp_path):
    cams = [("CAM-01", "Taman Sukamaju"), ("CAM-02", "Pintu Air Mekarsari")]
    size = {"width": 160, "height": 90, "fps": 5}
    paths = ensure_demo_clips(tmp_path, cams, seconds=1, **size)
    assert paths == {code: tmp_path / f"{code}.mp4" for code, _ in cams}
    firsts = [decode(p)[2][0] for p in paths.values()]
    assert np.abs(firsts[0] - firsts[1]).mean() > 5  # one seed per code
    assert seed_for("CAM-01") == seed_for("CAM-01") != seed_for("CAM-02")
    stamps = {code: p.stat().st_mtime_ns for code, p in paths.items()}
    ensure_demo_clips(tmp_path, cams, seconds=1, **size)
    assert {code: p.stat().st_mtime_ns for code, p in paths.items()} == stamps  # nothing regenerated
    paths["CAM-02"].write_bytes(b"not a video")
    ensure_demo_clips(tmp_path, cams, seconds=2, **size)  # wrong length everywhere, one broken file
    for p in paths.values():
        with av.open(str(p)) as container:
            assert container.streams.video[0].frames == 2 * size["fps"]
    with pytest.raises(ValueError):
        ensure_demo_clips(tmp_path, [("../evil", "x")], seconds=1, **size)
