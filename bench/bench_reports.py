"""Citizen-report benchmarks on SQLite, over real HTTP against `siskamling serve`.

Run from the project folder (small runs while developing; the issue's targets are the defaults):

    .venv/bin/python bench/bench_reports.py intake --seconds 10
    .venv/bin/python bench/bench_reports.py intake                      # 16 connections, 20 s
    .venv/bin/python bench/bench_reports.py queue --reports 100000 --requests 50
    .venv/bin/python bench/bench_reports.py queue                       # 2,000,000 reports, 200 requests

``intake``: POST /open311/v2/requests.json sustained at >= 300 committed reports/s with p95 <= 100 ms.
A fresh SQLite database in a temporary folder gets Jakarta's 267 kelurahan and 2,685 RW (the real
boundary files in ../shared/data/boundaries/, imported with the project's own import code) and an
Open311 client (``channels.create_client``: its api_key). ``siskamling serve`` runs as a child
process the way users start it (SISKAMLING_* variables, camera workers off). The load generator
(this process: asyncio + aiohttp) keeps --connections requests in flight for --warmup + --seconds,
each a form-encoded report (api_key, service_code, lat/long inside a kelurahan, description). A
201 is a committed report; afterwards the report table must hold exactly as many rows as 201s were
received. Reference, same run, same load generator: a bare FastAPI app (in this file, run by
uvicorn with the options ``siskamling serve`` uses) whose POST endpoint inserts one row into a
SQLite table (WAL, synchronous=FULL, BEGIN IMMEDIATE, as siskamling/core/db.py sets them).

``queue``: with --reports (default 2,000,000) reports loaded, an operator's queue
(GET /api/v1/reports, Bearer token of an operator granted one populous kelurahan) and the public
GET /open311/v2/requests.json with filters, each at p95 <= 100 ms: --requests sequential requests
on one kept-alive connection, then as many from --concurrency connections at once. The database
is generated once per --reports/--seed and cached in /tmp/siskamling-bench-reports/ (each run
works on a copy): the real kelurahan and RW boundaries, a unit per kelurahan (routing rules) and a
few city agencies, then reports written with raw SQL in big transactions: kelurahan drawn in
proportion to their 2014 population (../shared/data/reference/dki_kelurahan_population_2014.csv,
matched by Kemendagri code, else by name), a point inside one of the kelurahan's RW (or the
kelurahan when it has none) with that RW's path, created over the last two years, mostly closed
(older reports almost all), categories weighted, 95 % public, and their history rows (report_step:
"filed" for every report, the closing answer for closed ones). A query type that misses the target
is replayed once in-process with every SQL statement captured: the statements, how many times each
ran (N+1 patterns) and the slowest one's EXPLAIN QUERY PLAN are printed.

Both print the machine and the date, their figures and PASS/FAIL per target; exit status 1 when a
target is missed. Needs ``pip install -e '.[bench]'`` (aiohttp, httpx, psutil).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data"
DEFAULT_KELURAHAN = DATA / "boundaries" / "dki_kelurahan_kemendagri.geojson"
DEFAULT_RW = DATA / "boundaries" / "dki_rw_osm2012_inasafe.geojson"
DEFAULT_POPULATION = DATA / "reference" / "dki_kelurahan_population_2014.csv"
CACHE_DIR = Path("/tmp/siskamling-bench-reports")
GENERATOR_VERSION = 1

INTAKE_MIN_RATE = 300.0  # committed reports per second
INTAKE_P95_MAX_S = 0.100
QUERY_P95_MAX_S = 0.100
REFERENCE_FLAG = "_reference"
OPEN311_PATH = "/open311/v2/requests.json"

# Categories a citizen may file without answering a required question (Open311 attributes).
INTAKE_CATEGORIES = ("sampah", "jalan_rusak", "pju_mati", "parkir_liar", "ketertiban", "pohon_tumbang", "lainnya")
# Share of reports per category (JAKI-like: rubbish and roads lead).
CATEGORY_WEIGHTS = {"sampah": 20, "jalan_rusak": 15, "banjir": 9, "pju_mati": 9, "parkir_liar": 11,
                    "ketertiban": 11, "pohon_tumbang": 5, "kriminalitas": 4, "kebakaran": 1, "cctv": 3, "lainnya": 12}
# City agencies (unit code, name, categories they take over from the kelurahan).
AGENCIES = [("dinas-sda", "Dinas Sumber Daya Air", ("banjir",)),
            ("dinas-bina-marga", "Dinas Bina Marga", ("jalan_rusak", "pju_mati")),
            ("dinas-lh", "Dinas Lingkungan Hidup", ("sampah",)),
            ("satpol-pp", "Satpol PP", ("parkir_liar", "ketertiban")),
            ("dinas-gulkarmat", "Dinas Gulkarmat", ("kebakaran",)),
            ("dinas-pertamanan", "Dinas Pertamanan dan Hutan Kota", ("pohon_tumbang",))]
DESCRIPTIONS = {
    "sampah": ["Sampah menumpuk di pinggir jalan sudah tiga hari", "Tempat sampah penuh dan berbau",
               "Warga membuang sampah di saluran air"],
    "jalan_rusak": ["Jalan berlubang cukup dalam, membahayakan pengendara motor", "Aspal mengelupas setelah hujan",
                    "Paving block rusak di depan sekolah"],
    "banjir": ["Genangan air setinggi lutut setelah hujan deras", "Saluran tersumbat, air meluap ke jalan"],
    "pju_mati": ["Lampu jalan mati sejak seminggu, jalan gelap di malam hari", "PJU berkedip dan sering padam"],
    "parkir_liar": ["Parkir liar di bahu jalan menyebabkan macet", "Mobil parkir di trotoar setiap malam"],
    "ketertiban": ["Suara bising dari bengkel sampai larut malam", "Pedagang kaki lima menutup trotoar"],
    "pohon_tumbang": ["Pohon tumbang menutup separuh jalan", "Dahan besar patah dan hampir jatuh"],
    "kriminalitas": ["Ada percobaan pencurian motor di gang", "Sekelompok remaja tawuran di dekat pasar"],
    "kebakaran": ["Asap tebal keluar dari rumah kosong", "Korsleting listrik di tiang, ada api kecil"],
    "cctv": ["Kamera CCTV di simpang tidak menyala", "CCTV taman miring dan tertutup dahan"],
    "lainnya": ["Mohon perhatian petugas untuk masalah di lingkungan kami", "Fasilitas umum rusak dan perlu diperbaiki"],
}
NAMES = ["Budi Santoso", "Siti Aminah", "Agus Wijaya", "Dewi Lestari", "Rudi Hartono", "Nur Aini", "Andi Pratama",
         "Rina Marlina", "Joko Susilo", "Ayu Kartika"]
TICKET_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def echo(text: str = "") -> None:
    click.echo(text)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _machine() -> str:
    from siskamling.bench import cpu_model

    return f"{cpu_model()}, {os.cpu_count()} logical CPU(s), Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"


def _header(title: str) -> None:
    echo(title)
    echo(f"  machine: {_machine()}")
    load = os.getloadavg()
    echo(f"  date: {datetime.now().astimezone().isoformat(timespec='seconds')}; load average "
         f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start")
    if load[0] > 0.5 * (os.cpu_count() or 1):
        echo("  note: the machine is already busy (load average above half its CPUs): figures are provisional")


def quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _ms(seconds: float) -> str:
    return "n/a" if seconds != seconds else f"{seconds * 1000:.1f}"


def _need_bench_extras() -> None:
    try:
        import aiohttp  # noqa: F401
        import httpx  # noqa: F401
        import psutil  # noqa: F401
    except ImportError as exc:
        raise click.ClickException(f"this benchmark needs {exc.name}: .venv/bin/pip install -e '.[bench]'") from None


def _boundary_files(kelurahan: Path | None, rw: Path | None) -> tuple[Path, Path | None]:
    kel = (kelurahan or DEFAULT_KELURAHAN).resolve()
    if not kel.is_file():
        raise click.ClickException(f"no kelurahan boundary file at {kel}: pass --kelurahan PATH (see ../shared/data)")
    if rw is not None and str(rw) == "none":
        return kel, None
    rw_path = (rw or DEFAULT_RW).resolve()
    if not rw_path.is_file():
        raise click.ClickException(f"no RW boundary file at {rw_path}: pass --rw PATH, or --rw none")
    return kel, rw_path


# =============================================================================================
# child processes
# =============================================================================================


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """An HTTP server the benchmark started, in a process group of its own; stopped with SIGTERM,
    its group killed after a grace period."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log: Path, port: int) -> None:
        self.name, self.log, self.port = name, log, port
        self.base = f"http://127.0.0.1:{port}"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True, preexec_fn=_die_with_parent, cwd=ROOT)
        self.pid = self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, path: str = "/readyz", timeout: float = 120) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise click.ClickException(f"{self.name} stopped (exit {self.proc.returncode}):\n{self.log_tail()}")
            try:
                if httpx.get(self.base + path, timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise click.ClickException(f"{self.name} did not answer within {timeout:g} s:\n{self.log_tail()}")
            time.sleep(0.2)

    def cpu_seconds(self) -> float:
        import psutil

        total = 0.0
        try:
            procs = [psutil.Process(self.pid)]
            procs += procs[0].children(recursive=True)
        except psutil.NoSuchProcess:
            return 0.0
        for p in procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(20)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass


class ServerGroup:
    """Several server processes on one database, each on its own port, as a load balancer in front
    of one process per core would see them; requests are spread over them round-robin."""

    def __init__(self, servers: list[Server]) -> None:
        self.servers = servers
        self.name = servers[0].name
        self.pids = [s.pid for s in servers]
        self.log = servers[0].log

    @property
    def bases(self) -> list[str]:
        return [s.base for s in self.servers]

    def cpu_seconds(self) -> float:
        return sum(s.cpu_seconds() for s in self.servers)

    def log_text(self) -> str:
        return "".join(s.log.read_text(errors="replace") for s in self.servers)

    def stop(self) -> None:
        for s in self.servers:
            s.stop()


def _serve_command() -> list[str]:
    script = Path(sys.executable).parent / "siskamling"
    return [str(script)] if script.exists() else [sys.executable, "-m", "siskamling"]


def _serve_env(folder: Path, db_path: Path, secret: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SISKAMLING_")}
    env.update({
        "SISKAMLING_DATABASE_URL": f"sqlite:///{db_path}", "SISKAMLING_MEDIA_DIR": str(folder / "media"),
        "SISKAMLING_ENVIRONMENT": "development", "SISKAMLING_RUN_WORKERS": "false", "SISKAMLING_SECRET_KEY": secret,
        "SISKAMLING_SESSION_COOKIE_SECURE": "false", "SISKAMLING_TILE_URL": "",
    })
    return env


def start_ours(folder: Path, db_path: Path, secret: str, log: Path) -> Server:
    port = _free_port()
    server = Server("siskamling serve", [*_serve_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
                    _serve_env(folder, db_path, secret), log, port)
    server.wait_ready()
    return server


def start_ours_group(folder: Path, db_path: Path, secret: str, processes: int) -> ServerGroup:
    return ServerGroup([start_ours(folder, db_path, secret, folder / f"serve-{i + 1}.log") for i in range(processes)])


def _settings(folder: Path, db_path: Path, secret: str):
    from siskamling.cli import load_settings
    from siskamling.core.config import Environment

    return load_settings(environment=Environment.development, database_url=f"sqlite:///{db_path}",
                         media_dir=folder / "media", secret_key=secret, session_cookie_secure=False, tile_url="",
                         run_workers=False)


def import_boundaries(engine, kelurahan: Path, rw: Path | None) -> None:
    from siskamling.areas import importer
    from siskamling.areas import service as areas
    from siskamling.areas.models import Level
    from siskamling.audit.service import Actor
    from siskamling.core.db import make_session_factory, session_scope
    from siskamling.demo.service import KELURAHAN_OPTIONS, RW_OPTIONS

    with session_scope(make_session_factory(engine)) as db:
        plan = [(kelurahan, Level.kelurahan, KELURAHAN_OPTIONS)] + ([(rw, Level.rw, RW_OPTIONS)] if rw else [])
        for path, level, options in plan:
            started = time.perf_counter()
            try:
                result = areas.import_file(db_session=db, path=path, opts=importer.ImportOptions(level=level, **options),
                                           actor=Actor.system("bench"))
            except importer.ImportFailed as exc:
                raise click.ClickException(f"{path}: {exc}") from None
            echo(f"  {path.name}: {result.summary()} ({time.perf_counter() - started:.1f} s)")


# =============================================================================================
# points inside areas
# =============================================================================================


def points_inside(geoms, per_area: int, rng, spread: float = 0.35):
    """``per_area`` (lon, lat) points inside each polygon: its centroid plus a jitter of ``spread``
    times its bounding box, kept only when inside (rejection); after a few rounds, what is left
    takes uniform points of the bounding box, then the polygon's representative point."""
    import numpy as np
    import shapely

    n = len(geoms)
    owner = np.repeat(np.arange(n), per_area)
    bounds = shapely.bounds(geoms)
    cx, cy = shapely.get_coordinates(shapely.centroid(geoms)).T
    w, h = bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1]
    lon, lat = np.empty(len(owner)), np.empty(len(owner))
    todo = np.arange(len(owner))
    for round_ in range(60):
        if not len(todo):
            break
        a = owner[todo]
        if round_ < 20:
            x = cx[a] + rng.normal(0, spread, len(todo)) * w[a]
            y = cy[a] + rng.normal(0, spread, len(todo)) * h[a]
        else:
            x = rng.uniform(bounds[a, 0], bounds[a, 2])
            y = rng.uniform(bounds[a, 1], bounds[a, 3])
        ok = shapely.contains_xy(geoms[a], x, y)
        lon[todo[ok]], lat[todo[ok]] = x[ok], y[ok]
        todo = todo[~ok]
    if len(todo):
        rep = shapely.get_coordinates(shapely.point_on_surface(geoms[owner[todo]]))
        lon[todo], lat[todo] = rep[:, 0], rep[:, 1]
    return lon.reshape(n, per_area), lat.reshape(n, per_area)


def _geoms(texts: list[str]):
    import numpy as np
    import shapely

    return shapely.from_geojson(np.array(texts, dtype=object))


# =============================================================================================
# intake
# =============================================================================================


def reference_main(db_path: str, port: str) -> None:
    """The reference server (run as: bench_reports.py _reference DB PORT): bare FastAPI, one SQLite
    INSERT per POST, uvicorn with the options ``siskamling serve`` passes (cli._serve)."""
    import threading

    import uvicorn
    from fastapi import FastAPI, Form

    local = threading.local()

    def connection() -> sqlite3.Connection:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(db_path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA synchronous=FULL")
            local.conn = conn
        return conn

    app = FastAPI()

    @app.get("/readyz")
    def ready() -> dict:
        return {"status": "ready"}

    @app.post(OPEN311_PATH, status_code=201)
    def post(api_key: str = Form(), service_code: str = Form(), lat: float = Form(), long: float = Form(),
             description: str = Form()) -> list[dict]:
        conn = connection()
        ticket = "LP" + "".join(secrets.choice(TICKET_ALPHABET) for _ in range(11))
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("INSERT INTO report (ticket, service_code, lat, lon, description, created_at) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (ticket, service_code, lat, long, description, datetime.now(UTC).isoformat()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return [{"service_request_id": ticket, "service_notice": None, "account_id": None}]

    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="info", proxy_headers=True,
                forwarded_allow_ips="127.0.0.1", ws_per_message_deflate=False)


def start_reference(folder: Path, processes: int) -> tuple[ServerGroup, Path]:
    db = folder / "reference.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE report (id INTEGER PRIMARY KEY, ticket VARCHAR(20) NOT NULL UNIQUE, "
                 "service_code VARCHAR(40) NOT NULL, lat FLOAT NOT NULL, lon FLOAT NOT NULL, description TEXT NOT NULL, "
                 "created_at DATETIME NOT NULL)")
    conn.commit()
    conn.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SISKAMLING_")}
    servers = []
    for i in range(processes):
        port = _free_port()
        server = Server("reference (bare FastAPI)", [sys.executable, str(Path(__file__).resolve()), REFERENCE_FLAG,
                                                     str(db), str(port)], env, folder / f"reference-{i + 1}.log", port)
        servers.append(server)
        server.wait_ready()
    return ServerGroup(servers), db


def _machine_busy() -> float:
    import psutil

    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


async def _drive(path: str, bodies: list[dict], connections: int, seconds: float, warmup: float,
                 server: ServerGroup) -> dict:
    """``connections`` workers POST form bodies back to back for warmup + seconds, worker i to
    server process i mod n; latencies of the requests started inside the window are kept."""
    import aiohttp
    import psutil

    me = psutil.Process()
    done: list[tuple[float, float, object]] = []  # (finished at, latency, status) of every request
    busy = [0]
    samples: list[str] = []
    t0 = time.perf_counter()
    mark, end = t0 + warmup, t0 + warmup + seconds
    marks: dict[str, tuple] = {}

    def snapshot() -> tuple:
        c = me.cpu_times()
        return time.perf_counter(), server.cpu_seconds(), c.user + c.system, _machine_busy(), busy[0]

    async def clock() -> None:
        await asyncio.sleep(max(0.0, mark - time.perf_counter()))
        marks["start"] = snapshot()
        await asyncio.sleep(max(0.0, end - time.perf_counter()))
        marks["end"] = snapshot()

    async def worker(i: int, session) -> None:
        k = i
        url = server.bases[i % len(server.bases)] + path
        while time.perf_counter() < end:
            body = bodies[k % len(bodies)]
            k += connections
            busy[0] += 1
            started = time.perf_counter()
            try:
                async with session.post(url, data=body) as r:
                    text = await r.read()
                    status: object = r.status
                    if r.status != 201 and len(samples) < 3:
                        samples.append(f"HTTP {r.status}: {text[:300]!r}")
            except Exception as exc:  # noqa: BLE001 - a refused or reset connection is a failed request
                status = type(exc).__name__
                if len(samples) < 3:
                    samples.append(f"{type(exc).__name__}: {exc}"[:300])
            finished = time.perf_counter()
            busy[0] -= 1
            done.append((finished, finished - started, status))

    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tick = asyncio.create_task(clock())
        await asyncio.gather(*(worker(i, session) for i in range(connections)))
        await tick
    (w0, s0, c0, m0, _b0), (w1, s1, c1, m1, in_flight) = marks["start"], marks["end"]
    wall = w1 - w0
    window = [(t, s) for f, t, s in done if w0 <= f <= w1]  # answered inside the window
    ok = sorted(t for t, s in window if s == 201)
    return {"wall": wall, "ok": len(ok), "rate": len(ok) / wall, "latency": ok, "requests": len(window),
            "statuses": Counter(str(s) for _, s in window), "errors": len(window) - len(ok),
            "created_total": sum(1 for _, _, s in done if s == 201), "in_flight": in_flight,
            "slowest": max((t for _, t, _ in done), default=float("nan")),
            "samples": samples, "server_cpu": (s1 - s0) / wall, "client_cpu": (c1 - c0) / wall,
            "machine_cpu": (m1 - m0) / wall}


def _intake_bodies(api_key: str, lon, lat, names: list[str], n: int, rng) -> list[dict]:
    import numpy as np

    areas, per = lon.shape
    pick_area = rng.integers(0, areas, n)
    pick_point = rng.integers(0, per, n)
    cats = rng.choice(np.array(INTAKE_CATEGORIES), n)
    out = []
    for a, p, cat in zip(pick_area.tolist(), pick_point.tolist(), cats.tolist(), strict=True):
        text = DESCRIPTIONS[cat][p % len(DESCRIPTIONS[cat])]
        out.append({"api_key": api_key, "service_code": cat, "lat": f"{lat[a, p]:.6f}", "long": f"{lon[a, p]:.6f}",
                    "description": f"{text} (Kelurahan {names[a]})"})
    return out


def run_intake(connections: int, seconds: float, warmup: float, kelurahan: Path | None, rw: Path | None,
               seed: int, keep: bool, no_reference: bool, processes: int = 1) -> None:
    import numpy as np

    from siskamling.audit.service import Actor
    from siskamling.cli import prepare_database
    from siskamling.core.db import make_session_factory, session_scope
    from siskamling.reports import channels

    _need_bench_extras()
    kel_file, rw_file = _boundary_files(kelurahan, rw)
    _header(f"bench reports intake: POST {OPEN311_PATH}, {connections} connections, {warmup:g} s warm-up + "
             f"{seconds:g} s window, per side, {processes} server process(es) per side")
    folder = Path(tempfile.mkdtemp(prefix="siskamling-bench-intake-"))
    results: dict[str, dict] = {}
    try:
        with ExitStack() as stack:
            secret = secrets.token_urlsafe(48)
            db_path = folder / "bench.db"
            settings = _settings(folder, db_path, secret)
            started = time.perf_counter()
            engine = prepare_database(settings, migrate=True)
            import_boundaries(engine, kel_file, rw_file)
            with session_scope(make_session_factory(engine)) as db:
                _client, api_key, _ = channels.create_client(db_session=db, settings=settings, name="bench-open311",
                                                             webhook_url=None, actor=Actor.system("bench"))
            conn = sqlite3.connect(db_path)
            rows = conn.execute("SELECT name, geometry FROM area WHERE level = 'kelurahan' AND geometry IS NOT NULL "
                                "ORDER BY code").fetchall()
            conn.close()
            engine.dispose()
            rng = np.random.default_rng(seed)
            lon, lat = points_inside(_geoms([g for _, g in rows]), 40, rng)
            bodies = _intake_bodies(api_key, lon, lat, [n for n, _ in rows], 20_000, rng)
            echo(f"  set up in {time.perf_counter() - started:.1f} s in {folder}: {len(rows)} kelurahan, Open311 "
                 f"client with an api_key; {len(bodies):,} distinct report bodies (categories "
                 f"{', '.join(INTAKE_CATEGORIES)}; points inside the kelurahan polygons)")

            server = start_ours_group(folder, db_path, secret, processes)
            stack.callback(server.stop)
            echo(f"  ours: {processes} x siskamling serve (pids {', '.join(map(str, server.pids))}) on "
                 f"{', '.join(server.bases)}, database {db_path.name} (WAL, synchronous=FULL)")
            ours = asyncio.run(_drive(OPEN311_PATH, bodies, connections, seconds, warmup, server))
            server.stop()
            ours["locked"] = server.log_text().count("OperationalError) database is locked")
            conn = sqlite3.connect(db_path)
            ours["rows"] = conn.execute("SELECT count(*) FROM report").fetchone()[0]
            ours["steps"] = conn.execute("SELECT count(*) FROM report_step").fetchone()[0]
            conn.close()
            results["ours"] = ours

            if not no_reference:
                ref_server, ref_db = start_reference(folder, processes)
                stack.callback(ref_server.stop)
                echo(f"  reference: {processes} x bare FastAPI (pids {', '.join(map(str, ref_server.pids))}), uvicorn "
                     f"with serve's options, one INSERT per request into {ref_db.name} (WAL, synchronous=FULL, "
                     f"BEGIN IMMEDIATE)")
                ref = asyncio.run(_drive(OPEN311_PATH, bodies, connections, seconds, warmup, ref_server))
                ref_server.stop()
                conn = sqlite3.connect(ref_db)
                ref["rows"] = conn.execute("SELECT count(*) FROM report").fetchone()[0]
                conn.close()
                results["reference"] = ref
    except KeyboardInterrupt:
        echo("interrupted: every process started by the benchmark was stopped")
        sys.exit(130)
    finally:
        if keep:
            echo(f"  kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    report_intake(results, connections)


def report_intake(results: dict[str, dict], connections: int) -> None:
    ours, ref = results["ours"], results.get("reference")
    sides = [("ours (siskamling serve)", ours)] + ([("reference (bare FastAPI)", ref)] if ref else [])
    echo("")
    echo(f"  {'':<42}" + "".join(f"{name:>26}" for name, _ in sides))

    def row(label: str, fn) -> None:
        echo(f"  {label:<42}" + "".join(f"{fn(r):>26}" for _, r in sides))

    row("window", lambda r: f"{r['wall']:.1f} s")
    row("requests answered in the window", lambda r: f"{r['requests']:,}")
    row("requests in flight at the end of it", lambda r: f"{r['in_flight']:,}")
    row("committed (201) per second", lambda r: f"{r['rate']:,.1f}")
    row("latency of 201s p50 / p95 / p99 (ms)", lambda r: f"{_ms(quantile(r['latency'], .5))} / "
        f"{_ms(quantile(r['latency'], .95))} / {_ms(quantile(r['latency'], .99))}")
    row("slowest request of the run (ms)", lambda r: _ms(r["slowest"]))
    row("errors (not 201)", lambda r: f"{r['errors']:,}")
    row("server CPU (cores)", lambda r: f"{r['server_cpu']:.2f}")
    row("server CPU per committed report (ms)", lambda r: f"{1000 * r['server_cpu'] / r['rate']:.2f}" if r["rate"]
        else "n/a")
    row("load generator CPU (cores)", lambda r: f"{r['client_cpu']:.2f}")
    row("machine busy (cores, of %d)" % (os.cpu_count() or 0), lambda r: f"{r['machine_cpu']:.2f}")
    row("201s received, whole run", lambda r: f"{r['created_total']:,}")
    row("rows in the report table", lambda r: f"{r['rows']:,}")
    for name, r in sides:
        if r["errors"]:
            echo(f"  {name}: statuses {dict(r['statuses'])}; e.g. {r['samples'][:2]}")
    if ours.get("locked"):
        echo(f"  ours: the server log shows {ours['locked']} 'database is locked' error(s) (SQLite busy_timeout "
             f"expired)")
    if "steps" in ours:
        echo(f"  ours also wrote {ours['steps']:,} report_step rows (the 'filed' step of each report)")
    if ref:
        ratio = ours["rate"] / ref["rate"] if ref["rate"] else float("nan")
        echo(f"  throughput ours / reference: {ratio:.2f} x ({ours['rate']:,.1f} vs {ref['rate']:,.1f} committed/s; "
             f"no target)")
    checks_ok = all(r["rows"] == r["created_total"] for _, r in sides)
    for name, r in sides:
        if r["rows"] != r["created_total"]:
            echo(f"  CHECK FAILED, {name}: {r['rows']:,} rows in the table but {r['created_total']:,} 201s received")
    if checks_ok:
        echo("  check: every side's table holds exactly as many rows as it answered 201")
    p95 = quantile(ours["latency"], .95)
    rate_ok = ours["rate"] >= INTAKE_MIN_RATE
    p95_ok = p95 == p95 and p95 <= INTAKE_P95_MAX_S
    echo(f"  committed reports/s {ours['rate']:,.1f}, target >= {INTAKE_MIN_RATE:g}: {_verdict(rate_ok)}")
    echo(f"  p95 {_ms(p95)} ms, target <= {INTAKE_P95_MAX_S * 1000:g} ms ({connections} connections): "
         f"{_verdict(p95_ok)}")
    busy = max(r["machine_cpu"] - r["server_cpu"] - r["client_cpu"] for _, r in sides)
    if busy > 0.3:
        echo(f"  note: up to {busy:.2f} cores were used by other programs during a window: figures are provisional")
    if not (rate_ok and p95_ok and checks_ok):
        sys.exit(1)


# =============================================================================================
# queue: the generated database
# =============================================================================================


def _norm(name: str) -> str:
    text = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode().lower()
    return "".join(c for c in text if c.isalnum())


def read_population(path: Path, kelurahan: list[tuple]) -> tuple[dict[str, int], str]:
    """code -> population for the given kelurahan (code, name, ...), matched by Kemendagri code,
    else by normalised name; a summary of the matching."""
    by_code, by_name = {}, {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            try:
                total = int(float(row.get("total") or 0))
            except ValueError:
                continue
            code = (row.get("kode_kemendagri") or "").strip()
            if code:
                by_code[code] = total
            for key in ("nama_kemendagri_2025", "nama_sumber"):
                if row.get(key):
                    by_name.setdefault(_norm(row[key]), total)
    out: dict[str, int] = {}
    code_hits = name_hits = 0
    for code, name, *_ in kelurahan:
        if code in by_code:
            out[code] = by_code[code]
            code_hits += 1
        elif _norm(name) in by_name:
            out[code] = by_name[_norm(name)]
            name_hits += 1
    missing = len(kelurahan) - code_hits - name_hits
    summary = (f"{code_hits} of {len(kelurahan)} kelurahan matched by code, {name_hits} by name, {missing} unmatched"
               f" (given the median); {sum(out.values()):,} people")
    return out, summary


def _cache_file(n: int, seed: int, kel: Path, rw: Path | None, population: Path) -> Path:
    from siskamling.core import migrate

    h = hashlib.sha256()
    for p in (kel, rw, population):
        h.update(f"{p}:{p.stat().st_size if p else 0}".encode())
    return CACHE_DIR / f"reports-{n}-seed{seed}-g{GENERATOR_VERSION}-{migrate.head_revision()}-{h.hexdigest()[:8]}.db"


def _b32(values, width: int = 5) -> list[str]:
    import numpy as np

    alphabet = np.array(list(TICKET_ALPHABET))
    digits = []
    v = np.asarray(values, dtype=np.int64)
    for _ in range(width):
        digits.append(alphabet[v % 32])
        v = v // 32
    out = digits[-1]
    for d in reversed(digits[:-1]):
        out = np.char.add(out, d)
    return out.tolist()


def _stamps(us, mask=None) -> list:
    """Microseconds since the epoch -> SQLAlchemy's SQLite DATETIME text ('YYYY-MM-DD HH:MM:SS.ffffff');
    None where ``mask`` is False."""
    import numpy as np

    text = np.datetime_as_string(np.asarray(us, dtype="datetime64[us]"), unit="us")
    out = [s.replace("T", " ") for s in text.tolist()]
    if mask is not None:
        out = [s if m else None for s, m in zip(out, np.asarray(mask).tolist(), strict=True)]
    return out


def generate(path: Path, n: int, seed: int, kel_file: Path, rw_file: Path | None, population: Path) -> dict:
    """Builds the cached database at ``path`` (through a .partial file) and returns its facts."""
    import numpy as np
    import shapely

    from siskamling.audit.service import Actor
    from siskamling.cli import prepare_database
    from siskamling.core.db import make_session_factory, session_scope
    from siskamling.reports import catalogue
    from siskamling.reports.models import Category

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    for p in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm"), Path(f"{partial}-journal")):
        p.unlink(missing_ok=True)
    started = time.perf_counter()
    settings = _settings(CACHE_DIR, partial, secrets.token_urlsafe(48))
    engine = prepare_database(settings, migrate=True)
    import_boundaries(engine, kel_file, rw_file)

    # units: one per kelurahan (a routing rule for every category), and the city agencies
    from sqlalchemy import select

    from siskamling.areas.models import Area

    actor = Actor.system("bench")
    with session_scope(make_session_factory(engine)) as db:
        kels = list(db.scalars(select(Area).where(Area.level == "kelurahan").order_by(Area.code)))
        for kel in kels:
            unit = catalogue.save_unit(db_session=db, code="kel-" + kel.code.replace(".", ""),
                                       name=f"Kelurahan {kel.name}", kind="kelurahan", area_path=kel.path, actor=actor)
            catalogue.set_rule(db_session=db, category_row=None, area_path=kel.path, unit_row=unit, actor=actor)
        for code, name, _cats in AGENCIES:
            catalogue.save_unit(db_session=db, code=code, name=name, kind="dinas", area_path=None, actor=actor)
        cats = {c.code: (c.id, c.emergency) for c in db.scalars(select(Category))}
    engine.dispose()
    setup_s = time.perf_counter() - started

    conn = sqlite3.connect(partial, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("PRAGMA cache_size=-400000")
    kel_rows = conn.execute("SELECT id, code, name, path, geometry FROM area WHERE level = 'kelurahan' "
                            "AND geometry IS NOT NULL ORDER BY code").fetchall()
    rw_rows = conn.execute("SELECT a.id, a.code, a.path, a.geometry, p.code FROM area a JOIN area p ON p.id = a.parent_id "
                           "WHERE a.level = 'rw' AND a.geometry IS NOT NULL ORDER BY a.code").fetchall()
    units = dict(conn.execute("SELECT code, id FROM report_unit").fetchall())
    pop, pop_summary = read_population(population, [(code, name) for _, code, name, _, _ in kel_rows])
    median = int(np.median(list(pop.values()))) if pop else 1
    kel_pop = np.array([pop.get(code, median) for _, code, _, _, _ in kel_rows], dtype=float)
    kel_index = {code: i for i, (_, code, _, _, _) in enumerate(kel_rows)}

    # leaves: each kelurahan's RWs, or the kelurahan itself when it has none
    leaf_kel, leaf_id, leaf_path, leaf_geom = [], [], [], []
    by_kel: dict[int, list] = {}
    for rid, _code, rpath, geom, parent in rw_rows:
        if parent in kel_index:
            by_kel.setdefault(kel_index[parent], []).append((rid, rpath, geom))
    for i, (kid, _code, _name, kpath, kgeom) in enumerate(kel_rows):
        for rid, rpath, geom in by_kel.get(i, [(kid, kpath, kgeom)]):
            leaf_kel.append(i)
            leaf_id.append(rid)
            leaf_path.append(rpath)
            leaf_geom.append(geom)
    geoms = _geoms(leaf_geom)
    leaf_kel_a = np.array(leaf_kel)
    weights = shapely.area(geoms)
    kel_area = np.bincount(leaf_kel_a, weights=weights, minlength=len(kel_rows))
    within = np.zeros(len(leaf_kel))  # cumulative share of the kelurahan's area, per leaf
    for k in range(len(kel_rows)):
        idx = np.flatnonzero(leaf_kel_a == k)
        within[idx] = np.cumsum(weights[idx]) / kel_area[k]
    edges = leaf_kel_a + within  # strictly increasing: k + (0, 1]
    edges[np.r_[np.diff(leaf_kel_a) != 0, True]] = np.arange(len(kel_rows)) + 1.0  # each group ends at k + 1 exactly
    rng = np.random.default_rng(seed)
    per_leaf = 32
    pool_lon, pool_lat = points_inside(geoms, per_leaf, rng)

    # the reports, oldest first
    now = datetime.now(UTC).replace(microsecond=0)
    now_us = int(now.timestamp() * 1_000_000)
    day = 86_400 * 1_000_000
    created = np.sort(now_us - rng.integers(0, 730 * day, n))
    age_days = (now_us - created) / day
    kel_pick = rng.choice(len(kel_rows), n, p=kel_pop / kel_pop.sum())
    leaf = np.searchsorted(edges, kel_pick + (1.0 - rng.random(n)), side="left")
    point = rng.integers(0, per_leaf, n)
    lon = pool_lon[leaf, point] + rng.normal(0, 2e-5, n)
    lat = pool_lat[leaf, point] + rng.normal(0, 2e-5, n)
    cat_codes = list(CATEGORY_WEIGHTS)
    cw = np.array([CATEGORY_WEIGHTS[c] for c in cat_codes], dtype=float)
    cat_pick = rng.choice(len(cat_codes), n, p=cw / cw.sum())
    p_open = np.select([age_days < 2, age_days < 14, age_days < 60], [0.7, 0.35, 0.08], 0.015)
    is_open = rng.random(n) < p_open
    open_statuses = np.array(["menunggu", "koordinasi", "disposisi", "proses"])
    closed_statuses = np.array(["selesai", "ditolak", "duplikat"])
    status = np.where(is_open, open_statuses[rng.choice(4, n, p=[0.3, 0.25, 0.2, 0.25])],
                      closed_statuses[rng.choice(3, n, p=[0.88, 0.08, 0.04])])
    acted = status != "menunggu"
    first_action = np.minimum(created + (rng.exponential(4 * 3600, n) * 1e6).astype(np.int64), now_us)
    closed = ~is_open
    closed_at = np.minimum(first_action + (rng.exponential(3 * 86400, n) * 1e6).astype(np.int64), now_us)
    updated = np.where(closed, closed_at, np.where(acted, first_action, created))
    occurred = created - (rng.exponential(1800, n) * 1e6).astype(np.int64)
    public = rng.random(n) < 0.95
    anonymous = rng.random(n) < 0.3
    confidential = rng.random(n) < 0.02
    channel = np.array(["web", "app", "open311", "import"])[rng.choice(4, n, p=[0.35, 0.45, 0.15, 0.05])]
    photo = (rng.random(n) < 0.6).astype(int)
    support = np.minimum(rng.geometric(0.7, n) - 1, 50)
    to_agency = rng.random(n) < 0.2
    agency_of = {c: units[code] for code, _n, cs in AGENCIES for c in cs}
    kel_unit = np.array([units["kel-" + code.replace(".", "")] for _, code, _, _, _ in kel_rows])
    cat_agency = np.array([agency_of.get(c, 0) for c in cat_codes])
    unit = np.where(to_agency & (cat_agency[cat_pick] > 0), cat_agency[cat_pick], kel_unit[kel_pick])
    emergency_cat = np.array([cats[c][1] for c in cat_codes])
    emergency = emergency_cat[cat_pick] & (rng.random(n) < 0.8)
    ids = np.arange(1, n + 1)
    dup_of = np.where(status == "duplikat", np.maximum(1, ids - rng.integers(1, 500, n)), 0)
    dup_of = np.where(dup_of >= ids, 0, dup_of)
    day_text = [s[2:4] + s[5:7] + s[8:10] for s in np.datetime_as_string(created.astype("datetime64[us]"),
                                                                          unit="D").tolist()]
    suffix = _b32(ids)
    tickets = ["LP" + d + s for d, s in zip(day_text, suffix, strict=True)]
    stamp_created, stamp_updated = _stamps(created), _stamps(updated)
    stamp_occurred = _stamps(occurred)
    stamp_first = _stamps(first_action, acted)
    stamp_resolved = _stamps(closed_at, status == "selesai")
    stamp_closed = _stamps(closed_at, closed)
    leaf_id_a, cat_id = np.array(leaf_id), np.array([cats[c][0] for c in cat_codes])
    attrs = {"banjir": '{"tinggi_air_cm": 40}', "kriminalitas": '{"sedang_terjadi": "tidak"}'}
    kel_names = [name for _, _, name, _, _ in kel_rows]
    names = np.array(NAMES)[rng.integers(0, len(NAMES), n)].tolist()
    gen_s = time.perf_counter() - started - setup_s

    # drop the secondary indexes while loading; the same definitions are created again after
    index_sql = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                             "AND tbl_name IN ('report', 'report_step')").fetchall()
    for name, _sql in index_sql:
        conn.execute(f'DROP INDEX "{name}"')
    columns = ("id, ticket, category_id, description, attributes, lat, lon, area_id, area_path, status, unit_id, "
               "duplicate_of_id, channel, reporter_name, anonymous, confidential, public, emergency, occurred_at, "
               "created_at, updated_at, first_action_at, resolved_at, closed_at, reopen_count, support_count, "
               "photo_count")
    insert = f"INSERT INTO report ({columns}) VALUES ({', '.join('?' * len(columns.split(',')))})"
    step_insert = ("INSERT INTO report_step (report_id, at, kind, status_from, status_to, unit_to_id, actor_label, "
                   "by_staff, note, public) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    notes = {"selesai": "Sudah ditangani petugas, terima kasih atas laporannya.",
             "ditolak": "Bukan kewenangan kelurahan, mohon lapor ke instansi terkait.",
             "duplikat": None}
    chunk = 200_000
    steps = 0
    # plain lists: indexing numpy arrays one element at a time is several times slower
    cat_l, status_l, kel_l, leaf_l = cat_pick.tolist(), status.tolist(), kel_pick.tolist(), leaf.tolist()
    lat_l, lon_l, unit_l, dup_l = lat.tolist(), lon.tolist(), unit.tolist(), dup_of.tolist()
    channel_l, anon_l, conf_l, public_l = channel.tolist(), anonymous.tolist(), confidential.tolist(), public.tolist()
    emerg_l, support_l, photo_l, closed_l = emergency.tolist(), support.tolist(), photo.tolist(), closed.tolist()
    cat_id_l, leaf_id_l = cat_id.tolist(), leaf_id_a.tolist()
    t_insert = time.perf_counter()
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        rows, step_rows = [], []
        for i in range(lo, hi):
            c = cat_l[i]
            cat = cat_codes[c]
            st = status_l[i]
            texts = DESCRIPTIONS[cat]
            anon = anon_l[i]
            lf = leaf_l[i]
            rid = i + 1
            rows.append((rid, tickets[i], cat_id_l[c], f"{texts[i % len(texts)]} (Kelurahan {kel_names[kel_l[i]]})",
                         attrs.get(cat, "{}"), lat_l[i], lon_l[i], leaf_id_l[lf], leaf_path[lf], st, unit_l[i],
                         dup_l[i] or None, channel_l[i], None if anon else names[i], anon, conf_l[i], public_l[i],
                         emerg_l[i], stamp_occurred[i], stamp_created[i], stamp_updated[i], stamp_first[i],
                         stamp_resolved[i], stamp_closed[i], 0, support_l[i], photo_l[i]))
            step_rows.append((rid, stamp_created[i], "filed", None, "menunggu", unit_l[i], f"{channel_l[i]}:warga", 0,
                              None, 1))
            if closed_l[i]:
                if st == "duplikat":
                    step_rows.append((rid, stamp_closed[i], "merge", "proses", st, None, "operator", 1,
                                      tickets[dup_l[i] - 1] if dup_l[i] else None, 1))
                else:
                    step_rows.append((rid, stamp_closed[i], "status", "proses", st, None, "operator", 1, notes[st], 1))
        conn.execute("BEGIN")
        conn.executemany(insert, rows)
        conn.executemany(step_insert, step_rows)
        conn.execute("COMMIT")
        steps += len(step_rows)
        echo(f"    {hi:,} / {n:,} reports written ({time.perf_counter() - t_insert:.0f} s)")
    insert_s = time.perf_counter() - t_insert
    t_index = time.perf_counter()
    for _name, sql in index_sql:
        conn.execute(sql)
    index_s = time.perf_counter() - t_index
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    counts = np.bincount(kel_pick, minlength=len(kel_rows))
    top = [(kel_rows[i][1], kel_rows[i][2], int(counts[i]), int(kel_pop[i])) for i in np.argsort(-counts)[:5]]
    facts = {"reports": n, "steps": steps, "generated_at": now.isoformat(), "population": pop_summary,
             "kelurahan": len(kel_rows), "rw": len(rw_rows), "leaves": len(leaf_id), "top_kelurahan": top,
             "open": int(is_open.sum()), "public": int(public.sum()),
             "seconds": {"setup": round(setup_s, 1), "draw": round(gen_s, 1), "insert": round(insert_s, 1),
                         "indexes": round(index_s, 1), "total": round(time.perf_counter() - started, 1)}}
    partial.rename(path)
    path.with_suffix(".json").write_text(json.dumps(facts, indent=1))
    return facts


# =============================================================================================
# queue: the measurements
# =============================================================================================


class QueryType:
    def __init__(self, group: str, label: str, urls, auth: bool) -> None:
        self.group, self.label, self.urls, self.auth = group, label, urls, auth


def query_types(kel_code: str, rw_code: str | None, now: datetime, rng) -> list[QueryType]:
    """Each type makes the n-th request's URL (some rotate a category or a date range)."""
    cats = list(CATEGORY_WEIGHTS)

    def fixed(url):
        return lambda i: url

    def iso(t: datetime) -> str:
        return t.isoformat(timespec="seconds").replace("+00:00", "Z")

    def week(i: int) -> str:
        start = now - timedelta(days=float(rng.uniform(7, 720)))
        return f"start_date={iso(start)}&end_date={iso(start + timedelta(days=7))}"

    def month_svc_open(i: int) -> str:
        start = now - timedelta(days=float(rng.uniform(30, 360)))
        return (f"service_code={cats[i % len(cats)]}&status=open&start_date={iso(start)}"
                f"&end_date={iso(start + timedelta(days=30))}")

    q, o = "/api/v1/reports", OPEN311_PATH
    out = [
        QueryType("queue", "first page (50)", fixed(q), True),
        QueryType("queue", "page 5", fixed(q + "?page=5"), True),
        QueryType("queue", "status=proses&status=menunggu", fixed(q + "?status=proses&status=menunggu"), True),
        QueryType("queue", "status=menunggu", fixed(q + "?status=menunggu"), True),
        QueryType("queue", "all open statuses, older_than_days=3",
                  fixed(q + "?status=menunggu&status=koordinasi&status=disposisi&status=proses&older_than_days=3"),
                  True),
        QueryType("queue", "category=<rotating>", lambda i: f"{q}?category={cats[i % len(cats)]}", True),
        QueryType("queue", "category=<rotating>&status=menunggu",
                  lambda i: f"{q}?category={cats[i % len(cats)]}&status=menunggu", True),
        QueryType("queue", "unit=<the kelurahan's unit>", fixed(f"{q}?unit=kel-{kel_code.replace('.', '')}"), True),
    ]
    if rw_code:
        out.append(QueryType("queue", "area=<its busiest RW>", fixed(f"{q}?area={rw_code}"), True))
    out += [
        QueryType("open311", "no filter (last 90 days, 1000)", fixed(o), False),
        QueryType("open311", "page_size=50", fixed(o + "?page_size=50"), False),
        QueryType("open311", "service_code=<rotating>", lambda i: f"{o}?service_code={cats[i % len(cats)]}", False),
        QueryType("open311", "status=open", fixed(o + "?status=open"), False),
        QueryType("open311", "start/end_date: a random week", lambda i: f"{o}?{week(i)}", False),
        QueryType("open311", "service_code+status=open+30 days", lambda i: f"{o}?{month_svc_open(i)}", False),
        QueryType("open311", "page=3&page_size=100", fixed(o + "?page=3&page_size=100"), False),
        QueryType("open311", "2 years, page=20&page_size=100",
                  fixed(f"{o}?start_date={iso(now - timedelta(days=730))}&page=20&page_size=100"), False),
    ]
    return out


def _count_rows(body: bytes) -> int:
    try:
        data = json.loads(body)
    except ValueError:
        return -1
    return len(data) if isinstance(data, list) else -1


def measure_sequential(base: str, qt: QueryType, headers: dict, n: int, cap_s: float) -> dict:
    import httpx

    times, statuses, rows, size, first_error = [], Counter(), [], [], None
    deadline = time.perf_counter() + cap_s
    with httpx.Client(base_url=base, headers=headers if qt.auth else {}, timeout=120) as client:
        client.get(qt.urls(0))  # warm the connection
        for i in range(n):
            url = qt.urls(i)
            t0 = time.perf_counter()
            r = client.get(url)
            took = time.perf_counter() - t0
            statuses[r.status_code] += 1
            if r.status_code == 200:
                times.append(took)
                rows.append(_count_rows(r.content))
                size.append(len(r.content))
            elif first_error is None:
                first_error = f"GET {url}: HTTP {r.status_code}: {r.text[:300]}"
            if time.perf_counter() > deadline:
                break
    return {"times": sorted(times), "statuses": statuses, "rows": rows, "bytes": sorted(size)[len(size) // 2] if size
            else 0, "error": first_error}


async def _concurrent(base: str, qt: QueryType, headers: dict, n: int, concurrency: int, cap_s: float) -> dict:
    import aiohttp

    times, statuses = [], Counter()
    counter = [0]
    deadline = time.perf_counter() + cap_s

    async def worker(session) -> None:
        while counter[0] < n and time.perf_counter() < deadline:
            i = counter[0]
            counter[0] += 1
            t0 = time.perf_counter()
            async with session.get(base + qt.urls(i)) as r:
                await r.read()
                statuses[r.status] += 1
                if r.status == 200:
                    times.append(time.perf_counter() - t0)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers if qt.auth else {},
                                     timeout=aiohttp.ClientTimeout(total=300)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {"times": sorted(times), "statuses": statuses, "wall": wall}


def diagnose(db_path: Path, settings, cases: list[tuple[QueryType, dict]]) -> None:
    """Replays each request in-process (create_app on the same database), captures its SQL, times
    every distinct statement again on its own connection and prints the slowest's query plan."""
    import warnings

    from sqlalchemy import event

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's notice about httpx versions
        from starlette.testclient import TestClient

    from siskamling.app import create_app
    from siskamling.core.db import make_engine

    engine = make_engine(settings.database_url)
    captured: list[tuple[str, tuple]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _capture(_conn, _cursor, statement, parameters, _context, _many):
        captured.append((statement, tuple(parameters) if isinstance(parameters, (list, tuple)) else parameters))

    app = create_app(settings, engine)
    raw = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    with TestClient(app) as client:
        for qt, headers in cases:
            url = qt.urls(0)
            client.get(url, headers=headers if qt.auth else {})
            captured.clear()
            t0 = time.perf_counter()
            r = client.get(url, headers=headers if qt.auth else {})
            wall = time.perf_counter() - t0
            stmts = [(s, p) for s, p in captured if not s.lstrip().upper().startswith(("BEGIN", "PRAGMA", "COMMIT",
                                                                                       "ROLLBACK"))]
            seen: dict[str, list] = {}
            for s, p in stmts:
                seen.setdefault(s, []).append(p)
            timed = []
            for s, plist in seen.items():
                t1 = time.perf_counter()
                raw.execute(s, plist[0]).fetchall()
                timed.append((time.perf_counter() - t1, len(plist), s, plist[0]))
            timed.sort(key=lambda x: -x[0] * x[1])
            echo(f"  {qt.group}: {qt.label}  GET {url}")
            echo(f"    in-process: HTTP {r.status_code} in {wall * 1000:.0f} ms; {len(stmts)} SQL statements "
                 f"({len(seen)} distinct)")
            for took, count, s, p in timed[:3]:
                one = " ".join(s.split())
                echo(f"    {count} x {took * 1000:.1f} ms: {one[:400]}{' ...' if len(one) > 400 else ''}")
                echo(f"      params: {str(p)[:200]}")
                for row in raw.execute("EXPLAIN QUERY PLAN " + s, p).fetchall():
                    echo(f"      plan: {row[-1]}")
    raw.close()
    engine.dispose()


def run_queue(n_reports: int, requests: int, concurrency: int, cap_s: float, seed: int, kelurahan: Path | None,
              rw: Path | None, population: Path | None, regenerate: bool, analyze: bool, explain: bool,
              only: str | None, keep: bool) -> None:
    import numpy as np

    from siskamling.accounts import service as accounts
    from siskamling.audit.service import Actor
    from siskamling.cli import prepare_database
    from siskamling.core.db import make_session_factory, session_scope

    _need_bench_extras()
    kel_file, rw_file = _boundary_files(kelurahan, rw)
    pop_file = (population or DEFAULT_POPULATION).resolve()
    if not pop_file.is_file():
        raise click.ClickException(f"no population file at {pop_file}: pass --population PATH")
    _header(f"bench reports queue: {n_reports:,} reports; {requests} sequential requests per query type, then "
            f"{requests} from {concurrency} connections at once (each phase capped at {cap_s:g} s)")
    cache = _cache_file(n_reports, seed, kel_file, rw_file, pop_file)
    if regenerate:
        cache.unlink(missing_ok=True)
    if cache.exists() and cache.with_suffix(".json").exists():
        facts = json.loads(cache.with_suffix(".json").read_text())
        echo(f"  database: cached {cache} ({cache.stat().st_size / 1e9:.2f} GB), generated {facts['generated_at']} "
             f"in {facts['seconds']['total']:g} s")
    else:
        echo(f"  generating {n_reports:,} reports into {cache} ...")
        facts = generate(cache, n_reports, seed, kel_file, rw_file, pop_file)
        s = facts["seconds"]
        echo(f"  generated in {s['total']:g} s (set-up {s['setup']:g}, drawing {s['draw']:g}, inserts {s['insert']:g}, "
             f"indexes {s['indexes']:g}); {cache.stat().st_size / 1e9:.2f} GB")
    echo(f"  {facts['reports']:,} reports ({facts['open']:,} open, {facts['public']:,} public), {facts['steps']:,} "
         f"report_step rows; {facts['kelurahan']} kelurahan, {facts['rw']} RW; population: {facts['population']}")
    kel_code, kel_name, kel_reports, kel_pop = facts["top_kelurahan"][0]
    echo(f"  operator's kelurahan: {kel_name} ({kel_code}), {kel_reports:,} reports, population {kel_pop:,}")

    folder = Path(tempfile.mkdtemp(prefix="siskamling-bench-queue-"))
    failed: list[tuple[QueryType, dict]] = []
    results = []
    try:
        with ExitStack() as stack:
            db_path = folder / "bench.db"
            t0 = time.perf_counter()
            shutil.copyfile(cache, db_path)
            echo(f"  copied to {folder} in {time.perf_counter() - t0:.1f} s")
            secret = secrets.token_urlsafe(48)
            settings = _settings(folder, db_path, secret)
            engine = prepare_database(settings, migrate=False)
            actor = Actor.system("bench")
            with session_scope(make_session_factory(engine)) as db:
                user = accounts.create_user(db_session=db, username="bench.operator", full_name="Operator Benchmark",
                                            password=secrets.token_urlsafe(24), actor=actor)
                accounts.add_grant(db_session=db, username=user.username, role="operator", area_code=kel_code,
                                   actor=actor)
                _row, token = accounts.create_token(db_session=db, user=user, name="bench", actor=actor)
            engine.dispose()
            conn = sqlite3.connect(db_path)
            kel_path = conn.execute("SELECT path FROM area WHERE code = ?", (kel_code,)).fetchone()[0]
            busiest = conn.execute("SELECT area_path, count(*) FROM report WHERE area_path >= ? AND area_path < ? "
                                   "GROUP BY area_path ORDER BY 2 DESC LIMIT 1", (kel_path + "/", kel_path + "0")
                                   ).fetchone()
            rw_code = None
            if busiest:
                rw_code = conn.execute("SELECT code FROM area WHERE path = ?", (busiest[0],)).fetchone()[0]
            if analyze:
                t1 = time.perf_counter()
                conn.execute("ANALYZE")
                conn.commit()
                echo(f"  ANALYZE run on the copy ({time.perf_counter() - t1:.1f} s): the planner has statistics "
                     f"(a deployment has none unless someone runs ANALYZE)")
            conn.close()
            headers = {"Authorization": f"Bearer {token}"}
            now = datetime.fromisoformat(facts["generated_at"])
            types = query_types(kel_code, rw_code, now, np.random.default_rng(seed))
            if only:
                types = [t for t in types if only.lower() in f"{t.group}: {t.label}".lower()]
            server = start_ours(folder, db_path, secret, folder / "serve.log")
            stack.callback(server.stop)
            echo(f"  server: siskamling serve (pid {server.pid}) on {server.base}; operator bench.operator "
                 f"(operator over {kel_code}) with an API token; Open311 reads are public")
            echo("")
            echo(f"  {'query (rows, KB: medians)':<52} {'rows':>5} {'KB':>6} {'seq p50':>8} {'p95':>7} {'':4}  "
                 f"{concurrency}-conc p50 {'p95':>7} {'':4} {'req/s':>6}")
            for qt in types:
                seq = measure_sequential(server.base, qt, headers, requests, cap_s)
                conc = asyncio.run(_concurrent(server.base, qt, headers, requests, concurrency, cap_s))
                s95, c95 = quantile(seq["times"], .95), quantile(conc["times"], .95)
                s_ok = bool(seq["times"]) and s95 <= QUERY_P95_MAX_S and set(seq["statuses"]) == {200}
                c_ok = bool(conc["times"]) and c95 <= QUERY_P95_MAX_S and set(conc["statuses"]) == {200}
                rows = int(np.median(seq["rows"])) if seq["rows"] else 0
                rate = len(conc["times"]) / conc["wall"] if conc["wall"] else 0.0
                name = f"{qt.group}: {qt.label}"
                echo(f"  {name:<52} {rows:>5} {seq['bytes'] / 1024:>6.0f} {_ms(quantile(seq['times'], .5)):>8} "
                     f"{_ms(s95):>7} {_verdict(s_ok):4}  {_ms(quantile(conc['times'], .5)):>11} {_ms(c95):>7} "
                     f"{_verdict(c_ok):4} {rate:>6.1f}")
                if len(seq["times"]) < requests or len(conc["times"]) < requests:
                    echo(f"    (capped: {len(seq['times'])} sequential, {len(conc['times'])} concurrent requests "
                         f"measured)")
                if seq["error"]:
                    echo(f"    error: {seq['error']}; statuses {dict(seq['statuses'])}")
                results.append((qt, s_ok, c_ok))
                if not (s_ok and c_ok) or explain:
                    failed.append((qt, headers))
            server.stop()
            if failed:
                echo("")
                echo("  SQL of the " + ("measured" if explain else "failing") + " query types (replayed in-process; "
                     "each distinct statement re-run alone; the 3 costliest by time x count, with EXPLAIN QUERY PLAN):")
                diagnose(db_path, settings, failed)
    except KeyboardInterrupt:
        echo("interrupted: every process started by the benchmark was stopped")
        sys.exit(130)
    finally:
        if keep:
            echo(f"  kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    echo("")
    s_pass = sum(1 for _, s, _ in results if s)
    c_pass = sum(1 for _, _, c in results if c)
    echo(f"  sequential p95 <= {QUERY_P95_MAX_S * 1000:g} ms: {s_pass} of {len(results)} query types: "
         f"{_verdict(s_pass == len(results))}")
    echo(f"  {concurrency} concurrent p95 <= {QUERY_P95_MAX_S * 1000:g} ms: {c_pass} of {len(results)} query types: "
         f"{_verdict(c_pass == len(results))}")
    load = os.getloadavg()
    echo(f"  load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if s_pass < len(results) or c_pass < len(results):
        sys.exit(1)


# =============================================================================================
# the command
# =============================================================================================


def _path_option(name: str, help_: str):
    return click.option(name, type=click.Path(path_type=Path), default=None, help=help_)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Citizen-report benchmarks: intake throughput and queue latency on SQLite (see the file's docstring)."""


@cli.command()
@click.option("--connections", type=click.IntRange(min=1), default=16, show_default=True,
              help="requests kept in flight")
@click.option("--seconds", type=click.FloatRange(min=1), default=20.0, show_default=True, help="measured window, per side")
@click.option("--warmup", type=click.FloatRange(min=0), default=3.0, show_default=True,
              help="seconds of load before the window")
@_path_option("--kelurahan", f"kelurahan boundaries (default {DEFAULT_KELURAHAN})")
@_path_option("--rw", f"RW boundaries (default {DEFAULT_RW}; 'none' for kelurahan only)")
@click.option("--seed", type=int, default=11, show_default=True)
@click.option("--no-reference", is_flag=True, help="measure ours only")
@click.option("--keep", is_flag=True, help="keep the temporary folder (database, server logs)")
@click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="server processes per side on the one database (one per core, as docs/scale-out.md deploys)")
def intake(connections, seconds, warmup, kelurahan, rw, seed, no_reference, keep, processes) -> None:
    """POST /open311/v2/requests.json: >= 300 committed reports/s, p95 <= 100 ms, beside a bare
    FastAPI endpoint doing one SQLite insert."""
    run_intake(connections, seconds, warmup, kelurahan, rw, seed, keep, no_reference, processes)


@cli.command()
@click.option("--reports", "n_reports", type=click.IntRange(min=1000), default=2_000_000, show_default=True,
              help="reports in the generated database")
@click.option("--requests", type=click.IntRange(min=1), default=200, show_default=True,
              help="requests per query type, sequential and again concurrent")
@click.option("--concurrency", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--max-seconds", "cap_s", type=click.FloatRange(min=1), default=30.0, show_default=True,
              help="stop a phase (one query type, sequential or concurrent) after this long")
@click.option("--seed", type=int, default=7, show_default=True)
@_path_option("--kelurahan", f"kelurahan boundaries (default {DEFAULT_KELURAHAN})")
@_path_option("--rw", f"RW boundaries (default {DEFAULT_RW}; 'none' for kelurahan only)")
@_path_option("--population", f"population per kelurahan (default {DEFAULT_POPULATION})")
@click.option("--regenerate", is_flag=True, help="generate the database again even when cached")
@click.option("--analyze", is_flag=True, help="run ANALYZE on the copy first (planner statistics)")
@click.option("--explain", is_flag=True, help="print the SQL and plans of every query type, not only failing ones")
@click.option("--only", default=None, help="only the query types whose name contains this text")
@click.option("--keep", is_flag=True, help="keep the temporary folder (database copy, server log)")
def queue(n_reports, requests, concurrency, cap_s, seed, kelurahan, rw, population, regenerate, analyze, explain,
          only, keep) -> None:
    """An operator's queue and Open311 GET requests.json with filters, p95 <= 100 ms, on a
    generated database of --reports reports (cached in /tmp/siskamling-bench-reports/)."""
    run_queue(n_reports, requests, concurrency, cap_s, seed, kelurahan, rw, population, regenerate, analyze, explain,
              only, keep)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == REFERENCE_FLAG:
        reference_main(sys.argv[2], sys.argv[3])
    else:
        cli(prog_name="bench_reports.py")
