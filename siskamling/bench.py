"""Performance benchmarks on real boundary files: ``siskamling bench locate`` and
``siskamling bench area-browser``. Figures and how they were taken: docs/benchmarks.md.

Each run makes a throw-away SQLite database in a temporary folder, migrates it, imports the
boundary files through the project's own import code (the options of ``siskamling demo
--areas/--rw``), measures, and deletes the folder. The boundary files are read where they are,
never copied.

Exit status: 0 when every target is met, 1 when one is missed.
"""

from __future__ import annotations

import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import click

DEFAULT_KELURAHAN = Path("../shared/data/boundaries/dki_kelurahan_kemendagri.geojson")
DEFAULT_RW = Path("../shared/data/boundaries/dki_rw_osm2012_inasafe.geojson")

LOCATE_MIN_POINTS_PER_S = 50_000
LOCATE_MAX_RATIO = 1.5  # our time / bare STRtree query time, same points, same run
AREA_BROWSER_MAX_MEDIAN_MS = 300.0


# --- shared set-up ---------------------------------------------------------------------------


def _boundary_option(name: str, default: Path, what: str):
    return click.option(
        name, type=click.Path(dir_okay=False, path_type=Path), default=None,
        help=f"{what} (GeoJSON). Default: {default} relative to the current folder, when it exists.",
    )


def boundary_options(command):
    """--kelurahan and --rw, shared by every benchmark that imports Jakarta's boundaries."""
    command = _boundary_option("--rw", DEFAULT_RW, "RW boundaries, rw_no under kode_kel_kemendagri")(command)
    return _boundary_option("--kelurahan", DEFAULT_KELURAHAN, "kelurahan boundaries, Kemendagri codes in kode_kel")(
        command)


def _resolve(kelurahan: Path | None, rw: Path | None) -> tuple[Path, Path]:
    out = []
    for given, default, option in ((kelurahan, DEFAULT_KELURAHAN, "--kelurahan"), (rw, DEFAULT_RW, "--rw")):
        path = given or default
        if not path.is_file():
            if given is None:
                raise click.ClickException(
                    f"no boundary file at the default {default} (relative to {Path.cwd()}): run from the project "
                    f"folder next to ../shared/data, or pass the files with --kelurahan PATH --rw PATH"
                )
            raise click.ClickException(f"{option} {path}: no such file")
        out.append(path.resolve())
    return out[0], out[1]


def _settings(folder: Path):
    from siskamling.cli import load_settings
    from siskamling.core.config import Environment

    return load_settings(
        environment=Environment.test, database_url=f"sqlite:///{folder / 'bench.db'}", media_dir=folder / "media",
        secret_key=secrets.token_urlsafe(48), session_cookie_secure=False, tile_url="", migrate_on_start=False,
    )


@contextmanager
def loaded_database(kelurahan: Path, rw: Path):
    """(settings, engine) of a fresh, migrated SQLite database holding the two boundary files."""
    from siskamling.areas import importer
    from siskamling.areas import service as areas
    from siskamling.areas.models import Level
    from siskamling.audit.service import Actor
    from siskamling.cli import prepare_database
    from siskamling.core.db import make_session_factory, session_scope
    from siskamling.demo.service import KELURAHAN_OPTIONS, RW_OPTIONS

    with tempfile.TemporaryDirectory(prefix="siskamling-bench-") as tmp:
        settings = _settings(Path(tmp))
        engine = prepare_database(settings, migrate=True)
        try:
            started = time.perf_counter()
            with session_scope(make_session_factory(engine)) as db:
                for path, level, options in ((kelurahan, Level.kelurahan, KELURAHAN_OPTIONS),
                                             (rw, Level.rw, RW_OPTIONS)):
                    opts = importer.ImportOptions(level=level, **options)
                    try:
                        report = areas.import_file(db_session=db, path=path, opts=opts, actor=Actor.system("bench"))
                    except importer.ImportFailed as exc:
                        raise click.ClickException(f"{path}: {exc}") from None
                    click.echo(f"  {path.name}: {report.summary()}")
            click.echo(f"  imported in {time.perf_counter() - started:.2f} s into a fresh database in {tmp}")
            yield settings, engine
        finally:
            engine.dispose()


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), for benchmark reports."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _machine() -> str:
    import platform

    import numpy
    import shapely

    model = cpu_model()
    return (f"{model}, {os.cpu_count()} logical CPU(s); Python {platform.python_version()}, "
            f"shapely {shapely.__version__} (GEOS {shapely.geos_version_string}), numpy {numpy.__version__}")


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# --- the command group ---------------------------------------------------------------------


@click.group()
def bench() -> None:
    """Performance benchmarks on real boundary files (see docs/benchmarks.md)."""


# --- locate ----------------------------------------------------------------------------------


def sample_points(geoms_wgs84, n: int, outside_share: float, seed: int):
    """``n`` reproducible (lon, lat) points: most uniformly inside the given polygons (each polygon
    drawn in proportion to its area), the rest uniformly over their bounding box grown by about
    1 km, which for Jakarta is mostly sea around Kepulauan Seribu."""
    import numpy as np
    import shapely

    rng = np.random.default_rng(seed)
    n_out = int(round(n * outside_share))
    n_in = n - n_out
    weights = shapely.area(geoms_wgs84)
    chosen = rng.choice(len(geoms_wgs84), size=n_in, p=weights / weights.sum())
    bounds = shapely.bounds(geoms_wgs84)
    lon, lat = np.empty(n_in), np.empty(n_in)
    todo = np.arange(n_in)
    while len(todo):  # rejection sampling inside each point's polygon
        poly = chosen[todo]
        x = rng.uniform(bounds[poly, 0], bounds[poly, 2])
        y = rng.uniform(bounds[poly, 1], bounds[poly, 3])
        ok = shapely.contains_xy(geoms_wgs84[poly], x, y)
        lon[todo[ok]], lat[todo[ok]] = x[ok], y[ok]
        todo = todo[~ok]
    minx, miny, maxx, maxy = shapely.total_bounds(geoms_wgs84)
    margin = 0.01
    out_lon = rng.uniform(minx - margin, maxx + margin, n_out)
    out_lat = rng.uniform(miny - margin, maxy + margin, n_out)
    order = rng.permutation(n)
    return np.concatenate([lon, out_lon])[order], np.concatenate([lat, out_lat])[order]


@bench.command()
@boundary_options
@click.option("--points", "n_points", type=click.IntRange(min=1), default=200_000, show_default=True,
              help="points per batch")
@click.option("--repeats", type=click.IntRange(min=1), default=7, show_default=True,
              help="timed runs of each side; the best run counts")
@click.option("--outside-share", type=click.FloatRange(0, 1), default=0.1, show_default=True,
              help="share of points drawn over the bounding box instead of inside a kelurahan")
@click.option("--seed", type=int, default=31, show_default=True, help="random seed of the points")
@click.option("--tolerance", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="edge tolerance in metres (the locate_edge_tolerance_m setting)")
def locate(kelurahan, rw, n_points, repeats, outside_share, seed, tolerance) -> None:
    """Batch point lookup (AreaIndex.locate_many) against a bare shapely STRtree query.

    Ours: WGS84 lon/lat arrays in, the deepest area and the distance out (projection, point
    creation, kelurahan then RW layer, nearest-area fallback, tie-breaks). Reference: the same
    points, already projected and already made into shapely points, queried with
    STRtree.query(points, predicate="intersects") on the kelurahan and the RW polygons and
    nothing else. Both run in this one thread (shapely/GEOS do not start threads), interleaved,
    best of --repeats. Targets: at least 50,000 points/s, and at most 1.5 x the reference time.
    """
    import numpy as np
    import shapely
    from sqlalchemy import select

    from siskamling.areas.index import AreaIndex
    from siskamling.areas.models import Area, Level
    from siskamling.core.db import make_session_factory

    kelurahan, rw = _resolve(kelurahan, rw)
    click.echo(f"bench locate: {n_points:,} points, best of {repeats}, tolerance {tolerance:g} m")
    click.echo(f"  machine: {_machine()}")
    with loaded_database(kelurahan, rw) as (_settings_, engine):
        with make_session_factory(engine)() as db:
            started = time.perf_counter()
            index = AreaIndex.build(db)
            build_s = time.perf_counter() - started
            kel_text = db.scalars(select(Area.geometry).where(Area.level == Level.kelurahan,
                                                              Area.geometry.is_not(None))).all()
    layers = ", ".join(f"{len(layer.ids):,} {layer.level}" for layer in index.layers)
    click.echo(f"  index: {layers} polygons, built in {build_s * 1000:.0f} ms")

    lon, lat = sample_points(shapely.from_geojson(np.array(kel_text, dtype=object)), n_points, outside_share, seed)
    # The reference gets everything ready-made: projected points, and its own trees built on
    # (unprepared copies of) the very polygons the index holds.
    x, y = index.projection.xy(lon, lat)
    ref_points = shapely.points(x, y)
    ref_trees = [shapely.STRtree(shapely.from_wkb(shapely.to_wkb(layer.geoms))) for layer in index.layers]

    def ours():
        return index.locate_many(lon, lat, tolerance)

    def reference():
        return [tree.query(ref_points, predicate="intersects") for tree in ref_trees]

    result, ref_hits = ours(), reference()  # warm-up, and the answers to check
    ours_wall, ours_cpu, ref_wall, ref_cpu = [], [], [], []
    for _ in range(repeats):
        for fn, wall, cpu in ((ours, ours_wall, ours_cpu), (reference, ref_wall, ref_cpu)):
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)

    inside = int(np.sum((result.area_id >= 0) & (result.distance_m == 0)))
    near = int(np.sum((result.area_id >= 0) & (result.distance_m > 0)))
    outside = int(np.sum(result.area_id < 0))
    deepest_levels = {}
    for layer in index.layers:
        deepest_levels[layer.level] = int(np.isin(result.area_id, layer.ids).sum())
    ref_inside = len(np.unique(np.concatenate([hits[0] for hits in ref_hits])))
    click.echo(f"  points: {inside:,} inside, {near:,} near an edge (≤ {tolerance:g} m), {outside:,} outside; "
               f"deepest level " + ", ".join(f"{lv} {c:,}" for lv, c in deepest_levels.items()))
    if ref_inside != inside:
        raise click.ClickException(f"answers differ: the reference finds {ref_inside:,} points inside a polygon, "
                                   f"locate_many {inside:,}")
    click.echo(f"  check: the reference finds the same {ref_inside:,} points inside a polygon")

    best_ours, best_ref = min(ours_wall), min(ref_wall)
    ratio = best_ours / best_ref
    rate_ours, rate_ref = n_points / best_ours, n_points / best_ref

    def line(name, wall, cpu, rate):
        return (f"  {name:<34} best {min(wall) * 1000:7.1f} ms  median {statistics.median(wall) * 1000:7.1f} ms  "
                f"{rate:>9,.0f} points/s  (best CPU time {min(cpu) * 1000:.1f} ms; "
                f"CPU/wall {sum(cpu) / sum(wall):.2f})")

    click.echo(line("ours: AreaIndex.locate_many", ours_wall, ours_cpu, rate_ours))
    click.echo(line("reference: bare STRtree.query x2", ref_wall, ref_cpu, rate_ref))
    rate_ok = rate_ours >= LOCATE_MIN_POINTS_PER_S
    ratio_ok = ratio <= LOCATE_MAX_RATIO
    click.echo(f"  throughput {rate_ours:,.0f} points/s, target ≥ {LOCATE_MIN_POINTS_PER_S:,}: {_verdict(rate_ok)}")
    click.echo(f"  ratio ours/reference {ratio:.2f} (best wall time; {min(ours_cpu) / min(ref_cpu):.2f} by best CPU "
               f"time), target ≤ {LOCATE_MAX_RATIO}: {_verdict(ratio_ok)}")
    if sum(ours_cpu) / sum(ours_wall) < 0.9:
        click.echo("  note: the process got well under one core (CPU/wall < 0.9): the machine is busy, "
                   "figures are noisy")
    if not (rate_ok and ratio_ok):
        sys.exit(1)


# --- area browser ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_server(settings, port: int, log: Path):
    """``siskamling serve`` (uvicorn serving create_app(settings, engine)) in a child process, so
    that server and client do not share an interpreter lock."""
    import httpx

    env = {k: v for k, v in os.environ.items() if not k.startswith("SISKAMLING_")}
    env.update({
        "SISKAMLING_ENVIRONMENT": settings.environment.value, "SISKAMLING_DATABASE_URL": settings.database_url,
        "SISKAMLING_MEDIA_DIR": str(settings.media_dir), "SISKAMLING_SECRET_KEY": settings.secret_key,
        "SISKAMLING_SESSION_COOKIE_SECURE": "false", "SISKAMLING_TILE_URL": "", "SISKAMLING_MIGRATE_ON_START": "false",
    })
    cmd = [sys.executable, "-m", "siskamling", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise click.ClickException(f"the server stopped (exit {proc.returncode}):\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise click.ClickException(f"the server did not answer within 60 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@bench.command("area-browser")
@boundary_options
@click.option("--requests", "n_requests", type=click.IntRange(min=1), default=50, show_default=True,
              help="timed requests")
@click.option("--warmup", type=click.IntRange(min=0), default=5, show_default=True,
              help="untimed requests first")
def area_browser(kelurahan, rw, n_requests, warmup) -> None:
    """GET /api/v1/areas?level=kelurahan as an admin over real HTTP.

    The server is `siskamling serve` (uvicorn, create_app) on a free 127.0.0.1 port in a child
    process; the client is httpx with one kept-alive connection and an API token of a user who
    is admin over province 31. Target: median under 300 ms, warm.
    """
    try:
        import httpx
    except ImportError:
        raise click.ClickException("this benchmark needs httpx: pip install -e '.[test]'") from None
    from siskamling.accounts import service as accounts
    from siskamling.audit.service import Actor
    from siskamling.core.db import make_session_factory, session_scope

    kelurahan, rw = _resolve(kelurahan, rw)
    click.echo(f"bench area-browser: {n_requests} timed requests after {warmup} warm-up")
    click.echo(f"  machine: {_machine()}")
    with loaded_database(kelurahan, rw) as (settings, engine):
        actor = Actor.system("bench")
        with session_scope(make_session_factory(engine)) as db:
            user = accounts.create_user(db_session=db, username="bench.admin", full_name="Benchmark Admin",
                                        password=secrets.token_urlsafe(24), actor=actor)
            accounts.add_grant(db_session=db, username=user.username, role="admin", area_code="31", actor=actor)
            _row, token = accounts.create_token(db_session=db, user=user, name="bench", actor=actor)
        engine.dispose()
        port = _free_port()
        url = f"http://127.0.0.1:{port}/api/v1/areas?level=kelurahan"
        with running_server(settings, port, Path(settings.media_dir).parent / "server.log"):
            click.echo(f"  server: siskamling serve on 127.0.0.1:{port} (uvicorn, child process)")
            with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
                first = client.get(url)
                if first.status_code != 200:
                    raise click.ClickException(f"GET {url}: HTTP {first.status_code}: {first.text[:500]}")
                features = first.json()["features"]
                for _ in range(warmup):
                    client.get(url)
                times, size = [], 0
                for _ in range(n_requests):
                    t0 = time.perf_counter()
                    r = client.get(url)
                    times.append((time.perf_counter() - t0) * 1000)
                    if r.status_code != 200:
                        raise click.ClickException(f"GET {url}: HTTP {r.status_code}")
                    size = len(r.content)
    slowest = max(range(len(times)), key=times.__getitem__) + 1
    times.sort()
    median = statistics.median(times)
    p90 = times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]
    encoding = first.headers.get("content-encoding") or "none"
    click.echo(f"  response: {len(features)} features, {size:,} bytes ({size / 1e6:.2f} MB), "
               f"{first.headers.get('content-type')}, content-encoding {encoding}")
    click.echo(f"  latency over {len(times)} requests: median {median:.1f} ms, p90 {p90:.1f} ms, "
               f"min {times[0]:.1f} ms, max {times[-1]:.1f} ms (request #{slowest})")
    ok = median < AREA_BROWSER_MAX_MEDIAN_MS
    click.echo(f"  median {median:.1f} ms, target < {AREA_BROWSER_MAX_MEDIAN_MS:.0f} ms: {_verdict(ok)}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    bench()
