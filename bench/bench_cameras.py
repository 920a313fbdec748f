"""Camera capacity benchmarks: how many cameras one machine records (``record``), and records,
delivers live and decodes for analytics (``pipeline``), each with a reference measured in the
same run. Method and figures: docs/benchmarks.md.

Run from the project folder (full runs need a quiet machine; a few cameras for a try):

    .venv/bin/python bench/bench_cameras.py record --cameras 120 --seconds 60
    .venv/bin/python bench/bench_cameras.py pipeline --cameras 40 --seconds 60
    .venv/bin/python bench/bench_cameras.py record --cameras 4 --seconds 20     # a quick try

Each run makes a fresh temporary folder (SQLite database, media folder, logs), generates its
source clips with the project's own generator (cached between runs in --clips), serves them with
the test suite's RTSP server (tests/rtsp/server.py: Debian's GStreamer, one mount per camera, a
looping feeder per mount or, with --feeders shared, per clip) on loopback, and registers one camera
per mount. Then:

- ours: ``siskamling worker`` (and, for ``pipeline``, ``siskamling serve`` with one WebSocket
  viewer per camera) as in production; CPU time of its whole process tree over a steady-state
  window, and whether every camera kept up (media seconds recorded / wall seconds, from the
  segment index and the files themselves; health and frame rate; live frames delivered;
  analysis rate from ``analytics.json``);
- reference: one Debian ``ffmpeg`` per camera doing the same work (``-c copy -f segment``, same
  source, same segment length and format; for ``pipeline`` also one decoding the sub-stream at
  5 fps), measured the same way.

The RTSP server's CPU is not counted on either side; it is printed, with the whole machine's.
Every process the script starts is stopped on the way out (Ctrl-C and failures included).
Exit status: 0 when every checked target is met, 1 when one is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import multiprocessing
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RECORD_TARGET_CAMERAS = 120
RECORD_MAX_RATIO = 1.3  # our CPU per camera / ffmpeg's, same run
# The reference's ffmpeg processes start this far apart: 120 started at once twice left one of
# them without a finished segment after 110 s (the test RTSP server, swamped, never sent it video).
REFERENCE_STAGGER_S = 0.05
PIPELINE_TARGET_CAMERAS = 40
KEEP_UP = 0.97  # media (or frames) per wall second, at least
FPS_TOLERANCE = 0.1  # the camera's measured frame rate within 10 % of the source's
MAIN_SIZE = (1280, 720)
SUB_SIZE = (640, 360)
ANALYTICS_FPS = 5.0
SAMPLE_EVERY_S = 2.0


def say(text: str = "") -> None:
    click.echo(text)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# --- processes: started in their own process groups, always stopped -----------------------------


def _child_env(settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SISKAMLING_")}
    env.update({
        "SISKAMLING_ENVIRONMENT": settings.environment.value, "SISKAMLING_DATABASE_URL": settings.database_url,
        "SISKAMLING_MEDIA_DIR": str(settings.media_dir), "SISKAMLING_SECRET_KEY": settings.secret_key,
        "SISKAMLING_SESSION_COOKIE_SECURE": "false", "SISKAMLING_TILE_URL": "",
        "SISKAMLING_MIGRATE_ON_START": "false", "SISKAMLING_WORKER_CAPACITY": str(settings.worker_capacity),
        "SISKAMLING_SEGMENT_SECONDS": str(settings.segment_seconds),
        # Not what is measured: keep the worker's cleanup from deleting segments on a fuller disk.
        "SISKAMLING_MEDIA_FREE_FLOOR_GB": "0",
    })
    return env


@contextlib.contextmanager
def process_group(cmd: list[str], *, log: Path, env=None, grace_s: float = 30.0, stop_signal=signal.SIGTERM):
    """A child in a new session (so Ctrl-C in the terminal reaches only this script, which then
    stops it properly); on exit: ``stop_signal`` to the child, then SIGKILL to its whole group."""
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        yield proc
    finally:
        stop_group(proc, grace_s, stop_signal)


def stop_group(proc: subprocess.Popen, grace_s: float, stop_signal=signal.SIGTERM) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(stop_signal)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group (recorders of a killed worker)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- CPU and memory of process trees over a window -----------------------------------------------


@dataclass
class Group:
    name: str
    pids: object  # () -> list of root pids; each root's descendants count too


@dataclass
class Usage:
    cpu_s: float = 0.0
    rss_max: int = 0
    procs_max: int = 0
    pss_end: int | None = None


@dataclass
class Window:
    t0: float
    t1: float
    usage: dict[str, Usage]
    machine_busy_s: float
    machine_steal_s: float
    own_cpu_s: float

    @property
    def seconds(self) -> float:
        return self.t1 - self.t0


def _tree(pids):
    import psutil

    out = []
    for pid in pids:
        try:
            root = psutil.Process(pid)
            out.append(root)
            out.extend(root.children(recursive=True))
        except psutil.NoSuchProcess:
            pass
    return out


def _busy(times) -> tuple[float, float]:
    busy = times.user + times.nice + times.system + getattr(times, "irq", 0) + getattr(times, "softirq", 0)
    return busy, getattr(times, "steal", 0.0)


def measure(groups: list[Group], seconds: float, check=None) -> Window:
    """User+system CPU time of each group's process trees over ``seconds``, sampled every few
    seconds so that processes started within the window count from their start (a process that
    exits between two samples loses at most its last interval). ``check()`` runs at each sample
    and may raise to abort."""
    import psutil

    last: dict[tuple[int, float], float] = {}
    usage = {g.name: Usage() for g in groups}
    me = psutil.Process()

    def sample(t0: float | None) -> None:
        for g in groups:
            rss = n = 0
            for p in _tree(g.pids()):
                try:
                    with p.oneshot():
                        key = (p.pid, p.create_time())
                        times = p.cpu_times()
                        rss += p.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                cpu = times.user + times.system
                if key not in last:
                    last[key] = cpu if t0 is None or key[1] < t0 else 0.0
                usage[g.name].cpu_s += cpu - last[key]
                last[key] = cpu
                n += 1
            usage[g.name].rss_max = max(usage[g.name].rss_max, rss)
            usage[g.name].procs_max = max(usage[g.name].procs_max, n)

    own0 = sum(me.cpu_times()[:2])
    busy0, steal0 = _busy(psutil.cpu_times())
    sample(None)
    t0 = time.time()
    end = t0 + seconds
    while True:
        now = time.time()
        if now >= end:
            break
        time.sleep(min(SAMPLE_EVERY_S, end - now))
        sample(t0)
        if check is not None:
            check()
    t1 = time.time()
    busy1, steal1 = _busy(psutil.cpu_times())
    own = sum(me.cpu_times()[:2]) - own0
    for g in groups:  # proportional set size at the end: shared pages divided among their users
        pss = 0
        for p in _tree(g.pids()):
            with contextlib.suppress(psutil.Error):
                pss += p.memory_full_info().pss
        usage[g.name].pss_end = pss
    return Window(t0, t1, usage, busy1 - busy0, steal1 - steal0, own)


def print_usage(window: Window, cameras: int, rows: list[tuple[str, str]]) -> None:
    """rows: (group name, label)."""
    ncpu = os.cpu_count() or 1
    say(f"  {'':50} {'CPU':>8} {'per camera':>11} {'processes':>9} {'RSS max':>9} {'PSS end':>9}")
    for name, label in rows:
        u = window.usage.get(name)
        if u is None:
            continue
        cores = u.cpu_s / window.seconds
        per = f"{cores / cameras * 100:9.2f} %" if cameras else ""
        say(f"  {label:<50} {cores * 100:6.1f} % {per:>11} {u.procs_max:>9} {u.rss_max / 2**20:7.0f} MB "
            f"{(u.pss_end or 0) / 2**20:7.0f} MB")
    say(f"  {'this script (sampling, checks)':<50} {window.own_cpu_s / window.seconds * 100:6.1f} %")
    busy = window.machine_busy_s / window.seconds
    steal = window.machine_steal_s / window.seconds
    say(f"  {f'machine, all processes ({ncpu} CPUs)':<50} {busy * 100:6.1f} %   "
        f"(= {busy / ncpu * 100:.0f} % of the machine{f', steal {steal * 100:.1f} %' if steal > 0.01 else ''})")
    say("  (CPU in % of one core, over the window; RSS double-counts shared pages, PSS does not)")
    if steal > 0.05:
        say("  note: the hypervisor took CPU from this machine during the window (steal): CPU figures are noisy; "
            "--rounds 2 or more helps")
    if busy / ncpu > 0.9:
        say("  note: the machine was busy over 90 % of the window: every process competed for CPU, so "
            "falling behind may be the machine's limit, not the software's")


# --- source clips, RTSP server, database -----------------------------------------------------------


def clip(folder: Path, kind: str, size: tuple[int, int], fps: int, kbps: int, seconds: int) -> Path:
    """A generated street-scene clip, reused when one of the same parameters is already there."""
    from siskamling.cameras.simulate import generate_clip, probe_clip

    w, h = size
    path = folder / f"{kind}-{w}x{h}-{fps}fps-{kbps}k-{seconds}s.mp4"
    have = probe_clip(path)
    if have is None or (have.width, have.height, have.fps, have.frames) != (w, h, fps, seconds * fps):
        started = time.perf_counter()
        info = generate_clip(path, seconds=seconds, width=w, height=h, fps=fps, seed=2026, bitrate=kbps * 1000,
                             title=f"Siskamling bench {kind} {w}x{h}")
        say(f"  generated {path} in {time.perf_counter() - started:.0f} s")
        have = info
    say(f"  clip {path.name}: {have.width}x{have.height} {have.fps} fps, {have.seconds:.0f} s, "
        f"{have.bytes * 8 / have.seconds / 1000:.0f} kb/s, keyframe every {2 * fps} frames")
    return path


def rtsp_server(folder: Path, files: dict[str, Path], feeders: str):
    """tests/rtsp/server.py serving ``files`` (mount -> clip).

    The server runs one looping feeder per file path, shared by the mounts of that path; each
    mount gets its own copy of every buffer (Buffer.copy_region with the MEMORY flag), so a shared
    feeder is correct. ``feeders="per-camera"`` gives each mount a path of its own (a symbolic link
    to the clip), hence a feeder of its own, at about three times the server's CPU; ``"shared"``
    is cheaper and leaves more of the machine to the recorders. Either way the server gets a
    thread per client: every camera connects at once."""
    try:
        from tests.rtsp import fixtures
    except ImportError as exc:
        raise click.ClickException(f"the RTSP server helper needs the test extras ({exc}): "
                                   "pip install -e '.[bench]'") from None
    reason = fixtures.gstreamer_missing()
    if reason:
        raise click.ClickException(f"the RTSP server cannot run here: {reason}")
    if feeders == "shared":
        return fixtures.RtspServer(files=files, threads=-1)
    fixtures.START_TIMEOUT_S = max(fixtures.START_TIMEOUT_S, 30 + 0.5 * len(files))  # one feeder per mount
    links = folder / "sources"
    links.mkdir()
    mounts = {}
    for mount, path in files.items():
        link = links / f"{mount}{path.suffix}"
        link.symlink_to(path.resolve())
        mounts[mount] = link
    return fixtures.RtspServer(files=mounts, threads=-1)  # every camera connects at once


def gstreamer_version() -> str:
    try:
        from tests.rtsp.fixtures import SERVER_SCRIPT, system_python

        out = subprocess.run([system_python(), str(SERVER_SCRIPT), "--check"], capture_output=True, text=True,
                             timeout=60).stdout.strip()
        return out.removeprefix("ok: ").split(";")[0]
    except (ImportError, OSError, subprocess.SubprocessError):
        return "GStreamer ?"


def machine() -> str:
    import platform

    import av

    from siskamling.bench import cpu_model

    model = cpu_model()
    ffmpeg = shutil.which("ffmpeg")
    cli = "no ffmpeg CLI"
    if ffmpeg:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            cli = "ffmpeg CLI " + subprocess.run([ffmpeg, "-version"], capture_output=True, text=True,
                                                 timeout=10).stdout.split()[2]
    return (f"{model}, {os.cpu_count()} CPUs, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} "
            f"GiB; Python {platform.python_version()}, PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info}), {cli}, "
            f"{gstreamer_version()}")


@dataclass
class Setup:
    folder: Path
    settings: object
    engine: object
    codes: list[str]
    session_token: str | None = None


def prepare(folder: Path, n: int, segment_seconds: float, server_port: int, with_substreams: bool) -> Setup:
    """A fresh SQLite database with the generated demo city, one camera per RTSP mount, and (for
    live viewers) an admin's logged-in browser session."""
    from sqlalchemy import select

    from siskamling.accounts import service as accounts
    from siskamling.areas.models import Area, Level
    from siskamling.audit.service import Actor
    from siskamling.cameras import service as cameras
    from siskamling.cameras.schemas import CameraIn
    from siskamling.cli import load_settings, prepare_database
    from siskamling.core.config import Environment
    from siskamling.core.db import make_session_factory, session_scope
    from siskamling.demo.service import import_areas

    settings = load_settings(
        environment=Environment.test, database_url=f"sqlite:///{folder / 'bench.db'}", media_dir=folder / "media",
        secret_key=secrets.token_urlsafe(48), session_cookie_secure=False, tile_url="", migrate_on_start=False,
        worker_capacity=max(n, 1), segment_seconds=segment_seconds,
    )
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    engine = prepare_database(settings, migrate=True)
    actor = Actor.system("bench")
    base = f"rtsp://127.0.0.1:{server_port}"
    codes = [f"BENCH-{i:03d}" for i in range(1, n + 1)]
    factory = make_session_factory(engine)
    with session_scope(factory) as db, contextlib.redirect_stdout(io.StringIO()):
        import_areas(db, folder / "city", None, None)
    with session_scope(factory) as db:
        kelurahan = db.scalars(select(Area).where(Area.level == Level.kelurahan).order_by(Area.code)).all()
        root = db.scalar(select(Area).where(Area.parent_id.is_(None)).order_by(Area.code))
        for i, code in enumerate(codes, start=1):
            kel = kelurahan[(i - 1) % len(kelurahan)]
            cameras.register(db_session=db, settings=settings, actor=actor, data=CameraIn(
                code=code, name=f"Bench camera {i}", lat=kel.centroid_lat, lon=kel.centroid_lon,
                stream_url=f"{base}/cam{i}", substream_url=f"{base}/sub{i}" if with_substreams else None,
                retention_days=1))
        user = accounts.create_user(db_session=db, username="bench.viewer", full_name="Bench viewer",
                                    password=secrets.token_urlsafe(24), actor=actor)
        accounts.add_grant(db_session=db, username=user.username, role="admin", area_code=root.code, actor=actor)
        token = accounts.start_session(db_session=db, settings=settings, user=user, mfa_passed=True,
                                       ip="127.0.0.1", user_agent="bench_cameras")
    return Setup(folder, settings, engine, codes, token)


# --- what was recorded ------------------------------------------------------------------------------


def media_seconds(path: Path) -> tuple[float, int]:
    """(duration, frames) of a recorded file, from its packets' timestamps."""
    import av

    first = end = None
    frames = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            tb = float(stream.time_base)
            for packet in container.demux(stream):
                if packet.dts is None:
                    continue
                frames += 1
                start = (packet.pts if packet.pts is not None else packet.dts) * tb
                first = start if first is None else min(first, start)
                stop = start + (packet.duration or 0) * tb
                end = stop if end is None else max(end, stop)
    except (OSError, av.error.FFmpegError, IndexError):
        return 0.0, 0
    if first is None:
        return 0.0, 0
    return end - first, frames


@dataclass
class KeptUp:
    """Recording over the window: the media seconds of the segments finished in it, against the
    wall time from the end of the last segment finished before it to the end of the last one
    finished in it."""

    media_s: float = 0.0
    wall_s: float = 0.0
    segments: int = 0
    last_end_age_s: float | None = None  # window end - end of the newest finished segment
    problems: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.media_s / self.wall_s if self.wall_s > 0 else 0.0


def kept_up(ends: list[tuple[float, Path]], t0: float, t1: float, segment_seconds: float) -> KeptUp:
    ends = sorted(e for e in ends if e[0] <= t1)
    before = [e for e in ends if e[0] <= t0]
    inside = [e for e in ends if e[0] > t0]
    out = KeptUp(segments=len(inside))
    if not before:
        out.problems.append("no segment finished before the window")
    if not inside:
        out.problems.append("no segment finished in the window")
    if out.problems:
        return out
    out.wall_s = inside[-1][0] - before[-1][0]
    out.media_s = sum(media_seconds(path)[0] for _, path in inside)
    out.last_end_age_s = t1 - inside[-1][0]
    if out.ratio < KEEP_UP:
        out.problems.append(f"{out.media_s:.1f} s of video in {out.wall_s:.1f} s")
    # a segment ends at the first keyframe at least segment_seconds in: allow one keyframe interval and slack
    if out.last_end_age_s > segment_seconds + 5:
        out.problems.append(f"no segment finished in the last {out.last_end_age_s:.0f} s of the window")
    return out


def summarize_kept_up(label: str, results: dict[str, KeptUp], extra_problems: dict[str, list[str]] | None = None):
    problems = defaultdict(list)
    for code, r in results.items():
        problems[code] += r.problems
    for code, ps in (extra_problems or {}).items():
        problems[code] += ps
    ratios = [r.ratio for r in results.values() if r.wall_s > 0]
    ok = [code for code in results if not problems[code]]
    spread = (f"media/wall min {min(ratios):.3f}, median {statistics.median(ratios):.3f}, max {max(ratios):.3f}"
              if ratios else "no complete window")
    segs = sum(r.segments for r in results.values())
    say(f"  {label}: {len(ok)}/{len(results)} cameras kept up ({spread}; {segs} segments in the window)")
    bad = [code for code in results if problems[code]]
    for code in bad[:10]:
        say(f"    {code}: {'; '.join(problems[code])}")
    if len(bad) > 10:
        say(f"    … and {len(bad) - 10} more")
    return len(ok) == len(results)


# --- ours: siskamling worker (and serve) ---------------------------------------------------------------


def cameras_state(setup: Setup):
    from sqlalchemy import select

    from siskamling.cameras.models import Camera
    from siskamling.core.db import read_only

    with read_only(setup.engine) as conn:
        return {row.code: row for row in conn.execute(
            select(Camera.id, Camera.code, Camera.health, Camera.fps, Camera.last_error, Camera.last_frame_at))}


def segment_ends(setup: Setup) -> dict[str, list[tuple[float, Path]]]:
    from sqlalchemy import select

    from siskamling.cameras.models import Camera, RecordingSegment
    from siskamling.core.db import read_only

    out: dict[str, list[tuple[float, Path]]] = {code: [] for code in setup.codes}
    with read_only(setup.engine) as conn:
        rows = conn.execute(select(Camera.code, RecordingSegment.ended_at, RecordingSegment.path)
                            .join(Camera, Camera.id == RecordingSegment.camera_id))
        for code, ended_at, path in rows:
            if ended_at.tzinfo is None:
                ended_at = ended_at.replace(tzinfo=UTC)
            out[code].append((ended_at.timestamp(), Path(setup.settings.media_dir) / path))
    return out


def wait_for(what: str, ready, timeout_s: float, alive=None, every_s: float = 1.0):
    """Poll ``ready()`` (returns (done, progress text)) until done; raise after the timeout."""
    started = time.monotonic()
    last_print = 0.0
    while True:
        done, progress = ready()
        if done:
            say(f"  {what}: {progress} after {time.monotonic() - started:.0f} s")
            return
        if alive is not None:
            alive()
        if time.monotonic() - started > timeout_s:
            raise click.ClickException(f"{what}: still {progress} after {timeout_s:.0f} s")
        if time.monotonic() - last_print > 10:
            say(f"  {what}: {progress} …")
            last_print = time.monotonic()
        time.sleep(every_s)


def read_analytics(setup: Setup) -> dict[str, dict | None]:
    from siskamling.cameras.live import live_folder

    out = {}
    for code in setup.codes:
        try:
            out[code] = json.loads((live_folder(setup.settings.media_dir, code) / "analytics.json").read_text())
        except (OSError, ValueError):
            out[code] = None
    return out


def check_health(setup: Setup, state, readings: dict[str, list[float]], fps: int) -> dict[str, list[str]]:
    """Online at the end of the window, and the frame rate the recorder reported (over its last
    2 s, read every few seconds through the window) at the source's rate in the median. A reading
    well above the source's rate is the recorder catching up after a stall: counted and shown."""
    problems: dict[str, list[str]] = defaultdict(list)
    medians, bursts = [], 0
    for code in setup.codes:
        row = state.get(code)
        if row is None or row.health != "online":
            problems[code].append(f"health {row.health if row else '?'}"
                                  f"{f' ({row.last_error})' if row is not None and row.last_error else ''}")
        values = readings.get(code) or []
        if not values:
            problems[code].append("no frame rate reported in the window")
            continue
        median = statistics.median(values)
        medians.append(median)
        bursts += sum(1 for v in values if v > (1 + 2 * FPS_TOLERANCE) * fps)
        if abs(median - fps) > FPS_TOLERANCE * fps:
            problems[code].append(f"reported {median:.1f} fps (median), the source sends {fps}")
    if medians:
        every = [v for code in setup.codes for v in readings.get(code) or []]
        say(f"  frame rate reported by the recorders: median of medians {statistics.median(medians):.2f} fps, "
            f"readings {min(every):.1f}–{max(every):.1f}; {bursts} of {len(every)} readings over "
            f"{(1 + 2 * FPS_TOLERANCE) * fps:.0f} fps (catching up after a stall)")
    return problems


def run_ours(setup: Setup, *, seconds: float, warmup: float, fps: int, rtsp_pid: int, pipeline: bool,
             viewers: int) -> dict:
    """Start the worker (and web server and viewers), wait for steady state, measure, check."""
    settings = setup.settings
    n = len(setup.codes)
    env = _child_env(settings)
    logs = setup.folder
    started = time.time()  # segments of an earlier round do not count in this one
    with contextlib.ExitStack() as stack:
        worker = stack.enter_context(process_group(
            [sys.executable, "-m", "siskamling", "worker", "--capacity", str(n)], log=logs / "worker.log", env=env,
            grace_s=60))
        web = None
        if pipeline:
            port = free_port()
            web = stack.enter_context(process_group(
                [sys.executable, "-m", "siskamling", "serve", "--host", "127.0.0.1", "--port", str(port)],
                log=logs / "serve.log", env={**env, "SISKAMLING_RUN_WORKERS": "false"}, grace_s=15))

        def alive():
            if worker.poll() is not None:
                raise click.ClickException(f"the worker exited ({worker.returncode}):\n{tail(logs / 'worker.log')}")
            if web is not None and web.poll() is not None:
                raise click.ClickException(f"the web server exited ({web.returncode}):\n{tail(logs / 'serve.log')}")

        say(f"  ours: siskamling worker --capacity {n} (pid {worker.pid})"
            + (f", siskamling serve on 127.0.0.1:{port} (pid {web.pid})" if web else ""))
        if web is not None:
            wait_for("web server", lambda: (http_ok(f"http://127.0.0.1:{port}/readyz"), "ready"), 60, alive, 0.3)

        def online():
            state = cameras_state(setup)
            up = sum(1 for r in state.values() if r.health == "online")
            # why the others are not (yet): a slow start has no error, a failing camera has one
            errors = Counter(r.last_error for r in state.values() if r.health != "online" and r.last_error)
            why = "".join(f"; {count} {error!r}" for error, count in errors.most_common(2))
            return up == n, f"{up}/{n} cameras online{why}"

        wait_for("cameras", online, 60 + 3.0 * n, alive)
        viewer_proc = None
        if pipeline and viewers:
            viewer_proc = stack.enter_context(viewer_process(
                f"ws://127.0.0.1:{port}", setup.session_token, setup.codes[:viewers], logs / "viewers.json"))
            say(f"  viewers: one WebSocket per camera for {viewers} camera(s) (pid {viewer_proc.pid})")

        def segmented():
            ends = segment_ends(setup)
            have = sum(1 for code in setup.codes if any(end > started for end, _ in ends[code]))
            return have == n, f"{have}/{n} cameras have a finished segment"

        wait_for("first segments", segmented, settings.segment_seconds * 2 + 30 + n * 0.5, alive)
        if pipeline:
            def analysing():
                have = sum(1 for a in read_analytics(setup).values() if a)
                return have == n, f"{have}/{n} cameras write analytics.json"
            try:
                wait_for("analytics", analysing, 30, alive)
            except click.ClickException as exc:
                say(f"  {exc.message} (measuring anyway)")
        say(f"  warm-up {warmup:g} s, then measuring {seconds:g} s …")
        time.sleep(warmup)
        analytics0 = read_analytics(setup) if pipeline else {}
        groups = [Group("worker", lambda: [worker.pid]), Group("rtsp", lambda: [rtsp_pid])]
        if web is not None:
            groups.append(Group("web", lambda: [web.pid]))
        if viewer_proc is not None:
            groups.append(Group("viewers", lambda: [viewer_proc.pid]))
        readings: dict[str, list[float]] = defaultdict(list)

        def sample():  # at each CPU sample: alive, and each camera's reported frame rate
            alive()
            for code, row in cameras_state(setup).items():
                if row.fps is not None:
                    readings[code].append(row.fps)

        window = measure(groups, seconds, sample)
        state = cameras_state(setup)
        ends = {code: [e for e in found if e[0] > started] for code, found in segment_ends(setup).items()}
        analytics1 = read_analytics(setup) if pipeline else {}
        read_at = time.time()
        if viewer_proc is not None:
            viewer_proc.stop_event.set()
            viewer_proc.join(30)
        say("  stopping …")
    viewer_log = json.loads((logs / "viewers.json").read_text()) if viewer_proc is not None and \
        (logs / "viewers.json").exists() else {}
    return dict(window=window, state=state, readings=readings, ends=ends, analytics0=analytics0,
                analytics1=analytics1, analytics_read_at=read_at, viewers=viewer_log)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


# --- live viewers (a process of their own: their CPU is a browser's, not the server's) --------------


def fragment_frames(data: bytes) -> int:
    """Frames in a live fragment (the sample counts of its trun boxes)."""
    from siskamling.cameras.live import boxes

    frames = 0
    for kind, s, e in boxes(data):
        if kind != "moof":
            continue
        for sub, ss, se in boxes(data, s + 8, e):
            if sub != "traf":
                continue
            for box, bs, _be in boxes(data, ss + 8, se):
                if box == "trun":
                    frames += int.from_bytes(data[bs + 12:bs + 16], "big")
    return frames


async def _watch(base: str, token: str, code: str, log: dict, stop: asyncio.Event) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidHandshake

    from siskamling.core.deps import SESSION_COOKIE

    origin = base.replace("ws://", "http://", 1)
    while not stop.is_set():
        try:
            async with connect(f"{base}/cameras/{code}/live.ws", origin=origin, max_size=None, ping_interval=None,
                               additional_headers={"Cookie": f"{SESSION_COOKIE}={token}"}, open_timeout=30) as ws:
                log["connects"].append(time.time())
                init = False
                while not stop.is_set():
                    try:
                        msg = await asyncio.wait_for(ws.recv(), 1.0)
                    except TimeoutError:
                        continue
                    if isinstance(msg, str):
                        log["status"].append([time.time(), json.loads(msg).get("status")])
                    elif not init:
                        init = True
                    else:
                        log["fragments"].append([time.time(), fragment_frames(msg), len(msg)])
        except ConnectionClosed as exc:
            log["closes"].append([time.time(), exc.rcvd.code if exc.rcvd else None])
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            log["errors"].append([time.time(), f"{type(exc).__name__}: {exc}"])
        if not stop.is_set():
            await asyncio.sleep(0.5)  # as the page does: reconnect


def viewers_main(base: str, token: str, codes: list[str], out: str, stop_event) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us

    async def main():
        stop = asyncio.Event()
        logs = {code: {"connects": [], "status": [], "fragments": [], "closes": [], "errors": []} for code in codes}
        tasks = [asyncio.create_task(_watch(base, token, code, logs[code], stop)) for code in codes]
        while not stop_event.is_set():
            await asyncio.sleep(0.2)
        stop.set()
        await asyncio.wait(tasks, timeout=10)
        Path(out).write_text(json.dumps(logs))

    asyncio.run(main())


@contextlib.contextmanager
def viewer_process(base: str, token: str, codes: list[str], out: Path):
    ctx = multiprocessing.get_context("spawn")
    stop_event = ctx.Event()
    proc = ctx.Process(target=viewers_main, args=(base, token, codes, str(out), stop_event), daemon=True,
                       name="bench-viewers")
    proc.start()
    proc.stop_event = stop_event
    try:
        yield proc
    finally:
        stop_event.set()
        proc.join(15)
        if proc.is_alive():
            proc.kill()
            proc.join(5)


def check_viewers(logs: dict, t0: float, t1: float, fps: int) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    rates, gaps = [], []
    for code, log in logs.items():
        times = [f[0] for f in log["fragments"] if t0 <= f[0] <= t1]
        frames = sum(f[1] for f in log["fragments"] if t0 <= f[0] <= t1)
        rate = frames / (t1 - t0)
        edges = [t0, *times, t1]
        gap = max(b - a for a, b in zip(edges, edges[1:]))
        rates.append(rate)
        gaps.append(gap)
        p = []
        if rate < KEEP_UP * fps:
            p.append(f"live: {rate:.1f} frames/s delivered")
        if gap > 3.0:
            p.append(f"live: {gap:.1f} s without a fragment")
        closes = [c for c in log["closes"] if t0 <= c[0] <= t1]
        if closes:
            p.append(f"live: socket closed {len(closes)}x (codes {sorted({c[1] for c in closes})})")
        if p:
            problems[code] = p
    if rates:
        say(f"  live delivery: {len(logs) - len(problems)}/{len(logs)} viewers kept up (frames/s delivered "
            f"min {min(rates):.2f}, median {statistics.median(rates):.2f}; longest wait for a fragment "
            f"{max(gaps):.2f} s)")
    return problems


def check_analytics(a0: dict, a1: dict, t0: float, t1: float, read_at: float) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    rates, decoded = [], []
    for code, end in a1.items():
        start = a0.get(code)
        if not start or not end:
            problems[code] = ["analytics: no analytics.json"]
            continue
        # the file is rewritten every few seconds: count between its own timestamps, not ours
        span = float(end.get("updated", 0)) - float(start.get("updated", 0))
        if span < 0.5 * (t1 - t0):
            problems[code] = [f"analytics: analytics.json updated over {span:.0f} s of the {t1 - t0:.0f} s window"]
            continue
        rate = (end.get("frames", 0) - start.get("frames", 0)) / span
        rates.append(rate)
        if "decoded" in end and "decoded" in start:
            decoded.append((end["decoded"] - start["decoded"]) / span)
        p = []
        if rate < KEEP_UP * ANALYTICS_FPS:
            p.append(f"analytics: {rate:.2f} frames/s analysed (file says {end.get('fps')})")
        if read_at - float(end.get("updated", 0)) > 5:
            p.append(f"analytics: analytics.json not updated for {read_at - float(end.get('updated', 0)):.0f} s")
        if p:
            problems[code] = p
    missing = sum(1 for p in problems.values() if p == ["analytics: no analytics.json"])
    if rates:
        say(f"  analytics: {len(a1) - len(problems)}/{len(a1)} cameras analysed ≥ {KEEP_UP * ANALYTICS_FPS:.2f} "
            f"frames/s (min {min(rates):.2f}, median {statistics.median(rates):.2f})"
            + (f"; sub-stream frames decoded/s median {statistics.median(decoded):.2f}" if decoded else ""))
    if missing:
        say(f"  analytics: {missing} camera(s) without media/live/CODE/analytics.json (no sub-stream analysis)")
    return problems


# --- reference: Debian's ffmpeg --------------------------------------------------------------------------


def ffmpeg_path() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise click.ClickException(
            "ffmpeg is not on PATH: the reference is Debian's ffmpeg command (apt-get install ffmpeg); "
            "or run with --no-reference to measure ours alone")
    return path


def segment_cmd(ffmpeg: str, url: str, folder: Path, segment_seconds: float) -> list[str]:
    return [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error",
            "-rtsp_transport", "tcp", "-i", url, "-c", "copy", "-f", "segment",
            "-segment_time", f"{segment_seconds:g}", "-segment_format", "mp4",
            "-segment_format_options", "movflags=frag_keyframe+empty_moov+default_base_moof",
            "-reset_timestamps", "1", str(folder / "out%05d.mp4")]


def decode_cmd(ffmpeg: str, url: str, progress: Path) -> list[str]:
    # one decoding thread, as the recorder's analytics decoder (FrameSampler) uses
    return [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1", "-rtsp_transport", "tcp",
            "-i", url, "-an", "-vf", f"fps={ANALYTICS_FPS:g}", "-f", "null", "-progress", str(progress),
            "-stats_period", "1", "-"]


def finished_files(folder: Path) -> list[tuple[float, Path]]:
    """Segments ffmpeg has finished: all but the newest (still being written); end = mtime."""
    files = sorted(folder.glob("out*.mp4"))
    return [(p.stat().st_mtime, p) for p in files[:-1]]


def progress_frames(path: Path) -> tuple[float, int]:
    """(when ffmpeg last wrote its -progress file, the frame count it wrote then)."""
    frames, at = 0, 0.0
    with contextlib.suppress(OSError):
        at = path.stat().st_mtime
        for line in path.read_text().splitlines():
            if line.startswith("frame="):
                with contextlib.suppress(ValueError):
                    frames = int(line.split("=", 1)[1])
    return at, frames


def run_reference(setup: Setup, *, port: int, seconds: float, warmup: float, rtsp_pid: int, pipeline: bool,
                  round_: int = 1) -> dict:
    ffmpeg = ffmpeg_path()
    n = len(setup.codes)
    root = setup.folder / "reference" / f"round{round_}"
    seg_dirs = [root / f"cam{i}" for i in range(1, n + 1)]
    with contextlib.ExitStack() as stack:
        seg_procs, dec_procs = [], []
        for i, folder in enumerate(seg_dirs, start=1):
            folder.mkdir(parents=True)
            seg_procs.append(stack.enter_context(process_group(
                segment_cmd(ffmpeg, f"rtsp://127.0.0.1:{port}/cam{i}", folder, setup.settings.segment_seconds),
                log=folder / "ffmpeg.log", grace_s=15)))
            time.sleep(REFERENCE_STAGGER_S)
            if pipeline:
                dec_procs.append(stack.enter_context(process_group(
                    decode_cmd(ffmpeg, f"rtsp://127.0.0.1:{port}/sub{i}", folder / "decode-progress.txt"),
                    log=folder / "decode.log", grace_s=15)))
        say(f"  reference: {len(seg_procs)} x ffmpeg -c copy -f segment"
            + (f", {len(dec_procs)} x ffmpeg decoding the sub-stream at {ANALYTICS_FPS:g} fps" if pipeline else ""))
        everyone = seg_procs + dec_procs

        def alive():
            dead = [p for p in everyone if p.poll() is not None]
            if dead:
                i = everyone.index(dead[0])
                log = (seg_dirs[i] / "ffmpeg.log") if i < n else (seg_dirs[i - n] / "decode.log")
                raise click.ClickException(f"{len(dead)} ffmpeg process(es) exited, e.g. {log}:\n{tail(log)}")

        def segmented():
            have = sum(1 for d in seg_dirs if finished_files(d))
            return have == n, f"{have}/{n} ffmpeg processes have a finished segment"

        wait_for("reference first segments", segmented, setup.settings.segment_seconds * 2 + 30 + n * 0.5, alive)
        say(f"  warm-up {warmup:g} s, then measuring {seconds:g} s …")
        time.sleep(warmup)
        progress0 = [progress_frames(d / "decode-progress.txt") for d in seg_dirs] if pipeline else []
        groups = [Group("ffmpeg-segment", lambda: [p.pid for p in seg_procs]),
                  Group("rtsp", lambda: [rtsp_pid])]
        if pipeline:
            groups.insert(1, Group("ffmpeg-decode", lambda: [p.pid for p in dec_procs]))
        window = measure(groups, seconds, alive)
        ends = {code: finished_files(d) for code, d in zip(setup.codes, seg_dirs)}
        progress1 = [progress_frames(d / "decode-progress.txt") for d in seg_dirs] if pipeline else []
        say("  stopping …")
        for proc in everyone:  # all at once; each context then only waits for its process
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    return dict(window=window, ends=ends, progress0=progress0, progress1=progress1)


# --- the two benchmarks ------------------------------------------------------------------------------------


def common_options(default_cameras: int):
    def wrap(command):
        options = [
            click.option("--cameras", "n", type=click.IntRange(min=1), default=default_cameras, show_default=True,
                         help="cameras (RTSP mounts) to record"),
            click.option("--seconds", type=click.FloatRange(min=5), default=60.0, show_default=True,
                         help="measured window, after warm-up"),
            click.option("--warmup", type=click.FloatRange(min=0), default=10.0, show_default=True,
                         help="seconds to wait after every camera has a finished segment"),
            click.option("--segment-seconds", type=click.FloatRange(min=2), default=10.0, show_default=True,
                         help="recording segment length (both sides)"),
            click.option("--kbps", type=click.IntRange(min=100), default=2000, show_default=True,
                         help="main stream bitrate (1280x720)"),
            click.option("--fps", type=click.IntRange(min=1, max=60), default=15, show_default=True,
                         help="camera frame rate"),
            click.option("--clips", type=click.Path(file_okay=False, path_type=Path),
                         default=Path(tempfile.gettempdir()) / "siskamling-bench-clips", show_default=True,
                         help="where generated source clips are kept between runs"),
            click.option("--feeders", type=click.Choice(["per-camera", "shared"]), default="per-camera",
                         show_default=True,
                         help="RTSP server: a looping feeder per mount, or one per clip shared by all mounts "
                         "(each mount gets its own copy of every buffer; the server's CPU is then a third)"),
            click.option("--rounds", type=click.IntRange(min=1), default=1, show_default=True,
                         help="ours then the reference, this many times; CPU figures are summed over rounds"),
            click.option("--no-reference", is_flag=True, help="measure ours only (no ffmpeg run)"),
            click.option("--keep", is_flag=True, help="keep the temporary folder (database, recordings, logs)"),
        ]
        for option in reversed(options):
            command = option(command)
        return command

    return wrap


@contextlib.contextmanager
def workspace(keep: bool):
    folder = Path(tempfile.mkdtemp(prefix="siskamling-bench-cameras-"))
    try:
        yield folder
    finally:
        if keep:
            say(f"  kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def stop_on_sigterm() -> None:
    """SIGTERM/SIGHUP unwind like Ctrl-C, so that every `finally` stops what it started."""
    def handler(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored (`cmd &`)


def header(kind: str, n: int, seconds: float, fps: int, kbps: int) -> None:
    say(f"bench cameras {kind}: {n} camera(s), 1280x720 {fps} fps {kbps} kb/s H.264 over RTSP (TCP, loopback), "
        f"{seconds:g} s window")
    say(f"  machine: {machine()}")
    with contextlib.suppress(OSError):
        say(f"  load average before the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def check_psutil() -> None:
    try:
        import psutil  # noqa: F401
    except ImportError:
        raise click.ClickException("this benchmark needs psutil: pip install -e '.[bench]'") from None


@click.group()
def cli() -> None:
    """Camera capacity benchmarks (see docs/benchmarks.md)."""


def run_rounds(setup: Setup, server, *, rounds: int, seconds: float, warmup: float, fps: int, pipeline: bool,
               viewers: int, reference: bool) -> list[tuple[dict, dict | None]]:
    """Ours, then the reference, ``rounds`` times (alternating, so that a change in the machine's
    other load hits both sides alike)."""
    out = []
    for r in range(1, rounds + 1):
        tag = f" (round {r} of {rounds})" if rounds > 1 else ""
        say("")
        say("ours" + tag)
        ours = run_ours(setup, seconds=seconds, warmup=warmup, fps=fps, rtsp_pid=server.proc.pid,
                        pipeline=pipeline, viewers=viewers)
        ref = None
        if reference:
            say("")
            say("reference" + tag)
            ref = run_reference(setup, port=server.port, seconds=seconds, warmup=warmup, rtsp_pid=server.proc.pid,
                                pipeline=pipeline, round_=r)
        out.append((ours, ref))
    return out


def target_line(what: str, n: int, target: int, ok: bool) -> str:
    if n >= target:
        return f"  capacity: {n} cameras {what}, target ≥ {target}: {verdict(ok)}"
    return (f"  capacity: {n} cameras {what}: {verdict(ok)} (target ≥ {target} cameras not checked: "
            f"run with --cameras {target})")


@cli.command()
@common_options(RECORD_TARGET_CAMERAS)
def record(n, seconds, warmup, segment_seconds, kbps, fps, clips, feeders, rounds, no_reference, keep) -> None:
    """Record-only capacity: N cameras stream-copied into segments by `siskamling worker`, against
    N `ffmpeg -c copy -f segment` processes doing the same work.

    Targets: at least 120 cameras without falling behind, and CPU per camera within 1.3 x ffmpeg's."""
    check_psutil()
    if not no_reference:
        ffmpeg_path()
    stop_on_sigterm()
    header("record", n, seconds, fps, kbps)
    with workspace(keep) as folder:
        main = clip(clips, "main", MAIN_SIZE, fps, kbps, 60)
        files = {f"cam{i}": main for i in range(1, n + 1)}
        with rtsp_server(folder, files, feeders) as server:
            say(f"  RTSP server: tests/rtsp/server.py on 127.0.0.1:{server.port}, {n} mounts, "
                f"{'one looping feeder each' if feeders == 'per-camera' else 'one shared feeder'} "
                f"(pid {server.proc.pid})")
            setup = prepare(folder, n, segment_seconds, server.port, with_substreams=False)
            say(f"  database: {setup.settings.database_url} with {n} cameras; media in {setup.settings.media_dir}")
            results = run_rounds(setup, server, rounds=rounds, seconds=seconds, warmup=warmup, fps=fps,
                                 pipeline=False, viewers=0, reference=not no_reference)
        ours_cpu = ours_s = ref_cpu = ref_s = 0.0
        ours_ok = ref_ok = True
        pss = []
        for r, (ours, ref) in enumerate(results, start=1):
            say("")
            say("results" + (f" (round {r})" if rounds > 1 else ""))
            w = ours["window"]
            print_usage(w, n, [("worker", "ours: siskamling worker (supervisor + recorders)"),
                               ("rtsp", "RTSP server (not counted)")])
            kept = {code: kept_up(ours["ends"][code], w.t0, w.t1, segment_seconds) for code in setup.codes}
            ours_ok &= summarize_kept_up("ours", kept, check_health(setup, ours["state"], ours["readings"], fps))
            ours_cpu, ours_s = ours_cpu + w.usage["worker"].cpu_s, ours_s + w.seconds
            pss.append(w.usage["worker"].pss_end / n)
            if ref is not None:
                rw = ref["window"]
                say("")
                print_usage(rw, n, [("ffmpeg-segment", "reference: ffmpeg -c copy -f segment"),
                                    ("rtsp", "RTSP server (not counted)")])
                ref_kept = {code: kept_up(ref["ends"][code], rw.t0, rw.t1, segment_seconds) for code in setup.codes}
                ref_ok &= summarize_kept_up("reference", ref_kept)
                ref_cpu, ref_s = ref_cpu + rw.usage["ffmpeg-segment"].cpu_s, ref_s + rw.seconds
                if rounds > 1:
                    say(f"  this round: ours/reference {w.usage['worker'].cpu_s / w.seconds / (rw.usage['ffmpeg-segment'].cpu_s / rw.seconds):.2f}")
        ours_per_camera = ours_cpu / ours_s / n
        say("")
        say("targets")
        say(f"  ours: {ours_per_camera * 100:.2f} % of a core per camera, {max(pss) / 2**20:.0f} MB (PSS) per camera")
        say(target_line("recorded without falling behind", n, RECORD_TARGET_CAMERAS, ours_ok))
        ok = ours_ok
        if not no_reference:
            ref_per_camera = ref_cpu / ref_s / n
            ratio = ours_per_camera / ref_per_camera if ref_per_camera > 0 else float("inf")
            ratio_ok = ratio <= RECORD_MAX_RATIO
            say(f"  CPU per camera: ours {ours_per_camera * 100:.2f} %, reference {ref_per_camera * 100:.2f} % "
                f"(ffmpeg kept up: {'yes' if ref_ok else 'NO, so the ratio means little'}); "
                f"ratio {ratio:.2f}, target ≤ {RECORD_MAX_RATIO}: {verdict(ratio_ok)}")
            ok = ok and ratio_ok
        else:
            say("  CPU per camera against ffmpeg: not measured (--no-reference)")
    if not ok:
        sys.exit(1)


@cli.command()
@common_options(PIPELINE_TARGET_CAMERAS)
@click.option("--viewers", type=click.IntRange(min=0), default=None,
              help="cameras with one live WebSocket viewer each (default: every camera)")
@click.option("--sub-kbps", type=click.IntRange(min=50), default=512, show_default=True,
              help="sub-stream bitrate (640x360)")
@click.option("--sub-fps", type=click.IntRange(min=1, max=60), default=None,
              help="sub-stream frame rate (default: the main stream's); analytics takes 5 frames/s of it")
def pipeline(n, seconds, warmup, segment_seconds, kbps, fps, clips, feeders, rounds, no_reference, keep, viewers,
             sub_kbps, sub_fps) -> None:
    """Full pipeline capacity: N cameras recorded, each watched live by one WebSocket viewer, and
    each camera's 640x360 sub-stream decoded for analytics at 5 fps.

    Target: at least 40 cameras without falling behind. The reference (no target) is ffmpeg doing
    the recording and the decoding: one `-c copy -f segment` and one `-vf fps=5 -f null` per camera
    (nothing in it stands for live delivery)."""
    check_psutil()
    if not no_reference:
        ffmpeg_path()
    stop_on_sigterm()
    viewers = n if viewers is None else min(viewers, n)
    header("pipeline", n, seconds, fps, kbps)
    with workspace(keep) as folder:
        main = clip(clips, "main", MAIN_SIZE, fps, kbps, 60)
        sub = clip(clips, "sub", SUB_SIZE, sub_fps or fps, sub_kbps, 60)
        files = {f"cam{i}": main for i in range(1, n + 1)} | {f"sub{i}": sub for i in range(1, n + 1)}
        with rtsp_server(folder, files, feeders) as server:
            say(f"  RTSP server: tests/rtsp/server.py on 127.0.0.1:{server.port}, {n} main + {n} sub-stream "
                f"mounts, {'one looping feeder each' if feeders == 'per-camera' else 'one shared feeder per clip'} "
                f"(pid {server.proc.pid})")
            setup = prepare(folder, n, segment_seconds, server.port, with_substreams=True)
            say(f"  database: {setup.settings.database_url} with {n} cameras (stream + substream); "
                f"media in {setup.settings.media_dir}")
            results = run_rounds(setup, server, rounds=rounds, seconds=seconds, warmup=warmup, fps=fps,
                                 pipeline=True, viewers=viewers, reference=not no_reference)
        ours_cpu = ours_s = ref_cpu = ref_s = 0.0
        ok = True
        for r, (ours, ref) in enumerate(results, start=1):
            say("")
            say("results" + (f" (round {r})" if rounds > 1 else ""))
            w = ours["window"]
            print_usage(w, n, [("worker", "ours: siskamling worker (supervisor + recorders)"),
                               ("web", "ours: siskamling serve (live WebSockets)"),
                               ("viewers", f"{viewers} WebSocket viewers (clients, not counted)"),
                               ("rtsp", "RTSP server (not counted)")])
            problems: dict[str, list[str]] = defaultdict(list)
            for code, p in check_health(setup, ours["state"], ours["readings"], fps).items():
                problems[code] += p
            if viewers:
                for code, p in check_viewers(ours["viewers"], w.t0, w.t1, fps).items():
                    problems[code] += p
            for code, p in check_analytics(ours["analytics0"], ours["analytics1"], w.t0, w.t1,
                                           ours["analytics_read_at"]).items():
                problems[code] += p
            kept = {code: kept_up(ours["ends"][code], w.t0, w.t1, segment_seconds) for code in setup.codes}
            ok &= summarize_kept_up("ours (recording, health, live, analytics)", kept, problems)
            ours_cpu, ours_s = ours_cpu + w.usage["worker"].cpu_s + w.usage["web"].cpu_s, ours_s + w.seconds
            if ref is not None:
                rw = ref["window"]
                say("")
                print_usage(rw, n, [("ffmpeg-segment", "reference: ffmpeg -c copy -f segment"),
                                    ("ffmpeg-decode", f"reference: ffmpeg decode sub-stream, fps={ANALYTICS_FPS:g}"),
                                    ("rtsp", "RTSP server (not counted)")])
                ref_kept = {code: kept_up(ref["ends"][code], rw.t0, rw.t1, segment_seconds) for code in setup.codes}
                summarize_kept_up("reference recording", ref_kept)
                # frames over the time between the two progress writes (ffmpeg writes one a second)
                rates = [(b[1] - a[1]) / (b[0] - a[0]) if b[0] > a[0] else 0.0
                         for a, b in zip(ref["progress0"], ref["progress1"])]
                say(f"  reference decoding: {sum(x >= KEEP_UP * ANALYTICS_FPS for x in rates)}/{n} kept up "
                    f"({min(rates):.2f}–{max(rates):.2f} frames/s out of fps={ANALYTICS_FPS:g})")
                ref_cpu += rw.usage["ffmpeg-segment"].cpu_s + rw.usage["ffmpeg-decode"].cpu_s
                ref_s += rw.seconds
        say("")
        say("targets")
        line = f"  ours: {ours_cpu / ours_s / n * 100:.2f} % of a core per camera (worker + web server)"
        if ref_s:
            ref_per = ref_cpu / ref_s / n
            line += f"; reference {ref_per * 100:.2f} % (ratio {ours_cpu / ours_s / n / ref_per:.2f}, no target)"
        say(line)
        say(target_line(f"recorded, delivered live ({viewers} viewers) and analysed at {ANALYTICS_FPS:g} frames/s "
                        "without falling behind", n, PIPELINE_TARGET_CAMERAS, ok))
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    cli(prog_name="bench_cameras.py")
