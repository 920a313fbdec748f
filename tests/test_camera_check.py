"""Checking a camera's connection: the stream probe wired into the camera page, the JSON API and
registration, against the real RTSP server (tests/rtsp). Every way a camera address can fail is a
clear status, the login is never shown or logged, a registration stands whatever the check finds,
and only the camera's managers may check it."""

from __future__ import annotations

import json
import socket
from urllib.parse import quote

from sqlalchemy import select

from siskamling.areas import service as areas
from siskamling.audit.models import AuditEvent
from siskamling.audit.service import Actor
from siskamling.cameras import probe as stream_probe
from siskamling.cameras import service as cameras
from siskamling.cameras.probe import Status
from siskamling.cameras.schemas import CameraIn
from siskamling.core.i18n import PROBE_LABELS
from siskamling.core.security import SecretBox
from tests.conftest import KEL_A
from tests.helpers import html

ACTOR = Actor.system("tests")
WRONG = "wrong-pass#7f3a"  # long enough that finding it anywhere is no coincidence


def centre(db, code=KEL_A + ".002.001"):
    area = areas.get_by_code(db_session=db, code=code)
    return area.centroid_lat, area.centroid_lon


def add_camera(db, settings, stream_url, code="CAM-P", **kw):
    lat, lon = centre(db)
    data = CameraIn(code=code, name=f"Kamera {code}", lat=lat, lon=lon, stream_url=stream_url, **kw)
    camera = cameras.register(db_session=db, data=data, actor=ACTOR, settings=settings)
    db.commit()
    return camera


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def probed_events(db, code):
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == "camera.probed", AuditEvent.object_id == code)
                           .order_by(AuditEvent.seq)))


def check(client, code, headers):
    return client.post(f"/api/v1/cameras/{code}/probe", headers=headers)


def test_every_probe_status_has_a_label():
    assert set(PROBE_LABELS) == {s.value for s in Status}


def test_a_good_camera_is_online_with_its_codec_size_and_frame_rate(client, db, settings, token_for, rtsp_server):
    camera = add_camera(db, settings, rtsp_server.url("live"))
    r = check(client, "CAM-P", token_for("alice"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["code"] == "CAM-P" and body["status"] == "online"
    main = body["main"]
    assert main["ok"] is True and main["status"] == "online" and main["label"]
    assert (main["codec"], main["width"], main["height"]) == ("h264", 640, 360)
    assert abs(main["fps"] - 15) < 0.5 and main["bitrate_kbps"] > 10
    assert main["message"].startswith("online")
    assert body["substream"] is None, "a camera without a sub-stream has nothing to check there"
    [event] = probed_events(db, "CAM-P")
    assert event.data == {"code": "CAM-P", "status": "online", "substream_status": None}
    assert event.actor_label == "alice" and event.area_path == camera.area_path


def test_a_wrong_password_is_unauthorized_and_never_shown_or_logged(client, login_as, db, settings, token_for,
                                                                   rtsp_server):
    add_camera(db, settings, rtsp_server.url("secure"), username=rtsp_server.username, password=WRONG)
    client.cookies.set("lang", "en")
    r = check(client, "CAM-P", token_for("alice"))
    assert r.status_code == 200, r.text
    main = r.json()["main"]
    assert (main["status"], main["ok"], main["label"]) == ("unauthorized", False, "Username or password refused")
    assert f"127.0.0.1:{rtsp_server.port}/secure" in main["message"]
    page = login_as("alice").post("/cameras/CAM-P/probe")
    assert page.status_code == 200
    assert html(page).select_one("#probe-result tr[data-stream=main]")["data-status"] == "unauthorized"
    for secret in (WRONG, quote(WRONG, safe=""), rtsp_server.password):
        assert secret not in r.text and secret not in page.text
        for event in db.scalars(select(AuditEvent)):
            assert secret not in json.dumps(event.data, ensure_ascii=False), event.action
    assert [e.data["status"] for e in probed_events(db, "CAM-P")] == ["unauthorized", "unauthorized"]


def test_an_unsupported_codec_is_named(client, db, settings, token_for, rtsp_server):
    add_camera(db, settings, rtsp_server.url("mpeg4"))
    main = check(client, "CAM-P", token_for("alice")).json()["main"]
    assert (main["status"], main["ok"]) == ("unsupported_codec", False)
    assert (main["codec"], main["width"], main["height"]) == ("mpeg4", 480, 270)


def test_a_closed_port_is_unreachable(client, db, settings, token_for):
    add_camera(db, settings, f"rtsp://127.0.0.1:{closed_port()}/stream", username="admin", password="hunter22")
    r = check(client, "CAM-P", token_for("alice"))
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["main"]["ok"]) == ("unreachable", False)
    assert "hunter22" not in r.text


def test_a_login_sealed_with_another_key_is_reported_not_a_crash(client, db, settings, token_for):
    camera = add_camera(db, settings, f"rtsp://127.0.0.1:{closed_port()}/stream")
    camera.credentials_enc = SecretBox("another-deployment-key-0123456789abcdef").seal('{"username": "u"}')
    db.commit()
    r = check(client, "CAM-P", token_for("alice"))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "error" and "SISKAMLING_SECRET_KEY" in r.json()["main"]["message"]


def test_only_the_cameras_managers_may_check_it(client, login_as, db, settings, token_for):
    add_camera(db, settings, f"rtsp://127.0.0.1:{closed_port()}/stream")
    assert client.get("/api/v1/cameras/CAM-P", headers=token_for("bob")).status_code == 200, "Bob may watch it"
    for username in ("bob", "charlie"):
        assert check(client, "CAM-P", token_for(username)).status_code == 404, username
        assert login_as(username).post("/cameras/CAM-P/probe").status_code == 404, username
    assert "probe-form" not in login_as("bob").get("/cameras/CAM-P").text
    alice = login_as("alice")
    no_csrf = alice.client.post("/api/v1/cameras/CAM-P/probe")
    assert no_csrf.status_code == 403, "a browser session needs the CSRF token, as for every POST"
    assert alice.client.post("/api/v1/cameras/CAM-P/probe", headers={"X-CSRF-Token": alice.csrf}).status_code == 200
    assert len(probed_events(db, "CAM-P")) == 1


def test_the_camera_page_button_shows_main_and_substream(login_as, db, settings, rtsp_server):
    add_camera(db, settings, rtsp_server.url("secure"), substream_url=rtsp_server.url("live"),
               username=rtsp_server.username, password=rtsp_server.password)
    b = login_as("alice")
    page = html(b.get("/cameras/CAM-P"))
    assert page.select_one("#probe-result") is None
    form = page.select_one("form#probe-form")
    assert form["method"] == "post" and form.select_one("input[name=csrf_token]")["value"] == b.csrf
    assert form.select_one("button[type=submit]").text.strip()

    r = b.post(form["action"])
    assert r.status_code == 200, r.text
    rows = {tr["data-stream"]: tr for tr in html(r).select("#probe-result tbody tr")}
    assert set(rows) == {"main", "substream"}
    for row in rows.values():
        assert row["data-status"] == "online"
        assert row.select_one(".codec").text == "h264"
        assert "fps" in row.select_one(".fps").text and "kb/s" in row.select_one(".bitrate").text
    assert rows["substream"].select_one(".resolution").text == "640×360"
    assert rows["main"].select_one(".resolution").text in ("768×432", "640×360")  # footage, or the test scene
    assert rtsp_server.password not in r.text
    assert html(r).select_one("input[name=next]")["value"] == "/cameras/CAM-P", "the language switch stays here"
    assert [e.data["substream_status"] for e in probed_events(db, "CAM-P")] == ["online"]


def test_registration_with_a_check_keeps_an_unreachable_camera(login_as, db, monkeypatch):
    real, during = stream_probe.probe, []

    def probe_watching_the_session(*args, **kwargs):
        during.append(db.in_transaction())
        return real(*args, **kwargs)

    monkeypatch.setattr(stream_probe, "probe", probe_watching_the_session)
    b = login_as("alice")
    lat, lon = centre(db)
    payload = {"name": "Pos Ronda", "lat": lat, "lon": lon, "stream_url": f"rtsp://127.0.0.1:{closed_port()}/s"}
    plain = b.client.post("/api/v1/cameras", headers={"X-CSRF-Token": b.csrf}, json=payload | {"code": "CAM-A"})
    assert plain.status_code == 201 and "probe" not in plain.json(), "the response is unchanged unless asked"

    r = b.client.post("/api/v1/cameras?probe=true", headers={"X-CSRF-Token": b.csrf},
                      json=payload | {"code": "CAM-B"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == set(plain.json()) | {"probe"}
    assert body["code"] == "CAM-B" and body["stream_url"] == payload["stream_url"]
    assert body["probe"]["status"] == "unreachable" and body["probe"]["main"]["ok"] is False
    assert body["probe"]["substream"] is None
    assert cameras.get_by_code(db_session=db, code="CAM-B") is not None
    assert during == [False], "no transaction (on SQLite: the write lock) is held while the probe waits"
    assert [e.data["status"] for e in probed_events(db, "CAM-B")] == ["unreachable"]


def test_the_registration_form_can_check_the_connection(login_as, db):
    b = login_as("alice")
    assert html(b.get("/cameras/new")).select_one("#camera-form input[type=checkbox][name=probe]")
    lat, lon = centre(db)
    r = b.post("/cameras/new", {"code": "CAM-F", "name": "Pos Ronda", "lat": str(lat), "lon": str(lon),
                                "stream_url": f"rtsp://127.0.0.1:{closed_port()}/s", "password": "rahasia-sekali",
                                "username": "petugas", "probe": "true"})
    assert r.status_code == 201, r.text
    page = html(r)
    assert page.select_one("#registered[role=status]").text
    assert page.select_one("#camera-name").text == "Pos Ronda"
    row = page.select_one("#probe-result tr[data-stream=main]")
    assert row["data-status"] == "unreachable" and row.select_one(".tag").text
    assert "rahasia-sekali" not in r.text
    assert cameras.get_by_code(db_session=db, code="CAM-F") is not None
    assert len(probed_events(db, "CAM-F")) == 1
