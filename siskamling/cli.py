"""The ``siskamling`` command."""

from __future__ import annotations

import errno
import hashlib
import json
import secrets
import signal
import socket
import sys
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import click
from pydantic import ValidationError

from siskamling.core.config import Environment, Settings


def load_settings(**overrides) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise click.ClickException(f"invalid settings: {problems}") from None
    except ValueError as exc:
        raise click.ClickException(f"invalid settings: {exc}") from None


def prepare_database(settings: Settings, migrate: bool | None = None):
    """An engine whose schema is current: migrated now, or refused with the way out."""
    import siskamling.models  # noqa: F401  (every mapper registered before the first query)
    from siskamling.core import migrate as migrations
    from siskamling.core.db import make_engine

    engine = make_engine(settings.database_url)
    try:
        current = migrations.current_revision(engine)
    except Exception as exc:  # connection failures of every driver
        raise click.ClickException(f"cannot open the database {engine.url.render_as_string()}: {exc}") from None
    head = migrations.head_revision()
    if current != head:
        if migrate if migrate is not None else settings.migrate_on_start:
            migrations.upgrade(engine)
        else:
            raise click.ClickException(
                f"the database schema is at revision {current or 'none'} but this version needs {head}; "
                "run `siskamling migrate` (or set SISKAMLING_MIGRATE_ON_START=true)"
            )
    return engine


@contextmanager
def unit_of_work(settings: Settings):
    """One transaction on a current schema: committed at the end, rolled back on any error. Bad
    input (a domain error, a refused import) becomes a clear message and exit status 1."""
    from siskamling.areas.importer import ImportFailed
    from siskamling.core.db import make_session_factory, session_scope
    from siskamling.core.errors import DomainError

    engine = prepare_database(settings)
    try:
        with session_scope(make_session_factory(engine)) as session:
            yield session
    except (DomainError, ImportFailed) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise click.ClickException(
                    f"port {port} on {host} is already in use by another program: stop it, or choose another "
                    f"port with --port"
                ) from None
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EACCES):
                raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
            raise


def run_server(settings: Settings, engine) -> None:
    import uvicorn

    from siskamling.app import create_app
    from siskamling.cameras.worker import start_worker_process
    from siskamling.core.vendor import missing

    check_port_free(settings.host, settings.port)
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    if missing():
        click.echo(f"warning: front-end libraries missing ({', '.join(missing())}); run ./run setup", err=True)
    app = create_app(settings, engine)
    worker = start_worker_process(settings) if settings.run_workers else None
    # uvicorn re-raises SIGTERM with the handler it found once it has shut down: make that a
    # normal exit, so the camera worker below is stopped too (systemd stops services with SIGTERM).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        _serve(uvicorn, app, settings)
    finally:
        if worker is not None:
            worker.terminate()  # the worker stops its recorders, each closing its segment
            worker.join(30)


def _serve(uvicorn, app, settings: Settings) -> None:
    # Client addresses (audit log, sessions) come from X-Forwarded-For only when the request
    # arrives from a trusted proxy.
    # Video does not compress: per-message deflate would only cost CPU for every viewer.
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", proxy_headers=True,
                forwarded_allow_ips=settings.trusted_proxies, ws_per_message_deflate=False)


@click.group()
@click.version_option(package_name="siskamling")
def main() -> None:
    """Siskamling: area-scoped city CCTV, citizen reports and accountability."""


@main.command()
@click.option("--host", help="address to bind (default from settings: 127.0.0.1)")
@click.option("--port", type=int, help="port to bind (default from settings: 8000)")
def serve(host: str | None, port: int | None) -> None:
    """Run a deployment from settings (SISKAMLING_* variables and/or SISKAMLING_CONFIG file)."""
    settings = load_settings(host=host, port=port)
    engine = prepare_database(settings)
    click.echo(f"Siskamling on http://{settings.host}:{settings.port} ({settings.environment}, "
               f"database {engine.url.render_as_string()})")
    run_server(settings, engine)


@main.command()
@click.option("--capacity", type=int, help="cameras this worker records at most (default from settings)")
def worker(capacity: int | None) -> None:
    """Run a camera worker: claim cameras through the database and record them."""
    from siskamling.cameras.worker import worker_main

    settings = load_settings(worker_capacity=capacity)
    prepare_database(settings)
    worker_main(settings.model_dump_json())


@main.command()
def migrate() -> None:
    """Bring the database schema to the current version."""
    from siskamling.core import migrate as migrations

    settings = load_settings()
    engine = prepare_database(settings, migrate=True)
    click.echo(f"database at revision {migrations.current_revision(engine)}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--areas", "kelurahan", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="real kelurahan boundaries (GeoJSON, Kemendagri codes in kode_kel) instead of the generated city")
@click.option("--rw", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="RW boundaries to import under --areas (rw_no under kode_kel_kemendagri)")
@click.option("--names", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="official code list (CSV kode,nama) naming the parents --areas creates, e.g. the province")
@click.option("--attribution", default="", help="credit for the --areas/--rw data, shown on the maps")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="where the demo keeps its files")
@click.option("--reset", is_flag=True, help="throw away the demo database and generate it again")
def demo(host: str, port: int, kelurahan: Path | None, rw: Path | None, names: Path | None, attribution: str,
         data_dir: Path | None, reset: bool) -> None:
    """Start the web app on an embedded SQLite database loaded with demo data."""
    import shutil

    from siskamling.demo import service as demo_service

    if (rw or names) and not kelurahan:
        raise click.ClickException("--rw and --names need --areas (the kelurahan boundaries)")
    if data_dir is None:
        tag = "" if kelurahan is None else "-" + hashlib.sha256(
            f"{kelurahan.resolve()}|{rw.resolve() if rw else ''}".encode()).hexdigest()[:8]
        data_dir = Path("var") / f"demo{tag}"
    check_port_free(host, port)
    if reset and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    key_file = data_dir / "secret.key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    settings = load_settings(
        environment=Environment.demo, database_url=f"sqlite:///{(data_dir / 'siskamling.db').resolve()}",
        media_dir=data_dir / "media", secret_key=key_file.read_text().strip(), host=host, port=port,
        session_cookie_secure=False, demo_accounts_file=data_dir / "accounts.json", boundary_attribution=attribution,
        worker_capacity=8,
    )
    accounts_file = settings.demo_accounts_file
    engine = prepare_database(settings, migrate=True)
    if not accounts_file.exists():
        from siskamling.core.db import make_session_factory, session_scope

        click.echo(f"Creating the demo in {data_dir} …")
        with session_scope(make_session_factory(engine)) as db:
            demo_service.import_areas(db, data_dir, kelurahan, rw, names)
            created = demo_service.create_accounts(db, settings)
            click.echo("  generating the simulated cameras' video …")
            codes = demo_service.create_cameras(db, settings, data_dir)
            click.echo(f"  {len(codes)} simulated cameras: {', '.join(codes)}")
            key, _secret = demo_service.create_report_desk(db, settings)
            demo_service.create_camera_requests(db, settings)
            click.echo(f"  citizen reports: units, routing and a few reports; city-app/Open311 api key: {key}")
            (data_dir / "api-key.txt").write_text(key + "\n")
            (data_dir / "api-key.txt").chmod(0o600)
        demo_service.save_accounts(accounts_file, created)
    _print_demo(settings, demo_service.load_accounts(accounts_file), data_dir)
    run_server(settings, engine)


def _print_demo(settings: Settings, accounts_, data_dir: Path) -> None:
    click.echo("")
    click.echo(f"  Siskamling demo: http://{settings.host}:{settings.port}")
    click.echo("  Demo accounts (username / password / role @ area):")
    for a in accounts_:
        role = f"{a.role} @ {a.area_code}" if a.role else "warga (no area role)"
        click.echo(f"    {a.username:<10} {a.password:<22} {role}{'  · ' + a.note if a.note else ''}")
        if a.totp_secret:
            click.echo(f"    {'':<10} two-factor key {a.totp_secret} "
                       f"(current code: .venv/bin/siskamling users totp-code {a.username} --data-dir {data_dir})")
    key_file = data_dir / "api-key.txt"
    if key_file.exists():
        click.echo(f"  Report a problem: http://{settings.host}:{settings.port}/lapor · "
                   f"Open311: http://{settings.host}:{settings.port}/open311/discovery.json")
        click.echo(f"  API key of the demo city app (X-Api-Key, Open311 api_key): {key_file.read_text().strip()}")
    click.echo("")


# --- areas -----------------------------------------------------------------------------------


@main.group()
def areas() -> None:
    """Import boundaries and locate points."""


@areas.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--level", required=True, help="provinsi | kota | kecamatan | kelurahan | rw | rt")
@click.option("--code-prop", help="property holding the area's Kemendagri code (e.g. kode_kel)")
@click.option("--name-prop", help="property holding the area's name (e.g. nama_kel)")
@click.option("--parent-prop", help="property holding the parent's code (e.g. kode_kel_kemendagri for RW)")
@click.option("--number-prop", help="RW/RT: property holding the number, combined with --parent-prop into the code")
@click.option("--attr", "attrs", multiple=True, help="property to keep as an area attribute (repeatable)")
@click.option("--ancestor-name", multiple=True, metavar="LEVEL=PROP",
              help="property naming an ancestor created from the codes, e.g. kota=nama_kab (repeatable)")
@click.option("--names", "names_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="official code list (CSV with kode,nama) to name parents and areas")
@click.option("--on-duplicate", type=click.Choice(["error", "merge"]), default="error", show_default=True,
              help="features sharing a code: refuse the file, or merge them as parts of one area")
@click.option("--on-missing-code", type=click.Choice(["error", "skip"]), default="error", show_default=True,
              help="features without a code: refuse the file, or skip them (listed in the summary)")
def areas_import(path: Path, level: str, code_prop, name_prop, parent_prop, number_prop, attrs, ancestor_name,
                 names_file, on_duplicate, on_missing_code) -> None:
    """Import a GeoJSON (or CSV, for RTs without polygons) boundary file. All or nothing."""
    from siskamling.areas import importer
    from siskamling.areas import service as area_service
    from siskamling.audit.service import Actor

    try:
        lvl = importer.parse_level(level)
        ancestor_props = {}
        for item in ancestor_name:
            key, _, prop = item.partition("=")
            if not prop:
                raise click.BadParameter(f"{item!r}: write LEVEL=PROPERTY", param_hint="--ancestor-name")
            ancestor_props[importer.parse_level(key)] = [prop]
        if not (code_prop or number_prop):
            code_prop, name_prop, parent_prop = _default_props(lvl, code_prop, name_prop, parent_prop)
        opts = importer.ImportOptions(
            level=lvl, code_prop=code_prop, name_prop=name_prop, parent_prop=parent_prop, number_prop=number_prop,
            attr_props=list(attrs), ancestor_name_props=ancestor_props,
            names=importer.read_names(names_file) if names_file else {},
            on_duplicate=importer.OnDuplicate(on_duplicate), on_missing_code=importer.OnMissingCode(on_missing_code),
        )
        with unit_of_work(load_settings()) as db:
            report = area_service.import_file(db_session=db, path=path, opts=opts, actor=Actor.system("cli"))
    except importer.ImportFailed as exc:  # bad options, before the database is opened
        raise click.ClickException(str(exc)) from None
    click.echo(report.summary())
    for line in (report.merged + report.skipped)[:20]:
        click.echo(f"  note: {line}")


def _default_props(level, code_prop, name_prop, parent_prop):
    from siskamling.areas.models import Level

    defaults = {
        Level.provinsi: ("kode_prov", "nama_prov", None),
        Level.kota: ("kode_kab", "nama_kab", "kode_prov"),
        Level.kecamatan: ("kode_kec", "nama_kec", "kode_kab"),
        Level.kelurahan: ("kode_kel", "nama_kel", "kode_kec"),
        Level.rw: ("kode_rw", "nama_rw", "kode_kel"),
        Level.rt: ("kode_rt", "nama_rt", "kode_rw"),
    }[level]
    return code_prop or defaults[0], name_prop or defaults[1], parent_prop or defaults[2]


@areas.command("locate", context_settings={"ignore_unknown_options": True})
@click.argument("lat", type=float)
@click.argument("lon", type=float)
def areas_locate(lat: float, lon: float) -> None:
    """Print the areas a point falls in, as JSON (deepest first)."""
    from siskamling.areas import service as area_service

    settings = load_settings()
    with unit_of_work(settings) as db:
        location = area_service.locate(db_session=db, lat=lat, lon=lon,
                                       edge_tolerance_m=settings.locate_edge_tolerance_m)
    click.echo(json.dumps(location.as_dict(), ensure_ascii=False, indent=2))
    if location.status == "outside":
        sys.exit(3)


@areas.command("add")
@click.option("--level", type=click.Choice(["rw", "rt"]), required=True)
@click.option("--parent", "parent_code", required=True, help="code of the kelurahan (for RW) or RW (for RT)")
@click.option("--number", type=int, required=True)
@click.option("--name")
def areas_add(level: str, parent_code: str, number: int, name: str | None) -> None:
    """Create one RW or RT by number, without a polygon."""
    from siskamling.areas import service as area_service
    from siskamling.areas.models import Level
    from siskamling.audit.service import Actor

    with unit_of_work(load_settings()) as db:
        area = area_service.add_area(db_session=db, level=Level(level), parent_code=parent_code, number=number,
                                     name=name, actor=Actor.system("cli"))
        click.echo(f"created {area.level} {area.code} ({area.name})")


# --- users -----------------------------------------------------------------------------------


@main.group()
def users() -> None:
    """Create users, grant and revoke roles."""


def _parse_time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    from siskamling.core.time import WIB

    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("use ISO 8601, e.g. 2026-12-01T18:00 (WIB if no offset)", param_hint=name) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=WIB)


@users.command("create")
@click.argument("username")
@click.option("--name", "full_name", required=True, help="full name")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--email")
@click.option("--phone")
@click.option("--unit", help="work unit, e.g. 'Satpol PP Jakarta Pusat'")
def users_create(username, full_name, password, email, phone, unit) -> None:
    """Create a user (roles come from grants)."""
    from siskamling.accounts import service as accounts
    from siskamling.audit.service import Actor

    with unit_of_work(load_settings()) as db:
        user = accounts.create_user(db_session=db, username=username, full_name=full_name, password=password,
                                    email=email, phone=phone, unit=unit, actor=Actor.system("cli"))
        click.echo(f"created user {user.username}")


@users.command("grant")
@click.argument("username")
@click.argument("role")
@click.argument("area_code")
@click.option("--from", "starts", help="start of the grant (ISO time, WIB if no offset)")
@click.option("--until", "ends", help="end of the grant, e.g. the end of a satpam's duty")
def users_grant(username, role, area_code, starts, ends) -> None:
    """Give USERNAME the ROLE over AREA_CODE and everything below it."""
    from siskamling.accounts import service as accounts
    from siskamling.audit.service import Actor

    with unit_of_work(load_settings()) as db:
        grant = accounts.add_grant(db_session=db, username=username, role=role, area_code=area_code,
                                   starts_at=_parse_time(starts, "--from"), ends_at=_parse_time(ends, "--until"),
                                   actor=Actor.system("cli"))
        click.echo(f"grant {grant.id}: {username} is {role} over {area_code}")


@users.command("revoke")
@click.argument("grant_id", type=int)
def users_revoke(grant_id: int) -> None:
    """Revoke a grant (see `users list` for ids)."""
    from siskamling.accounts import service as accounts
    from siskamling.audit.service import Actor

    with unit_of_work(load_settings()) as db:
        accounts.revoke_grant(db_session=db, grant_id=grant_id, actor=Actor.system("cli"))
        click.echo(f"grant {grant_id} revoked")


def _user_action(username: str, action) -> None:
    from siskamling.accounts import service as accounts
    from siskamling.audit.service import Actor

    with unit_of_work(load_settings()) as db:
        user = accounts.get_user(db_session=db, username=username)
        if user is None:
            raise click.ClickException(f"user {username} not found")
        action(accounts, db, user, Actor.system("cli"))


@users.command("set-password")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def users_set_password(username: str, password: str) -> None:
    """Set a new password (ends the user's sessions and clears a lockout)."""
    _user_action(username, lambda a, db, u, actor: a.set_password(db_session=db, user=u, password=password, actor=actor))
    click.echo(f"password of {username} changed; their sessions ended")


@users.command("disable")
@click.argument("username")
def users_disable(username: str) -> None:
    """Disable an account now: sessions end, API tokens stop working."""
    _user_action(username, lambda a, db, u, actor: a.set_active(db_session=db, user=u, active=False, actor=actor))
    click.echo(f"{username} disabled")


@users.command("enable")
@click.argument("username")
def users_enable(username: str) -> None:
    """Enable a disabled account again."""
    _user_action(username, lambda a, db, u, actor: a.set_active(db_session=db, user=u, active=True, actor=actor))
    click.echo(f"{username} enabled")


@users.command("unlock")
@click.argument("username")
def users_unlock(username: str) -> None:
    """Lift a lockout after failed logins."""
    _user_action(username, lambda a, db, u, actor: a.unlock(db_session=db, user=u, actor=actor))
    click.echo(f"{username} unlocked")


@users.command("reset-totp")
@click.argument("username")
def users_reset_totp(username: str) -> None:
    """Forget the user's two-factor key (lost phone); they enrol a new one at their next login."""
    _user_action(username, lambda a, db, u, actor: a.reset_totp(db_session=db, user=u, actor=actor))
    click.echo(f"two-factor key of {username} removed; they set up a new one at their next login")


@users.command("list")
@click.option("--json", "as_json", is_flag=True)
def users_list(as_json: bool) -> None:
    """List users with their grants."""
    from siskamling.accounts import service as accounts
    from siskamling.core.time import format_wib, utcnow

    now = utcnow()
    with unit_of_work(load_settings()) as db:
        rows = []
        for u in accounts.list_all_users(db_session=db):
            grants = [{"id": g.id, "role": g.role, "area": g.area.code, "active": g.is_active(now),
                       "scheduled": g.starts_at is not None and g.starts_at > now and g.revoked_at is None,
                       "from": format_wib(g.starts_at), "until": format_wib(g.ends_at),
                       "revoked": g.revoked_at is not None} for g in u.grants]
            rows.append({"username": u.username, "name": u.full_name, "active": u.is_active,
                         "totp": u.totp_enabled_at is not None, "grants": grants})
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    for r in rows:
        click.echo(f"{r['username']:<16} {r['name']}{'' if r['active'] else '  (disabled)'}")
        for g in r["grants"]:
            state = ("revoked" if g["revoked"] else "active" if g["active"] else
                     "scheduled" if g["scheduled"] else "ended")
            window = f" {g['from'] or '…'} → {g['until'] or '…'}" if g["from"] or g["until"] else ""
            click.echo(f"    #{g['id']:<5} {g['role']:<9} {g['area']:<24} {state}{window}")


@users.command("totp-code")
@click.argument("username")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("var/demo"),
              show_default=True)
def users_totp_code(username: str, data_dir: Path) -> None:
    """Demo only: print a demo account's current two-factor code."""
    from siskamling.accounts import service as accounts

    db_file, key_file = data_dir / "siskamling.db", data_dir / "secret.key"
    if not (data_dir / "accounts.json").exists() or not key_file.exists():
        raise click.ClickException(f"{data_dir} is not a demo folder: this command works on demo data only")
    settings = load_settings(environment=Environment.demo, database_url=f"sqlite:///{db_file.resolve()}",
                             secret_key=key_file.read_text().strip(), session_cookie_secure=False)
    with unit_of_work(settings) as db:
        user = accounts.get_user(db_session=db, username=username)
        if user is None or not user.totp_secret_enc:
            raise click.ClickException(f"{username} has no two-factor key")
        click.echo(accounts.current_totp(settings=settings, user=user))


# --- cameras ---------------------------------------------------------------------------------


@main.group()
def cameras() -> None:
    """Register cameras and see how they are shared."""


@cameras.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def cameras_import(path: Path) -> None:
    """Register or update cameras from CSV or GeoJSON points. All or nothing.

    Columns/properties: code, name, lat, lon (or a Point geometry), site_type, owner, stream_url,
    substream_url, username, password, retention_days, share_level, share_neighbours,
    live_roles and recording_roles (roles separated by ';')."""
    from siskamling.audit.service import Actor
    from siskamling.cameras import service as camera_service

    settings = load_settings()
    with unit_of_work(settings) as db:
        created, updated = camera_service.import_file(db_session=db, path=path, actor=Actor.system("cli"),
                                                      settings=settings)
    click.echo(f"{created} camera(s) registered, {updated} updated")


@cameras.command("list")
def cameras_list() -> None:
    """List cameras with their area and sharing rule (never their credentials)."""
    from siskamling.cameras import service as camera_service

    with unit_of_work(load_settings()) as db:
        for c in camera_service.list_all(db_session=db):
            neighbours = " + neighbours" if c.share_neighbours else ""
            click.echo(f"{c.code:<16} {c.area.code:<24} {c.site_type:<15} shared: {c.share_level}{neighbours}"
                       f"  live: {','.join(c.live_roles) or '-'}  recordings: {','.join(c.recording_roles) or '-'}"
                       f"  {c.name}")


# --- citizen reports -------------------------------------------------------------------------


@main.group()
def reports() -> None:
    """Citizen reports: import history, the catalogue, units, routing and intake clients."""


@reports.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def reports_import(path: Path) -> None:
    """Load historical reports (CSV or JSON lines) with their timestamps, status history and
    positions. All or nothing: bad rows are listed by line number."""
    from siskamling.audit.service import Actor
    from siskamling.reports import importer

    settings = load_settings()
    with unit_of_work(settings) as db:
        count = importer.import_file(db_session=db, path=path, actor=Actor.system("cli"), settings=settings)
    click.echo(f"{count} report(s) imported")


@reports.group("categories")
def reports_categories() -> None:
    """Report categories (Open311 services) and their questions."""


@reports_categories.command("list")
def reports_categories_list() -> None:
    from siskamling.reports import catalogue

    with unit_of_work(load_settings()) as db:
        for c in catalogue.categories(db_session=db, active_only=False):
            flags = ("emergency " if c.emergency else "") + ("" if c.active else "inactive")
            questions = ",".join(a["code"] for a in c.attributes) or "-"
            unit = c.default_unit.code if c.default_unit else "-"
            click.echo(f"{c.code:<16} {c.group:<12} default unit: {unit:<16} questions: {questions:<24} "
                       f"{flags}{c.name_id}")


@reports_categories.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def reports_categories_import(path: Path) -> None:
    """Create or change categories from a JSON list of {code, name_id, name_en, group, emergency,
    active, default_unit, attributes: [{code, datatype, required, description, values}]}."""
    import json

    from siskamling.audit.service import Actor
    from siskamling.reports import catalogue

    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"{path.name} is not valid JSON: {exc}") from None
    if not isinstance(items, list):
        raise click.ClickException(f"{path.name} must hold a JSON list of categories")
    with unit_of_work(load_settings()) as db:
        for item in items:
            catalogue.save_category(db_session=db, data=item, actor=Actor.system("cli"))
    click.echo(f"{len(items)} categor{'y' if len(items) == 1 else 'ies'} saved")


@reports.group("units")
def reports_units() -> None:
    """Units that act on reports (kelurahan offices, Satpol PP, Dinas SDA…) and their officers."""


@reports_units.command("add")
@click.argument("code")
@click.argument("name")
@click.option("--kind", default="kelurahan", show_default=True, help="kelurahan, satpol, dinas, …")
@click.option("--area", "area_code", help="the unit's jurisdiction (an area code); default the whole city")
def reports_units_add(code: str, name: str, kind: str, area_code: str | None) -> None:
    from siskamling.areas import service as area_service
    from siskamling.audit.service import Actor
    from siskamling.reports import catalogue

    with unit_of_work(load_settings()) as db:
        path = None
        if area_code:
            area = area_service.get_by_code(db_session=db, code=area_code)
            if area is None:
                raise click.ClickException(f"area {area_code} not found")
            path = area.path
        catalogue.save_unit(db_session=db, code=code, name=name, kind=kind, area_path=path, actor=Actor.system("cli"))
    click.echo(f"unit {code} saved")


@reports_units.command("member")
@click.argument("unit_code")
@click.argument("username")
@click.option("--head", is_flag=True, help="the unit's head: assigns and hands over its reports")
def reports_units_member(unit_code: str, username: str, head: bool) -> None:
    from siskamling.accounts import service as account_service
    from siskamling.audit.service import Actor
    from siskamling.reports import catalogue

    with unit_of_work(load_settings()) as db:
        user = account_service.get_user(db_session=db, username=username)
        if user is None:
            raise click.ClickException(f"user {username} not found")
        unit = catalogue.unit(db_session=db, code=unit_code)
        catalogue.add_member(db_session=db, unit_row=unit, user_id=user.id, is_head=head, actor=Actor.system("cli"))
    click.echo(f"{username} is {'head' if head else 'an officer'} of {unit_code}")


@reports.command("route")
@click.argument("category")
@click.argument("area_code")
@click.argument("unit_code")
def reports_route(category: str, area_code: str, unit_code: str) -> None:
    """Reports of CATEGORY ('*' for any) inside AREA_CODE go to UNIT_CODE (the deepest rule wins)."""
    from siskamling.areas import service as area_service
    from siskamling.audit.service import Actor
    from siskamling.reports import catalogue

    with unit_of_work(load_settings()) as db:
        area = area_service.get_by_code(db_session=db, code=area_code)
        if area is None:
            raise click.ClickException(f"area {area_code} not found")
        row = None if category == "*" else catalogue.category(db_session=db, code=category, active_only=False)
        catalogue.set_rule(db_session=db, category_row=row, area_path=area.path,
                           unit_row=catalogue.unit(db_session=db, code=unit_code), actor=Actor.system("cli"))
    click.echo(f"{category} reports in {area_code} go to {unit_code}")


@reports.group("clients")
def reports_clients() -> None:
    """Applications that push reports in: Open311 clients (api_key) and the city app (X-Api-Key)."""


@reports_clients.command("add")
@click.argument("name")
@click.option("--webhook", help="URL that receives signed status changes of the reports this client sends")
def reports_clients_add(name: str, webhook: str | None) -> None:
    """Prints the client's key (and webhook secret) once: store them now."""
    from siskamling.audit.service import Actor
    from siskamling.reports import channels

    settings = load_settings()
    with unit_of_work(settings) as db:
        _client, key, secret = channels.create_client(db_session=db, settings=settings, name=name,
                                                      webhook_url=webhook, actor=Actor.system("cli"))
    click.echo(f"api key: {key}")
    if secret:
        click.echo(f"webhook secret: {secret}")
    click.echo("shown once; only a hash of the key is stored")


@reports_clients.command("list")
def reports_clients_list() -> None:
    from siskamling.reports import channels

    with unit_of_work(load_settings()) as db:
        for c in channels.clients(db_session=db):
            state = "active" if c.active else "disabled"
            used = c.last_used_at.isoformat(timespec="seconds") if c.last_used_at else "never"
            click.echo(f"{c.name:<24} {c.key_prefix}…  {state:<8} last used {used}  webhook {c.webhook_url or '-'}")



# --- evidence --------------------------------------------------------------------------------


@main.group()
def evidence() -> None:
    """Check evidence exports."""


@evidence.command("verify")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--any-key", is_flag=True, help="accept a valid signature by another deployment's key")
def evidence_verify(folder: Path, any_key: bool) -> None:
    """Check an export folder: the manifest's signature, and the video's SHA-256."""
    from siskamling.cameras import playback

    expected = None
    if not any_key:
        expected = playback.public_key_text(playback.signing_key(load_settings().secret_key))
    verdict = playback.verify_export(folder, expected)
    if verdict.ok:
        click.echo(f"export intact: signature valid (key {verdict.public_key}), video matches its SHA-256")
        return
    for problem in verdict.problems:
        click.echo(f"export NOT valid: {problem}", err=True)
    sys.exit(1)


# --- deadlines -------------------------------------------------------------------------------


@main.group()
def sla() -> None:
    """Deadlines on citizen reports (the six-day rule)."""


@sla.command("sweep")
@click.option("--at", "at", help="judge as of this time (ISO 8601 with zone; default: now)")
def sla_sweep(at: str | None) -> None:
    """Judge every open deadline whose time has come: met, breached (at the time it really passed),
    reminded. The server runs this every minute; running it again changes nothing."""
    from datetime import datetime

    from siskamling.audit.service import Actor
    from siskamling.sla import service as deadlines

    now = None
    if at:
        try:
            now = datetime.fromisoformat(at)
        except ValueError:
            raise click.BadParameter("give a time like 2026-12-01T08:00:00+07:00", param_hint="--at") from None
        if now.tzinfo is None:
            raise click.BadParameter("the time needs a zone, e.g. +07:00", param_hint="--at")
    from siskamling.core.db import make_session_factory

    settings = load_settings()
    engine = prepare_database(settings)
    try:
        result = deadlines.sweep_in_batches(make_session_factory(engine), now=now, actor=Actor.system("cli"),
                                            settings=settings)
    finally:
        engine.dispose()
    click.echo(f"checked {result.checked}: {result.met} met, {result.breached} breached, "
               f"{result.reminders} reminder(s) sent, {result.moved} moved")


@main.group()
def tkd() -> None:
    """Performance allowance (TKD) deductions from the breach ledger."""


@tkd.command("report")
@click.option("--month", help="YYYY-MM (Asia/Jakarta); default: last month")
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv", "json"]), default="xlsx", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="file to write (default: tkd-YYYY-MM.FORMAT here; '-' for standard output, csv/json only)")
def tkd_report(month: str | None, fmt: str, output: Path | None) -> None:
    """Per officer: the month's breaches that count and the deduction the current rule computes,
    with the policy and rule versions printed on the report."""
    import json as jsonlib

    from siskamling.sla import ledger

    settings = load_settings()
    month = month or ledger.previous_month()
    with unit_of_work(settings) as db:  # a bad --month becomes a clear message and exit status 1
        report = ledger.tkd_report(db_session=db, month=month)
    if fmt == "xlsx":
        data = ledger.as_xlsx(report)
    elif fmt == "csv":
        data = ledger.as_csv(report).encode()
    else:
        data = (jsonlib.dumps(ledger.as_json(report), ensure_ascii=False, indent=2) + "\n").encode()
    if str(output) == "-":
        if fmt == "xlsx":
            raise click.BadParameter("an XLSX file cannot go to standard output", param_hint="--output")
        sys.stdout.buffer.write(data)
        return
    target = output or Path(f"tkd-{month}.{fmt}")
    target.write_bytes(data)
    click.echo(f"{target}: {len(report.lines)} officer(s), {sum(x.counted for x in report.lines)} breach(es) counted "
               f"({ledger.rule_text(report)})")


# --- incidents, camera requests and placement plans ------------------------------------------------


@main.group()
def incidents() -> None:
    """Incident logs from other agencies (fire brigade, BPBD): demand for the placement planner."""


@incidents.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", required=True, help="whose log it is, e.g. damkar (re-importing skips rows already loaded)")
@click.option("--skip-unplaced", is_flag=True, help="leave out (and list) rows with neither a position nor a kelurahan")
def incidents_import(path: Path, source: str, skip_unplaced: bool) -> None:
    """Load an incident log (CSV: lat/lon, or kelurahan code and RW as the fire brigade's log
    has). All or nothing: bad rows are listed by line number."""
    from siskamling.audit.service import Actor
    from siskamling.placement import demand

    settings = load_settings()
    with unit_of_work(settings) as db:
        done = demand.import_incidents(db_session=db, path=path, source=source, actor=Actor.system("cli"),
                                       edge_tolerance_m=settings.locate_edge_tolerance_m, skip_unplaced=skip_unplaced)
    click.echo(f"{done.count} incident(s) imported from {source}")
    if done.unplaced:
        lines = ", ".join(map(str, done.unplaced[:20])) + (" …" if len(done.unplaced) > 20 else "")
        click.echo(f"{len(done.unplaced)} row(s) without a position or kelurahan left out: line {lines}")


@areas.command("population")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--code-column", default="kode_kemendagri", show_default=True)
@click.option("--value-column", default="total", show_default=True)
def areas_population(path: Path, code_column: str, value_column: str) -> None:
    """Set each kelurahan's population from a CSV (the camera request score's population part)."""
    from siskamling.placement import demand

    with unit_of_work(load_settings()) as db:
        count = demand.import_population(db_session=db, path=path, code_column=code_column, value_column=value_column)
    click.echo(f"population set for {count} kelurahan")


@main.group()
def plan() -> None:
    """Camera placement plans: choose the sites that cover the most need within a budget."""


@plan.command("run")
@click.option("--name", required=True)
@click.option("--count", type=int, help="number of cameras (or give --budget)")
@click.option("--budget", type=float, help="budget in Rupiah (costs: --unit-cost, SISKAMLING_PLACEMENT_SITE_COSTS)")
@click.option("--unit-cost", type=float, help="cost of one camera site in Rupiah (default: the setting)")
@click.option("--area", "area_code", help="plan inside this area (a Kemendagri code); default: the whole city")
@click.option("--radius", type=float, help="coverage radius in metres (default: the setting)")
@click.option("--since", help="demand from this date (YYYY-MM-DD); default: 12 months ago")
@click.option("--until", help="demand until this date (YYYY-MM-DD, not included); default: tomorrow")
@click.option("--no-requests", is_flag=True, help="leave the open camera requests out of the candidates")
@click.option("--no-generated", is_flag=True, help="only the open camera requests are candidates")
@click.option("--method", type=click.Choice(["auto", "mip", "greedy"]), default="auto", show_default=True)
@click.option("--time-limit", type=float, help="seconds (default: the setting)")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="also export the plan (.csv or .xlsx)")
def plan_run(name, count, budget, unit_cost, area_code, radius, since, until, no_requests, no_generated, method,
             time_limit, output) -> None:
    """Make and save a plan; prints its value, the proven bound and the optimality gap."""
    from siskamling.audit.service import Actor
    from siskamling.placement import plans

    if (count is None) == (budget is None):
        raise click.BadParameter("give either --count or --budget")
    settings = load_settings()
    inputs = plans.PlanInputs(name=name, mode="count" if count is not None else "budget", count=count, budget=budget,
                              area_code=area_code, radius_m=radius, since=since, until=until,
                              include_requests=not no_requests, include_generated=not no_generated,
                              unit_cost=unit_cost, method=method, time_limit=time_limit)
    with unit_of_work(settings) as db:
        made = plans.make_plan(db_session=db, settings=settings, inputs=inputs, actor=Actor.system("cli"))
        if output is not None:
            output.write_bytes(plans.export_xlsx(db, made) if output.suffix.lower() == ".xlsx"
                               else plans.export_csv(db, made))
        click.echo(f"plan {made.id}: {len(made.sites)} site(s), Rp {made.cost:,.0f}; demand covered "
                   f"{made.value:.1f} of {made.total_weight:.1f} ({100 * made.value / max(made.total_weight, 1e-9):.1f} %), "
                   f"bound {made.bound:.1f}, gap {100 * made.gap:.2f} % ({made.method}, {made.status}, {made.seconds:.1f} s)")


@plan.command("export")
@click.argument("plan_id", type=int)
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path), help=".csv or .xlsx")
def plan_export(plan_id: int, output: Path) -> None:
    """Export a saved plan for the budget document."""
    from siskamling.placement import plans

    with unit_of_work(load_settings()) as db:
        made = plans.get(db_session=db, plan_id=plan_id)
        output.write_bytes(plans.export_xlsx(db, made) if output.suffix.lower() == ".xlsx" else plans.export_csv(db, made))
    click.echo(f"{output}: plan {plan_id}, {len(made.sites)} site(s)")


# --- audit -----------------------------------------------------------------------------------


@main.group()
def audit() -> None:
    """Verify the audit log's hash chain."""


@audit.command("verify")
@click.option("--expect-head", metavar="SEQ[:HASH]",
              help="head recorded by an earlier run (kept outside this database): detects a cut-off tail")
def audit_verify(expect_head: str | None) -> None:
    """Check the hash chain; names the first tampered row and prints the head to record elsewhere."""
    from siskamling.audit import service as audit_service

    with unit_of_work(load_settings()) as db:
        result = audit_service.verify_chain(db_session=db)
        if result.ok and expect_head:
            seq, _, digest = expect_head.partition(":")
            if not seq.isdigit():
                raise click.BadParameter("write SEQ or SEQ:HASH, as printed by an earlier run", param_hint="--expect-head")
            result = audit_service.check_head(db_session=db, result=result, seq=int(seq), digest=digest or None)
    if result.ok:
        click.echo(f"audit chain intact: {result.checked} event(s) verified; head {result.head_seq}:{result.head_hash}")
        return
    click.echo(f"audit chain BROKEN at seq {result.first_bad_seq}: {result.reason} "
               f"({result.checked} event(s) before it verified)", err=True)
    sys.exit(1)


from siskamling.bench import bench  # noqa: E402

main.add_command(bench)


if __name__ == "__main__":
    main()
