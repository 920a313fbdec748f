"""Deadline benchmarks (issue 5), on SQLite, printed with their references:

    .venv/bin/python bench/bench_sla.py sweep     # 2,000,000 reports, 200,000 open: one sweep < 2 s
    .venv/bin/python bench/bench_sla.py tkd       # the monthly TKD report for 20,000 officers < 10 s

The database is generated once (cached in /tmp/siskamling-bench-sla/): the project's migrations, a
generated city, then reports, their first-action clocks and (for the clocks due) their history,
inserted with plain SQL. Every measured step runs through Siskamling's own code.

``sweep`` measures the sweep the server runs every minute (the clocks whose reminder or due time
came in the last minute), beside the bare SQL query that selects every overdue open clock; and,
separately, the catch-up after a day of downtime (every clock due in that day, each breach written
to the ledger, the audit log and the operators' alerts).
"""

from __future__ import annotations

import os
import platform
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CACHE = Path(tempfile.gettempdir()) / "siskamling-bench-sla"
SWEEP_TARGET_S = 2.0
TKD_TARGET_S = 10.0
NOW = datetime(2026, 11, 28, 5, 0, tzinfo=UTC)


def echo(text: str = "") -> None:
    click.echo(text)


def header(title: str) -> None:
    load = os.getloadavg()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    echo(title)
    echo(f"  machine: {cpu}, {os.cpu_count()} logical CPU(s), Python {platform.python_version()}, "
         f"SQLite {sqlite3.sqlite_version}")
    echo(f"  date: {datetime.now(UTC).isoformat(timespec='seconds')}; load average "
         f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start")


def _settings(folder: Path, db: Path):
    from siskamling.cli import load_settings
    from siskamling.core.config import Environment

    return load_settings(environment=Environment.development, database_url=f"sqlite:///{db}",
                         media_dir=folder / "media", secret_key="bench-" + "x" * 40, session_cookie_secure=False,
                         tile_url="", run_workers=False)


def generate(path: Path, reports: int, open_: int, officers: int, seed: int) -> None:
    """Reports over two years; ``open_`` of them with a running first-action clock due over the
    next six days (plus a day's worth already due: the downtime scenario), the rest met. Officers
    for the TKD report, each a member of one of 200 units."""
    from siskamling.cli import prepare_database
    from siskamling.core.db import make_session_factory, session_scope
    from siskamling.demo import service as demo

    started = time.perf_counter()
    tmp = path.with_suffix(".partial")
    for p in (tmp, Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
        p.unlink(missing_ok=True)
    settings = _settings(path.parent, tmp)
    engine = prepare_database(settings, migrate=True)
    with session_scope(make_session_factory(engine)) as db:
        demo.import_areas(db, path.parent / "city", None, None)
    engine.dispose()
    rng = random.Random(seed)
    conn = sqlite3.connect(tmp)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    areas = conn.execute("SELECT id, path FROM area WHERE level = 'rt'").fetchall()
    categories = [r[0] for r in conn.execute("SELECT id FROM report_category")]
    units = []
    for u in range(200):
        cur = conn.execute("INSERT INTO report_unit (code, name, kind, active, created_at) VALUES (?, ?, 'kelurahan', 1, ?)",
                           (f"unit-{u}", f"Unit {u}", NOW.replace(tzinfo=None)))
        units.append(cur.lastrowid)
    conn.executemany(
        "INSERT INTO user_account (username, full_name, password_hash, is_active, failed_logins, created_at) "
        "VALUES (?, ?, 'x', 1, 0, ?)", ((f"asn{i:05d}", f"ASN {i:05d}", NOW.replace(tzinfo=None))
                                        for i in range(officers)))
    first_user = conn.execute("SELECT min(id) FROM user_account WHERE username LIKE 'asn%'").fetchone()[0]
    conn.executemany("INSERT INTO report_unit_member (unit_id, user_id, is_head) VALUES (?, ?, ?)",
                     ((units[i % len(units)], first_user + i, i < len(units)) for i in range(officers)))
    span = 2 * 365 * 86400
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    batch = []

    def flush_reports() -> None:
        conn.executemany(
            "INSERT INTO report (id, ticket, category_id, description, attributes, lat, lon, area_id, area_path, status, "
            "unit_id, channel, anonymous, confidential, public, emergency, occurred_at, created_at, updated_at, "
            "first_action_at, reopen_count, support_count, photo_count) VALUES (?, ?, ?, 'bench', '{}', -6.2, 106.8, ?, "
            "?, ?, ?, 'open311', 1, 0, 1, 0, ?, ?, ?, ?, 0, 0, 0)", batch)
        batch.clear()

    deadlines = []
    steps = []
    open_ids = set(rng.sample(range(1, reports + 1), open_))
    day_due = open_ // 6  # due in the day before NOW (the downtime scenario)
    for i in range(1, reports + 1):
        area_id, area_path = areas[i % len(areas)]
        unit = units[i % len(units)]
        if i in open_ids:
            # open: started between 6 days + a day ago and now, so due from a day ago to 6 days on
            created = NOW - timedelta(seconds=rng.uniform(0, 7 * 86400))
            status, acted = "menunggu", None
        else:
            created = NOW - timedelta(seconds=rng.uniform(7 * 86400, span))
            status, acted = "selesai", created + timedelta(hours=rng.uniform(1, 100))
        c = created.replace(tzinfo=None).strftime(fmt)
        batch.append((i, f"LPB{i:09d}", categories[i % len(categories)], area_id, area_path, status, unit, c, c, c,
                      acted.replace(tzinfo=None).strftime(fmt) if acted else None))
        due = created + timedelta(days=6)
        if i in open_ids:
            check = min(created + timedelta(days=3), due) if created + timedelta(days=3) > NOW else due
            deadlines.append((i, "first_action", 1, 6.0, "calendar_days", c, due.replace(tzinfo=None).strftime(fmt),
                              "open", None, 0 if created + timedelta(days=3) > NOW else 1,
                              check.replace(tzinfo=None).strftime(fmt)))
            steps.append((i, c, "filed", "menunggu", unit))
        else:
            deadlines.append((i, "first_action", 1, 6.0, "calendar_days", c, due.replace(tzinfo=None).strftime(fmt),
                              "met", acted.replace(tzinfo=None).strftime(fmt), 0, None))
        if len(batch) >= 50_000:
            flush_reports()
    flush_reports()
    conn.executemany(
        "INSERT INTO sla_deadline (report_id, kind, policy_version, days, mode, started_at, due_at, state, met_at, "
        "reminders_sent, next_check_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", deadlines)
    conn.executemany("INSERT INTO report_step (report_id, at, kind, status_to, unit_to_id, actor_label, by_staff, "
                     "public) VALUES (?, ?, ?, ?, ?, 'bench', 0, 1)", steps)
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    tmp.rename(path)
    echo(f"  generated {reports:,} reports ({open_:,} open, about {day_due:,} due in the day before the sweep), "
         f"{len(steps):,} history steps, {officers:,} officers in 200 units in {time.perf_counter() - started:.0f} s "
         f"({path.stat().st_size / 1e9:.1f} GB, cached in {path.parent})")


def database(reports: int, open_: int, officers: int, seed: int, regenerate: bool) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    from siskamling.core.migrate import head_revision

    path = CACHE / f"sla-{reports}-{open_}-{officers}-{seed}-{head_revision()}.db"
    if regenerate or not path.exists():
        generate(path, reports, open_, officers, seed)
    return path


def working_copy(path: Path) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="siskamling-bench-sla-"))
    target = folder / "bench.db"
    shutil.copy(path, target)
    return target


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Deadline benchmarks: the sweep and the TKD report."""


@main.command()
@click.option("--reports", default=2_000_000, show_default=True)
@click.option("--open", "open_", default=200_000, show_default=True)
@click.option("--seed", default=5, show_default=True)
@click.option("--regenerate", is_flag=True)
def sweep(reports: int, open_: int, seed: int, regenerate: bool) -> None:
    """One sweep, as the server runs it every minute, beside the bare overdue query; then the
    catch-up after a day of downtime."""
    import siskamling.models  # noqa: F401 - every mapper, as the server has them
    from siskamling.core.db import make_engine, make_session_factory
    from siskamling.sla import service as sla

    header(f"bench sla sweep: {reports:,} reports, {open_:,} open")
    source = database(reports, open_, 20_000, seed, regenerate)
    db_path = working_copy(source)
    engine = make_engine(f"sqlite:///{db_path}")
    factory = make_session_factory(engine)
    conn = sqlite3.connect(db_path)
    bare = []
    for _ in range(5):
        t = time.perf_counter()
        n = len(conn.execute("SELECT id FROM sla_deadline WHERE state = 'open' AND due_at <= ?",
                             (NOW.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f"),)).fetchall())
        bare.append(time.perf_counter() - t)
    open_count = conn.execute("SELECT count(*) FROM sla_deadline WHERE state = 'open'").fetchone()[0]
    conn.close()
    echo(f"  bare SQL, every overdue open clock ({n:,} rows of {open_count:,} open): "
         f"{1000 * min(bare):.1f} ms (best of 5)")
    # First, the catch-up: the server was down for the day before NOW.
    t = time.perf_counter()
    result = sla.sweep_in_batches(factory, now=NOW)  # as the server's job runs it: 500 clocks a transaction
    catch_up = time.perf_counter() - t
    echo(f"  catch-up after a day down: {catch_up:.2f} s for {result.checked:,} clocks ({result.breached:,} "
         f"breached at their true time, {result.reminders:,} reminders, {result.met:,} met), committed")
    # Then the steady state: the sweep a minute later, and one every minute for ten minutes.
    times = []
    checked = 0
    for minute in range(1, 11):
        t = time.perf_counter()
        r = sla.sweep_in_batches(factory, now=NOW + timedelta(minutes=minute))
        times.append(time.perf_counter() - t)
        checked += r.checked
    worst = max(times)
    echo(f"  steady state: 10 sweeps a minute apart, {checked:,} clocks handled, slowest {1000 * worst:.1f} ms, "
         f"median {1000 * sorted(times)[5]:.1f} ms")
    ok = worst < SWEEP_TARGET_S
    echo(f"  sweep over {reports:,} reports with {open_:,} open: {1000 * worst:.1f} ms vs bare overdue query "
         f"{1000 * min(bare):.1f} ms; target < {SWEEP_TARGET_S:g} s: {'PASS' if ok else 'FAIL'}")
    echo(f"  catch-up after a day of downtime: {catch_up:.2f} s (no target; "
         f"{1000 * catch_up / max(1, result.checked):.2f} ms per clock)")
    engine.dispose()
    shutil.rmtree(db_path.parent, ignore_errors=True)
    if not ok:
        sys.exit(1)


@main.command()
@click.option("--officers", default=20_000, show_default=True)
@click.option("--breaches", default=60_000, show_default=True, help="ledger entries in the month")
@click.option("--seed", default=5, show_default=True)
@click.option("--regenerate", is_flag=True)
def tkd(officers: int, breaches: int, seed: int, regenerate: bool) -> None:
    """The monthly TKD report for every officer with a breach, in each format."""
    import siskamling.models  # noqa: F401 - every mapper, as the server has them
    from siskamling.core.db import make_engine, make_session_factory
    from siskamling.sla import ledger

    header(f"bench sla tkd: {officers:,} officers, {breaches:,} ledger entries in the month")
    source = database(200_000, 20_000, officers, seed, regenerate)
    db_path = working_copy(source)
    conn = sqlite3.connect(db_path)
    rng = random.Random(seed)
    first_user = conn.execute("SELECT min(id) FROM user_account WHERE username LIKE 'asn%'").fetchone()[0]
    rows = conn.execute("SELECT id, report_id FROM sla_deadline WHERE state = 'met' LIMIT ?", (breaches,)).fetchall()
    month_start = datetime(2026, 10, 31, 17, 0)  # 1 November 00:00 WIB
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    entries = []
    for n, (deadline_id, report_id) in enumerate(rows):
        at = (month_start + timedelta(seconds=rng.uniform(0, 29 * 86400))).strftime(fmt)
        entries.append((deadline_id, report_id, "first_action", first_user + n % officers, 1 + n % 200, 1, at, at, at))
    conn.executemany("INSERT INTO sla_breach (deadline_id, report_id, kind, officer_id, unit_id, policy_version, "
                     "due_at, breached_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", entries)
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()
    engine = make_engine(f"sqlite:///{db_path}")
    factory = make_session_factory(engine)
    with factory() as db:
        t = time.perf_counter()
        report = ledger.tkd_report(db_session=db, month="2026-11")
        build = time.perf_counter() - t
    timings = {}
    for name, fn in (("json", ledger.as_json), ("csv", ledger.as_csv), ("xlsx", ledger.as_xlsx)):
        t = time.perf_counter()
        out = fn(report)
        timings[name] = (time.perf_counter() - t, len(out) if not isinstance(out, dict) else len(str(out)))
    echo(f"  report built: {len(report.lines):,} officers, {sum(x.counted for x in report.lines):,} breaches "
         f"counted, in {build:.2f} s")
    for name, (seconds, size) in timings.items():
        echo(f"  {name}: {build + seconds:.2f} s in all ({seconds:.2f} s to write {size / 1e6:.1f} MB)")
    worst = build + max(s for s, _ in timings.values())
    ok = worst < TKD_TARGET_S
    echo(f"  monthly TKD report for {officers:,} officers, slowest format: {worst:.2f} s; target < "
         f"{TKD_TARGET_S:g} s: {'PASS' if ok else 'FAIL'}")
    engine.dispose()
    shutil.rmtree(db_path.parent, ignore_errors=True)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
