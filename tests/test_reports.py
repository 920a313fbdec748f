"""Citizen reports: intake, routing by place and category, the JAKI workflow, handovers, merges,
the reporter's confirmation or dispute, privacy, and the city app's channel with its webhooks."""

from __future__ import annotations

import base64
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from PIL import Image
from sqlalchemy import func, select

from siskamling.areas import service as areas
from siskamling.audit.models import AuditEvent
from siskamling.audit.service import Actor
from siskamling.core.errors import Conflict, Forbidden, Invalid, NotFound
from siskamling.reports import service as reports
from siskamling.reports import webhooks
from siskamling.reports.models import Photo, Report, Status, Step, WebhookDelivery
from tests.conftest import KEL_A, KEL_B

ACTOR = Actor.system("tests")
RT = KEL_A + ".001.001"


def centre(db, code):
    area = areas.get_by_code(db_session=db, code=code)
    return area.centroid_lat, area.centroid_lon


def file(db, settings, category="sampah", at=RT, **kw):
    lat, lon = centre(db, at)
    photo_files = kw.pop("photo_files", None)
    data = reports.NewReport(category=category, description=kw.pop("description", "Sampah menumpuk di pinggir jalan"),
                             lat=lat, lon=lon, **kw)
    return reports.file_report(db_session=db, settings=settings, data=data, actor=ACTOR, photo_files=photo_files)


def staff(db, username):
    from siskamling.accounts import service as accounts

    user = accounts.get_user(db_session=db, username=username)
    return reports.staff_of(db, accounts.principal_for(db_session=db, user=user))


def actor(db, username):
    from siskamling.accounts import service as accounts

    user = accounts.get_user(db_session=db, username=username)
    return Actor(user.id, username)


def jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "KameraHP"  # Make
    exif[0x8825] = {1: "S", 2: (6.0, 10.0, 0.0), 3: "E", 4: (106.0, 49.0, 0.0)}  # GPS IFD
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


# --- intake and routing ------------------------------------------------------------------------


def test_a_report_is_placed_routed_audited_and_alerts_operators(db, settings, desk):
    filed = file(db, settings)
    report = filed.report
    assert report.ticket.startswith("LP") and len(report.ticket) == 13
    assert report.area.code == RT, "placed at RT level by its position"
    assert report.unit_id == desk.kelurahan.id, "the kelurahan's catch-all rule routes it"
    assert report.status == Status.menunggu and report.first_action_at is None
    steps = reports.history(db_session=db, report=report)
    assert [s.kind for s in steps] == ["filed"]
    assert db.scalar(select(AuditEvent).where(AuditEvent.action == "report.filed",
                                              AuditEvent.object_id == report.ticket)) is not None
    assert reports.track_key_valid(report, filed.track_key)
    assert not reports.track_key_valid(report, "guess")


def test_category_rule_beats_catch_all_and_city_rule_applies_where_no_local_one(db, settings, desk):
    assert file(db, settings, category="banjir", attributes={"tinggi_air_cm": 40}).report.unit_id == desk.sda.id
    assert file(db, settings, category="ketertiban").report.unit_id == desk.satpol.id, \
        "Satpol PP's city-wide rule names the category: it beats the kelurahan's catch-all"
    assert file(db, settings, category="ketertiban", at=KEL_B + ".001.001").report.unit_id == desk.satpol.id
    assert file(db, settings, category="pju_mati").report.unit_id == desk.kelurahan.id, "the catch-all"
    assert file(db, settings, category="sampah", at=KEL_B + ".001.001").report.unit_id is None, \
        "no rule: it waits for the operator to route it"


@pytest.mark.parametrize("change, message", [
    ({"category": "tidak_ada"}, "Unknown category"),
    ({"category": "banjir"}, "tinggi_air_cm is required"),
    ({"category": "banjir", "attributes": {"tinggi_air_cm": "selutut"}}, "must be a number"),
    ({"attributes": {"warna": "merah"}}, "Unknown attribute"),
    ({"category": "kriminalitas", "attributes": {"sedang_terjadi": "mungkin"}}, "must be one of"),
    ({"description": "sampah"}, "at least 10 characters"),
    ({"lat": 10.0, "lon": 10.0}, "outside the service area"),
    ({"lat": 95.0, "lon": 10.0}, "out of range"),
    ({"reporter_phone": "12"}, "phone number"),
])
def test_bad_reports_are_refused_and_nothing_is_stored(db, settings, desk, change, message):
    before = db.scalar(select(func.count()).select_from(Report))
    lat, lon = centre(db, RT)
    fields = {"category": "sampah", "description": "Sampah menumpuk di pinggir jalan", "lat": lat, "lon": lon} | change
    with pytest.raises((Invalid, NotFound)) as err:
        reports.file_report(db_session=db, settings=settings, data=reports.NewReport(**fields), actor=ACTOR)
    assert message in str(err.value)
    assert db.scalar(select(func.count()).select_from(Report)) == before


def test_photos_are_reencoded_without_metadata(db, settings, desk):
    raw = jpeg_with_gps()
    assert b"KameraHP" in raw
    filed = file(db, settings, photo_files=[("a.jpg", raw)])
    photo = db.scalar(select(Photo).where(Photo.report_id == filed.report.id))
    data = (settings.media_dir / photo.path).read_bytes()
    assert b"KameraHP" not in data and b"Exif" not in data
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG" and image.size == (64, 48) and not image.getexif()


@pytest.mark.parametrize("name, raw, message", [
    ("notes.txt", b"this is not a picture at all", "is not a photo"),
    ("empty.jpg", b"", "is empty"),
])
def test_non_images_are_refused(db, settings, desk, name, raw, message):
    with pytest.raises(Invalid, match=message):
        file(db, settings, photo_files=[(name, raw)])


def test_oversize_photo_and_too_many_photos_are_refused(db, settings, desk):
    big = settings.model_copy(update={"report_photo_max_mb": 0.001})
    with pytest.raises(Invalid, match="too large"):
        file(db, big, photo_files=[("a.jpg", jpeg_with_gps() + b"\0" * 2000)])
    with pytest.raises(Invalid, match="At most 5 photos"):
        file(db, settings, photo_files=[(f"{n}.jpg", jpeg_with_gps()) for n in range(6)])


# --- the workflow ------------------------------------------------------------------------------


def test_the_jaki_workflow_from_menunggu_to_selesai_with_first_action_stamped(db, settings, desk):
    report = file(db, settings).report
    head, officer = staff(db, "kasi"), staff(db, "petugas")
    with pytest.raises(Forbidden):
        reports.change_status(db_session=db, staff=officer, report=report, to=Status.koordinasi, note=None,
                              actor=actor(db, "petugas"))
    reports.change_status(db_session=db, staff=head, report=report, to=Status.koordinasi, note=None,
                          actor=actor(db, "kasi"))
    assert report.first_action_at is not None and report.first_action_by_id == desk.head.id
    first = report.first_action_at
    reports.assign(db_session=db, staff=head, report=report, officer_id=desk.officer.id, actor=actor(db, "kasi"))
    assert report.status == Status.disposisi and report.officer_id == desk.officer.id
    reports.change_status(db_session=db, staff=officer, report=report, to=Status.proses, note=None,
                          actor=actor(db, "petugas"))
    with pytest.raises(Invalid, match="Say why"):
        reports.change_status(db_session=db, staff=officer, report=report, to=Status.selesai, note="",
                              actor=actor(db, "petugas"))
    reports.change_status(db_session=db, staff=officer, report=report, to=Status.selesai,
                          note="Sampah sudah diangkut truk DLH", actor=actor(db, "petugas"))
    assert report.status == Status.selesai and report.resolved_at and report.closed_at
    assert report.first_action_at == first, "stamped once"
    kinds = [(s.kind, s.status_to) for s in reports.history(db_session=db, report=report)]
    assert kinds == [("filed", "menunggu"), ("status", "koordinasi"), ("assign", "disposisi"),
                     ("status", "proses"), ("status", "selesai")]


def test_illegal_moves_are_refused(db, settings, desk):
    report = file(db, settings).report
    head = staff(db, "kasi")
    with pytest.raises(Conflict, match="cannot go from menunggu to selesai"):
        reports.change_status(db_session=db, staff=head, report=report, to=Status.selesai, note="selesai sudah",
                              actor=ACTOR)
    with pytest.raises(Invalid, match="Assign an officer"):
        reports.change_status(db_session=db, staff=head, report=report, to=Status.disposisi, note=None, actor=ACTOR)
    reports.change_status(db_session=db, staff=head, report=report, to=Status.ditolak, note="Bukan laporan nyata",
                          actor=ACTOR)
    assert report.closed_at is not None
    with pytest.raises(Conflict):
        reports.assign(db_session=db, staff=head, report=report, officer_id=desk.officer.id, actor=ACTOR)


def test_handover_keeps_every_hop_and_clears_the_officer(db, settings, desk):
    report = file(db, settings, category="sampah").report
    head = staff(db, "kasi")
    reports.assign(db_session=db, staff=head, report=report, officer_id=desk.officer.id, actor=ACTOR)
    with pytest.raises(Invalid, match="Say why"):
        reports.hand_over(db_session=db, staff=head, report=report, unit=desk.sda, reason="", actor=ACTOR)
    reports.hand_over(db_session=db, staff=head, report=report, unit=desk.sda,
                      reason="Saluran air tersumbat, bukan kewenangan kelurahan", actor=actor(db, "kasi"))
    assert report.unit_id == desk.sda.id and report.officer_id is None and report.status == Status.koordinasi
    with pytest.raises(NotFound):
        reports.get_visible(db_session=db, staff=staff(db, "petugas"), ticket=report.ticket)
    sda = staff(db, "sda")
    assert reports.get_visible(db_session=db, staff=sda, ticket=report.ticket) is report
    with pytest.raises(Forbidden, match="head"):
        reports.hand_over(db_session=db, staff=sda, report=report, unit=desk.satpol, reason="bukan kami juga",
                          actor=ACTOR)
    alice = staff(db, "alice")
    reports.hand_over(db_session=db, staff=alice, report=report, unit=desk.satpol, reason="Dialihkan ke Satpol PP",
                      actor=actor(db, "alice"))
    hops = [(s.unit_from.code, s.unit_to.code) for s in reports.history(db_session=db, report=report)
            if s.kind == "handover"]
    assert hops == [("kel-sukamaju", "dinas-sda"), ("dinas-sda", "satpol-pp")]


def test_reporter_confirms_or_disputes_the_fix(db, settings, desk):
    report = file(db, settings).report
    head = staff(db, "kasi")
    with pytest.raises(Conflict):
        reports.confirm(db_session=db, report=report, actor=ACTOR)
    reports.change_status(db_session=db, staff=head, report=report, to=Status.koordinasi, note=None, actor=ACTOR)
    reports.change_status(db_session=db, staff=head, report=report, to=Status.selesai, note="Sudah dibersihkan",
                          actor=ACTOR)
    reports.dispute(db_session=db, report=report, reason="Masih ada sampah di ujung gang", actor=ACTOR)
    assert report.status == Status.proses and report.reopen_count == 1 and report.resolved_at is None
    reports.change_status(db_session=db, staff=head, report=report, to=Status.selesai, note="Ujung gang juga bersih",
                          actor=ACTOR)
    reports.confirm(db_session=db, report=report, actor=ACTOR)
    assert report.confirmed_at is not None
    with pytest.raises(Conflict):
        reports.confirm(db_session=db, report=report, actor=ACTOR)


def test_duplicates_are_suggested_supported_once_and_merged(db, settings, desk):
    first = file(db, settings).report
    lat, lon = centre(db, RT)
    found = reports.nearby(db_session=db, settings=settings, category_code="sampah", lat=lat, lon=lon)
    assert [r.ticket for r, _ in found] == [first.ticket]
    assert reports.nearby(db_session=db, settings=settings, category_code="banjir", lat=lat, lon=lon) == []
    assert reports.support(db_session=db, report=first, supporter="user:1", actor=ACTOR) is True
    assert reports.support(db_session=db, report=first, supporter="user:1", actor=ACTOR) is False
    assert first.support_count == 1
    second = file(db, settings).report
    alice = staff(db, "alice")
    reports.merge(db_session=db, staff=alice, report=second, into=first, actor=actor(db, "alice"))
    assert second.status == Status.duplikat and second.duplicate_of_id == first.id
    assert first.support_count == 2
    with pytest.raises(Forbidden):
        reports.merge(db_session=db, staff=staff(db, "charlie"), report=first, into=second, actor=ACTOR)


def test_emergencies_are_flagged_to_the_areas_operators(db, settings, desk):
    from siskamling.events import service as events

    report = file(db, settings, category="kebakaran", description="Asap tebal dari rumah di gang 3").report
    assert report.emergency
    alice, charlie = staff(db, "alice").principal, staff(db, "charlie").principal
    got = [e for e in events.since(db_session=db, principal=alice, after_id=0) if e.kind == "report.emergency"]
    assert got and got[-1].payload["ticket"] == report.ticket
    assert not [e for e in events.since(db_session=db, principal=charlie, after_id=0) if e.kind.startswith("report.")]
    calm = file(db, settings, category="kriminalitas", attributes={"sedang_terjadi": "tidak"},
                description="Motor dicuri tadi malam di depan rumah").report
    assert not calm.emergency, "a crime that is over is not an emergency"


# --- who sees what -----------------------------------------------------------------------------


def test_visibility_follows_area_and_unit_and_rahasia_hides_the_reporter(db, settings, desk):
    from siskamling.accounts import service as accounts

    warga = accounts.principal_for(db_session=db, user=accounts.get_user(db_session=db, username="warga"))
    data = reports.NewReport(category="sampah", description="Sampah di selokan depan sekolah",
                             lat=centre(db, RT)[0], lon=centre(db, RT)[1], confidential=True,
                             reporter_phone="081234567890")
    report = reports.file_report(db_session=db, settings=settings, data=data, actor=ACTOR, reporter=warga).report
    assert reports.get_visible(db_session=db, staff=staff(db, "warga"), ticket=report.ticket)
    for name in ("alice", "kasi", "petugas"):
        assert reports.get_visible(db_session=db, staff=staff(db, name), ticket=report.ticket)
        assert not reports.shows_reporter(staff(db, name), report), "rahasia: hidden from staff"
    assert reports.shows_reporter(staff(db, "warga"), report)
    for name in ("charlie", "bob", "sda", "dina"):
        with pytest.raises(NotFound):
            reports.get_visible(db_session=db, staff=staff(db, name), ticket=report.ticket)


def test_public_positions_are_snapped_to_the_grid():
    lat, lon = reports.coarse(-6.175392, 106.827153, 100)
    assert reports.distance_m(-6.175392, 106.827153, lat, lon) <= 71, "within half a cell's diagonal"
    assert (lat, lon) != (-6.175392, 106.827153)
    assert reports.coarse(-6.175400, 106.827160, 100) == (lat, lon), "neighbours share a cell"


# --- the JSON API and the city app's channel ---------------------------------------------------


def test_staff_api_queue_is_scoped_and_filtered(client, db, settings, desk, token_for):
    mine = file(db, settings).report
    other = file(db, settings, at=KEL_B + ".001.001").report
    db.commit()
    r = client.get("/api/v1/reports", headers=token_for("alice"))
    tickets = [x["ticket"] for x in r.json()]
    assert mine.ticket in tickets and other.ticket not in tickets
    r = client.get("/api/v1/reports", params={"status": "selesai"}, headers=token_for("alice"))
    assert r.json() == []
    r = client.get("/api/v1/reports", params={"status": "kacau"}, headers=token_for("alice"))
    assert r.status_code == 422 and "Status tidak dikenal" in r.json()["error"]["message"]
    r = client.get(f"/api/v1/reports/{other.ticket}", headers=token_for("alice"))
    assert r.status_code == 404


def test_staff_api_moves_a_report_and_bulk_assigns(client, db, settings, desk, token_for):
    a, b = file(db, settings).report, file(db, settings).report
    db.commit()
    headers = token_for("kasi")
    r = client.post("/api/v1/reports/assign", json={"tickets": [a.ticket, b.ticket], "officer": "petugas"},
                    headers=headers)
    assert r.status_code == 200, r.text
    r = client.post(f"/api/v1/reports/{a.ticket}/status", json={"status": "proses"}, headers=token_for("petugas"))
    assert r.status_code == 200 and r.json()["status"] == "proses"
    r = client.post(f"/api/v1/reports/{b.ticket}/handover", json={"unit": "dinas-sda", "reason": "Saluran air"},
                    headers=headers)
    assert r.status_code == 200 and r.json()["unit"] == "Dinas Sumber Daya Air"
    r = client.post("/api/v1/reports/assign", json={"tickets": [a.ticket, b.ticket], "officer": "petugas"},
                    headers=headers)
    assert r.status_code == 404, "b left the unit: the whole bulk assignment is refused"
    db.expire_all()
    assert db.get(Report, b.id).officer_id is None


class Receiver(BaseHTTPRequestHandler):
    got: list = []
    status = 200

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.got.append((dict(self.headers), body))
        self.send_response(Receiver.status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.got, Receiver.status = [], 200
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def app_body(db, **kw):
    lat, lon = centre(db, RT)
    return {"external_id": "JAKI-1", "category": "pju_mati", "description": "Lampu jalan mati sejak kemarin malam",
            "lat": lat, "lon": lon, "reporter": {"name": "Budi", "phone": "081234567890"}} | kw


def test_app_channel_is_idempotent_and_refuses_replayed_keys(client, db, settings, desk):
    headers = {"X-Api-Key": desk.client_key, "Idempotency-Key": "k-1"}
    first = client.post("/api/v1/channels/app/reports", json=app_body(db), headers=headers)
    assert first.status_code == 201, first.text
    again = client.post("/api/v1/channels/app/reports", json=app_body(db), headers=headers)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert db.scalar(select(func.count()).select_from(Report).where(Report.external_id == "JAKI-1")) == 1
    changed = client.post("/api/v1/channels/app/reports", json=app_body(db, description="Lampu jalan mati lagi"),
                          headers=headers)
    assert changed.status_code == 409 and "permintaan yang berbeda" in changed.json()["error"]["message"]
    missing = client.post("/api/v1/channels/app/reports", json=app_body(db), headers={"X-Api-Key": desk.client_key})
    assert missing.status_code == 422 and "Idempotency-Key" in missing.json()["error"]["message"]
    same_id = client.post("/api/v1/channels/app/reports", json=app_body(db),
                          headers={"X-Api-Key": desk.client_key, "Idempotency-Key": "k-2"})
    assert same_id.status_code == 409, "the app's own id is unique too"
    assert client.post("/api/v1/channels/app/reports", json=app_body(db),
                       headers={"X-Api-Key": "sk_app_wrong", "Idempotency-Key": "k-3"}).status_code == 401
    bad = client.post("/api/v1/channels/app/reports", content=b"{not json", headers=headers | {
        "Content-Type": "application/json", "Idempotency-Key": "k-4"})
    assert bad.status_code == 422


def test_app_channel_accepts_photos_and_updates(client, db, settings, desk):
    photo = base64.b64encode(jpeg_with_gps()).decode()
    headers = {"X-Api-Key": desk.client_key, "Idempotency-Key": "p-1"}
    r = client.post("/api/v1/channels/app/reports", json=app_body(db, photos=[{"content_base64": photo}]),
                    headers=headers)
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/channels/app/reports", json=app_body(db, external_id="JAKI-2",
                                                                  photos=[{"content_base64": "bm90IGFuIGltYWdl"}]),
                    headers=headers | {"Idempotency-Key": "p-2"})
    assert r.status_code == 422 and "bukan foto" in r.json()["error"]["message"]
    r = client.post("/api/v1/channels/app/reports/JAKI-1/updates", json={"kind": "comment", "note": "Masih mati"},
                    headers=headers | {"Idempotency-Key": "u-1"})
    assert r.status_code == 200 and r.json()["history"][-1]["note"] == "Masih mati"
    r = client.post("/api/v1/channels/app/reports/JAKI-1/updates", json={"kind": "confirm"},
                    headers=headers | {"Idempotency-Key": "u-2"})
    assert r.status_code == 409, "nothing to confirm before the report is finished"


def test_status_changes_reach_the_app_by_signed_webhook_with_retries(db, settings, desk, receiver, app):
    desk.client.webhook_url = f"http://127.0.0.1:{receiver.server_port}/hook"
    data = reports.NewReport(category="sampah", description="Sampah menumpuk di pinggir jalan",
                             lat=centre(db, RT)[0], lon=centre(db, RT)[1], external_id="JAKI-9")
    report = reports.file_report(db_session=db, settings=settings, data=data, actor=ACTOR,
                                 channel="app", client=desk.client).report
    reports.change_status(db_session=db, staff=staff(db, "kasi"), report=report, to=Status.koordinasi, note="Dicek",
                          actor=ACTOR)
    db.commit()
    factory = app.state.session_factory
    Receiver.status = 500
    assert webhooks.deliver_due(factory, settings) == 0
    row = db.scalar(select(WebhookDelivery).where(WebhookDelivery.report_id == report.id))
    db.refresh(row)
    assert row.state == "pending" and row.attempts == 1 and row.last_status == 500
    assert webhooks.deliver_due(factory, settings) == 0, "not due again until its backoff has passed"
    webhooks.retry_now(db_session=db, delivery_id=row.id)
    db.commit()
    Receiver.status = 200
    assert webhooks.deliver_due(factory, settings) == 1
    db.refresh(row)
    assert row.state == "delivered" and row.attempts == 2
    headers, body = Receiver.got[-1]
    secret = reports.open_webhook_secret(settings, desk.client)
    assert webhooks.verify(secret, body, headers["X-Siskamling-Signature"])
    assert not webhooks.verify(secret, body + b" ", headers["X-Siskamling-Signature"])
    payload = json.loads(body)
    assert payload["ticket"] == report.ticket and payload["status"] == "koordinasi" and payload["external_id"] == "JAKI-9"


def test_backoff_doubles_and_is_capped():
    assert [webhooks.backoff(n) for n in (1, 2, 3)] == [30, 60, 120]
    assert webhooks.backoff(30) == webhooks.MAX_RETRY_S


def test_history_steps_carry_who_and_when(db, settings, desk):
    report = file(db, settings).report
    reports.comment(db_session=db, staff=staff(db, "kasi"), report=report, note="Akan dicek besok pagi",
                    actor=actor(db, "kasi"), public=True)
    step = db.scalar(select(Step).where(Step.report_id == report.id, Step.kind == "comment"))
    assert step.actor_label == "kasi" and step.by_staff and step.at is not None
    assert report.first_action_at is not None, "a public answer is a first action"


def test_the_server_delivers_webhooks_by_itself(db, settings, desk, receiver, app, monkeypatch):
    import time

    from fastapi.testclient import TestClient

    from siskamling.core import scheduler

    # Only the webhook job: in tests every session shares the test's one connection, and jobs
    # running at once on it (the deadline sweep, email) would trip over each other's savepoints.
    monkeypatch.setattr(scheduler, "JOBS", [job for job in scheduler.JOBS if job.name == "webhooks"])

    desk.client.webhook_url = f"http://127.0.0.1:{receiver.server_port}/hook"
    data = reports.NewReport(category="sampah", description="Sampah menumpuk di pinggir jalan",
                             lat=centre(db, RT)[0], lon=centre(db, RT)[1], external_id="JAKI-10")
    report = reports.file_report(db_session=db, settings=settings, data=data, actor=ACTOR, channel="app",
                                 client=desk.client).report
    reports.change_status(db_session=db, staff=staff(db, "kasi"), report=report, to=Status.ditolak,
                          note="Bukan wilayah DKI", actor=ACTOR)
    db.commit()
    app.state.settings = settings.model_copy(update={"run_scheduler": True})
    with TestClient(app):
        deadline = time.monotonic() + 15
        while not Receiver.got and time.monotonic() < deadline:
            time.sleep(0.1)
    assert Receiver.got, "the scheduler delivered the status change"
    assert json.loads(Receiver.got[0][1])["status"] == "ditolak"


def test_footage_near_a_new_report_is_held_and_linked_for_staff(db, settings, desk, login_as):
    from datetime import timedelta

    from siskamling.cameras import service as cameras
    from siskamling.cameras.models import EvidenceHold
    from siskamling.cameras.schemas import CameraIn
    from siskamling.core.time import utcnow
    from tests.helpers import html

    lat, lon = centre(db, RT)
    near = cameras.register(db_session=db, settings=settings, actor=ACTOR, data=CameraIn(
        code="CAM-NEAR", name="Kamera Gang", lat=lat + 0.0005, lon=lon, stream_url="rtsp://10.0.0.1/a",
        recording_roles=["officer"]))
    far = cameras.register(db_session=db, settings=settings, actor=ACTOR, data=CameraIn(
        code="CAM-FAR", name="Kamera Jauh", lat=lat + 0.01, lon=lon, stream_url="rtsp://10.0.0.1/b"))
    idle = cameras.register(db_session=db, settings=settings, actor=ACTOR, data=CameraIn(
        code="CAM-IDLE", name="Kamera Mati", lat=lat, lon=lon + 0.0005, stream_url="rtsp://10.0.0.1/c"))
    now = utcnow()
    for camera in (near, far):
        cameras.add_segment(db_session=db, camera_id=camera.id, started_at=now - timedelta(minutes=5),
                            ended_at=now - timedelta(minutes=4, seconds=50), path=f"{camera.code}/x.mp4", size=10)
    report = file(db, settings).report
    rows = reports.footage(db_session=db, report=report)
    assert [r.camera.code for r in rows] == ["CAM-NEAR"], "only cameras in the radius that recorded the time"
    assert 40 < rows[0].distance_m < 70
    hold = db.get(EvidenceHold, rows[0].hold_id)
    assert hold.starts_at == report.occurred_at - timedelta(minutes=15)
    assert hold.ends_at == report.occurred_at + timedelta(minutes=15)
    assert report.ticket in hold.reason
    assert idle.id not in [r.camera_id for r in rows]
    db.commit()
    page = html(login_as("alice").get(f"/reports/{report.ticket}"))
    link = page.select_one("#footage li[data-camera=CAM-NEAR] a")
    assert link is not None and link["href"].startswith("/cameras/CAM-NEAR/play?start=")
