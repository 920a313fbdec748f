"""The `siskamling` command, run as an operator would: real processes for the server commands,
click's runner for the rest. Each test has its own SQLite file (these commands commit)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from siskamling.cli import main
from tests.helpers import kel_feature, square, write_geojson

SECRET = "cli-test-secret-key-long-enough-0123456789"


@pytest.fixture
def env(tmp_path):
    return {"SISKAMLING_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "SISKAMLING_ENVIRONMENT": "development",
            "SISKAMLING_SECRET_KEY": SECRET, "SISKAMLING_MEDIA_DIR": str(tmp_path / "media")}


@pytest.fixture
def run(env):
    runner = CliRunner()

    def _run(*args, input=None):
        return runner.invoke(main, list(args), env=env, input=input, catch_exceptions=False)

    return _run


@pytest.fixture
def city(tmp_path, run):
    path = write_geojson(tmp_path / "kel.geojson", [
        kel_feature("98.71.01.1001", "Satu", square(100.0, -1.0)),
        kel_feature("98.71.01.1002", "Dua", square(100.01, -1.0)),
    ])
    result = run("areas", "import", str(path), "--level", "kelurahan")
    assert result.exit_code == 0, result.output
    return path


def test_import_and_locate(city, run):
    located = run("areas", "locate", "-0.995", "100.005")
    assert located.exit_code == 0
    body = json.loads(located.output)
    assert body["status"] == "inside"
    assert [lv["code"] for lv in body["levels"]] == ["98.71.01.1001", "98.71.01", "98.71", "98"]
    outside = run("areas", "locate", "10", "10")
    assert outside.exit_code == 3 and json.loads(outside.output)["status"] == "outside"


def test_bad_file_names_the_feature_and_imports_nothing(tmp_path, city, run):
    bad = write_geojson(tmp_path / "bad.geojson", [
        kel_feature("98.71.01.1003", "Tiga", square(100.02, -1.0)),
        kel_feature("98.71.01.1004", "Empat", {"type": "Polygon", "coordinates": [[[100, -1], [100.01, -0.99],
                                                                                  [100.01, -1], [100, -0.99], [100, -1]]]}),
    ])
    result = run("areas", "import", str(bad), "--level", "kelurahan")
    assert result.exit_code == 1
    assert "feature #2 (98.71.01.1004): invalid polygon" in result.output
    assert "nothing was imported" in result.output
    assert "Traceback" not in result.output
    assert json.loads(run("areas", "locate", "-0.995", "100.025").output)["status"] == "outside"


def test_rt_added_by_number(city, run, tmp_path):
    rw = write_geojson(tmp_path / "rw.geojson", [{"type": "Feature", "geometry": square(100.0, -1.0, 0.005),
                                                  "properties": {"kode_kel": "98.71.01.1001", "rw_no": 5}}])
    assert run("areas", "import", str(rw), "--level", "rw", "--parent-prop", "kode_kel",
               "--number-prop", "rw_no").exit_code == 0
    added = run("areas", "add", "--level", "rt", "--parent", "98.71.01.1001.005", "--number", "3")
    assert added.exit_code == 0 and "98.71.01.1001.005.003" in added.output
    again = run("areas", "add", "--level", "rt", "--parent", "98.71.01.1001.005", "--number", "3")
    assert again.exit_code == 1 and "already exists" in again.output


def test_users_create_grant_list_revoke(city, run):
    created = run("users", "create", "sari", "--name", "Sari Wulandari", input="kata sandi rahasia\nkata sandi rahasia\n")
    assert created.exit_code == 0, created.output
    # A night duty next year (a fixed date in the past would be refused as already over).
    year = datetime.now(UTC).year + 1
    granted = run("users", "grant", "sari", "satpam", "98.71.01.1001", "--from", f"{year}-12-01T18:00",
                  "--until", f"{year}-12-02T06:00")
    assert granted.exit_code == 0, granted.output
    grant_id = granted.output.split()[1].rstrip(":")
    listed = json.loads(run("users", "list", "--json").output)
    sari = next(u for u in listed if u["username"] == "sari")
    assert sari["grants"][0]["from"] == f"{year}-12-01 18:00 WIB"
    assert sari["grants"][0]["until"] == f"{year}-12-02 06:00 WIB"
    assert run("users", "revoke", grant_id).exit_code == 0
    assert run("users", "revoke", grant_id).exit_code == 1


@pytest.mark.parametrize("args, message", [
    (("users", "grant", "ghost", "satpam", "98.71.01.1001"), "User ghost not found"),
    (("users", "grant", "admin1", "satpam", "98.99"), "Area 98.99 not found"),
    (("users", "grant", "admin1", "sultan", "98.71"), "Unknown role sultan"),
    (("users", "grant", "admin1", "satpam", "98.71", "--until", "besok"), "ISO 8601"),
])
def test_bad_grants_are_clear_errors(city, run, args, message):
    run("users", "create", "admin1", "--name", "A", input="kata sandi rahasia\nkata sandi rahasia\n")
    result = run(*args)
    assert result.exit_code != 0
    assert message in result.output


def test_weak_password_is_refused(city, run):
    result = run("users", "create", "budi", "--name", "Budi", input="budi123\nbudi123\n")
    assert result.exit_code == 1 and "at least 10 characters" in result.output


def test_audit_verify_detects_tampering(city, run, env):
    from sqlalchemy import create_engine, text

    assert "audit chain intact" in run("audit", "verify").output
    engine = create_engine(env["SISKAMLING_DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER audit_event_no_update"))
        conn.execute(text("UPDATE audit_event SET actor_label = 'mallory' WHERE seq = 1"))
    result = run("audit", "verify")
    assert result.exit_code == 1
    assert "BROKEN at seq 1" in result.output


def run_process(args, env, timeout=60):
    full_env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-m", "siskamling", *args], env=full_env, capture_output=True, text=True,
                          timeout=timeout)


def test_port_in_use_is_a_clear_message(tmp_path, env):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_process(["demo", "--port", str(port), "--data-dir", str(tmp_path / "demo")], env)
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_an_old_schema_when_not_allowed_to_migrate(env):
    result = run_process(["serve", "--port", "1"], {**env, "SISKAMLING_MIGRATE_ON_START": "false"})
    assert result.returncode == 1
    assert "run `siskamling migrate`" in result.stderr and "Traceback" not in result.stderr
    migrated = run_process(["migrate"], env)
    assert migrated.returncode == 0 and "database at revision" in migrated.stdout


def test_production_refuses_insecure_settings(env):
    result = run_process(["serve"], {**env, "SISKAMLING_ENVIRONMENT": "production", "SISKAMLING_SECRET_KEY": "short"})
    assert result.returncode == 1
    assert "SISKAMLING_SECRET_KEY must be set" in result.stderr and "Traceback" not in result.stderr


def test_config_file_is_read(tmp_path, env):
    config = tmp_path / "siskamling.toml"
    config.write_text('environment = "development"\nport = 8123\nlogin_max_failures = 3\n')
    from siskamling.core.config import Settings

    os.environ["SISKAMLING_CONFIG"] = str(config)
    try:
        settings = Settings(secret_key=SECRET)
    finally:
        del os.environ["SISKAMLING_CONFIG"]
    assert (settings.port, settings.login_max_failures) == (8123, 3)
    config.write_text('colour = "red"\n')
    os.environ["SISKAMLING_CONFIG"] = str(config)
    try:
        with pytest.raises(ValueError, match="colour"):
            Settings(secret_key=SECRET)
    finally:
        del os.environ["SISKAMLING_CONFIG"]


def test_users_list_in_a_fresh_process(city, env, run):
    """A new process that only lists users must still know every model (no import-order luck)."""
    run("users", "create", "rina", "--name", "Rina", input="kata sandi rahasia\nkata sandi rahasia\n")
    run("users", "grant", "rina", "fkdm", "98.71.01.1001")
    result = run_process(["users", "list"], env)
    assert result.returncode == 0, result.stderr
    assert "rina" in result.stdout and "fkdm" in result.stdout and "98.71.01.1001" in result.stdout


def test_locate_before_any_import_says_so(run):
    result = run("areas", "locate", "-6.1754", "106.8272")
    assert result.exit_code == 1 and "No area boundaries have been imported yet" in result.output


def test_account_recovery_commands(city, run):
    run("users", "create", "tika", "--name", "Tika", input="kata sandi rahasia\nkata sandi rahasia\n")
    assert run("users", "disable", "tika").exit_code == 0
    assert "already disabled" in run("users", "disable", "tika").output
    assert run("users", "enable", "tika").exit_code == 0
    assert run("users", "unlock", "tika").exit_code == 0
    assert run("users", "reset-totp", "tika").exit_code == 0
    changed = run("users", "set-password", "tika", input="kata sandi baru sekali\nkata sandi baru sekali\n")
    assert changed.exit_code == 0 and "sessions ended" in changed.output
    assert run("users", "disable", "ghost").exit_code == 1


def test_audit_verify_prints_a_head_to_check_later(city, run):
    out = run("audit", "verify").output
    head = out.rsplit("head ", 1)[1].strip()
    assert run("audit", "verify", "--expect-head", head).exit_code == 0
    seq = int(head.split(":")[0])
    later = run("audit", "verify", "--expect-head", f"{seq + 5}")
    assert later.exit_code == 1 and "rows were removed" in later.output


def _descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc (children of children included)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _recording(pids: set[int]) -> bool:
    """Whether one of ``pids`` is a recorder's ffmpeg writing segments."""
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"-segment_list" in f.read():
                    return True
        except OSError:
            pass
    return False


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.add(pid)
        except OSError:
            pass
    return alive


@pytest.mark.parametrize(("command", "how"), [("serve", signal.SIGTERM), ("serve", signal.SIGKILL),
                                              ("worker", signal.SIGKILL)])
def test_stopping_serve_or_a_worker_stops_its_recorders(tmp_path, city, run, env, command, how):
    """Stopped or killed outright, ``serve`` takes its worker, the worker's recorder processes and
    their ffmpeg children with it; so does a ``siskamling worker`` killed outright."""
    import time

    from tests.helpers import shared_data

    cameras_csv = tmp_path / "cameras.csv"
    cameras_csv.write_text("code,name,lat,lon,stream_url\n"
                           f"CAM-1,Satu,-0.995,100.005,file://{shared_data() / 'video' / 'one-by-one-person-detection.mp4'}\n")
    assert run("cameras", "import", str(cameras_csv)).exit_code == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # (analytics off: a camera analysed from its main stream is recorded without an ffmpeg child)
    args = ["serve", "--port", str(port)] if command == "serve" else ["worker"]
    proc = subprocess.Popen([sys.executable, "-m", "siskamling", *args],
                            env={**os.environ, **env, "SISKAMLING_ANALYTICS_FPS": "0"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while not _recording(_alive(_descendants(proc.pid))) and time.monotonic() < deadline:
            time.sleep(0.3)
        children = _alive(_descendants(proc.pid))
        assert len(children) >= (3 if command == "serve" else 2) and _recording(children), \
            "serve started a worker, the worker a recorder process, the recorder its ffmpeg"
        os.kill(proc.pid, how)
        proc.wait(30)
        deadline = time.monotonic() + 40
        while _alive(children) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert not _alive(children), f"no worker, recorder or ffmpeg outlives {command}"
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in _alive(children | _descendants(proc.pid)):  # (orphans are no longer below it)
            os.kill(pid, signal.SIGKILL)
