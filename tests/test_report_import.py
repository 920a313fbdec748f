"""Importing historical reports from an existing system: timestamps, status history and positions
survive; a single bad row names its line and nothing is kept. The CLI runs as an operator would."""

from __future__ import annotations

import csv
import json

import pytest
from sqlalchemy import func, select

from siskamling.core.errors import Invalid
from siskamling.reports import importer
from siskamling.reports.models import Report, Status, Step
from tests.test_cli import city, env, run  # noqa: F401 - fixtures of a CLI database with two kelurahan
from tests.test_reports import ACTOR, RT, centre


def history_row(db, **kw):
    lat, lon = centre(db, RT)
    return {"ticket": "JAKI-2024-0001", "category": "banjir", "description": "Air masuk rumah warga RT 1",
            "lat": lat, "lon": lon, "created_at": "2024-02-03T07:15:00+07:00", "attributes": {"tinggi_air_cm": 50},
            "history": [{"at": "2024-02-03T09:00:00+07:00", "status": "koordinasi", "by": "op.sukamaju"},
                        {"at": "2024-02-04T10:00:00+07:00", "status": "proses", "unit": "dinas-sda",
                         "note": "Dialihkan ke SDA"},
                        {"at": "2024-02-06T16:30:00+07:00", "status": "selesai", "note": "Pompa air dinyalakan"}]} | kw


def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_history_keeps_its_timestamps_hops_and_positions(db, settings, desk, tmp_path):
    path = write_jsonl(tmp_path / "old.jsonl", [history_row(db)])
    assert importer.import_file(db_session=db, path=path, actor=ACTOR, settings=settings) == 1
    report = db.scalar(select(Report).where(Report.ticket == "JAKI-2024-0001"))
    assert report.status == Status.selesai and report.channel == "import"
    assert report.area.code == RT and report.unit.code == "dinas-sda", "the last hop's unit holds it"
    assert report.created_at.isoformat() == "2024-02-03T00:15:00+00:00"
    assert report.first_action_at.isoformat() == "2024-02-03T02:00:00+00:00"
    assert report.resolved_at.isoformat() == "2024-02-06T09:30:00+00:00" and report.closed_at == report.resolved_at
    steps = db.scalars(select(Step).where(Step.report_id == report.id).order_by(Step.at)).all()
    assert [(s.kind, s.status_to) for s in steps] == [("filed", "menunggu"), ("status", "koordinasi"),
                                                      ("handover", "proses"), ("status", "selesai")]
    assert steps[1].actor_label == "op.sukamaju"


@pytest.mark.parametrize("change, message", [
    ({"category": "gempa"}, "unknown category gempa"),
    ({"created_at": "2024-02-03 07:15"}, "needs a UTC offset"),
    ({"lat": 10.0, "lon": 10.0}, "outside the service area"),
    ({"status": "proses"}, "differs from the last status"),
    ({"history": [{"at": "2024-02-02T00:00:00+07:00", "status": "proses"}]}, "earlier than the one before"),
    ({"history": [{"at": "2024-02-04T00:00:00+07:00", "status": "beres"}]}, "unknown status beres"),
    ({"attributes": {}}, "tinggi_air_cm is required"),
])
def test_one_bad_row_names_its_line_and_nothing_is_kept(db, settings, desk, tmp_path, change, message):
    good = history_row(db, ticket="OK-1")
    path = write_jsonl(tmp_path / "old.jsonl", [good, history_row(db, ticket="BAD-2") | change])
    before = db.scalar(select(func.count()).select_from(Report))
    with pytest.raises(Invalid) as err:
        importer.import_file(db_session=db, path=path, actor=ACTOR, settings=settings)
    assert "line 2" in str(err.value) and message in str(err.value)
    assert db.scalar(select(func.count()).select_from(Report)) == before


def test_csv_with_history_as_json_text(db, settings, desk, tmp_path):
    row = history_row(db)
    row["attributes"], row["history"] = json.dumps(row["attributes"]), json.dumps(row["history"])
    path = tmp_path / "old.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
        writer.writerow(row | {"ticket": ""})  # no ticket: one is made up from its date
    assert importer.import_file(db_session=db, path=path, actor=ACTOR, settings=settings) == 2
    made = db.scalar(select(Report.ticket).where(Report.channel == "import", Report.ticket != "JAKI-2024-0001"))
    assert made.startswith("LP240203")


def test_duplicate_ticket_is_refused(db, settings, desk, tmp_path):
    path = write_jsonl(tmp_path / "old.jsonl", [history_row(db), history_row(db)])
    with pytest.raises(Invalid, match="line 2: ticket JAKI-2024-0001 appears twice"):
        importer.import_file(db_session=db, path=path, actor=ACTOR, settings=settings)


def test_cli_import_and_catalogue_commands(city, run, tmp_path):  # noqa: F811
    assert run("reports", "units", "add", "kel-satu", "Kantor Kelurahan Satu", "--area", "98.71.01.1001").exit_code == 0
    assert run("reports", "route", "*", "98.71.01.1001", "kel-satu").exit_code == 0
    added = run("reports", "clients", "add", "JAKI", "--webhook", "https://jaki.example/hook")
    assert added.exit_code == 0 and "api key: sk_app_" in added.output and "webhook secret: whsec_" in added.output
    assert "JAKI" in run("reports", "clients", "list").output
    rows = [{"category": "sampah", "description": "Sampah di pinggir kali", "lat": -0.995, "lon": 100.005,
             "created_at": "2023-05-01T08:00:00+07:00", "status": "menunggu"}]
    ok = run("reports", "import", str(write_jsonl(tmp_path / "a.jsonl", rows)))
    assert ok.exit_code == 0 and "1 report(s) imported" in ok.output
    bad = run("reports", "import", str(write_jsonl(tmp_path / "b.jsonl", rows + [rows[0] | {"lat": "x"}])))
    assert bad.exit_code == 1 and "line 2" in bad.output and "lat and lon must be numbers" in bad.output
    listing = run("reports", "categories", "list")
    assert "kebakaran" in listing.output and "emergency" in listing.output


def test_cli_refuses_a_file_of_another_kind(run, tmp_path, city):  # noqa: F811
    path = tmp_path / "old.xlsx"
    path.write_bytes(b"PK\x03\x04")
    result = run("reports", "import", str(path))
    assert result.exit_code == 1 and ".csv or .jsonl" in result.output
