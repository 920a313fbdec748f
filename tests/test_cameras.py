"""The camera registry: placing a camera in the tree, credentials at rest, and sharing by area —
who may watch live and who may play recordings, and everyone else gets a 404."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from siskamling.accounts import service as accounts
from siskamling.areas import service as areas
from siskamling.audit.models import AuditEvent
from siskamling.audit.service import Actor
from siskamling.cameras import service as cameras
from siskamling.cameras.models import Camera
from siskamling.cameras.schemas import CameraIn
from siskamling.core.time import utcnow
from tests.conftest import KEL_A, KEL_B
from tests.helpers import html

ACTOR = Actor.system("tests")


def centre(db, code):
    area = areas.get_by_code(db_session=db, code=code)
    return area.centroid_lat, area.centroid_lon


def add_camera(db, settings, code="CAM-1", at=KEL_A + ".002.001", **kw):
    lat, lon = centre(db, at)
    data = CameraIn(code=code, name=f"Kamera {code}", lat=lat, lon=lon, stream_url="rtsp://10.1.2.3:554/main", **kw)
    camera = cameras.register(db_session=db, data=data, actor=ACTOR, settings=settings)
    db.commit()
    return camera


def camera_codes(client, headers, **params):
    return [c["code"] for c in client.get("/api/v1/cameras", params=params, headers=headers).json()]


def test_operator_registers_a_camera_placed_by_its_position(login_as, db, settings):
    b = login_as("alice")
    lat, lon = centre(db, KEL_A + ".003.002")
    r = b.client.post("/api/v1/cameras", headers={"X-CSRF-Token": b.csrf}, json={
        "code": "SKM-003", "name": "Taman RW 3", "lat": lat, "lon": lon, "site_type": "taman_24_jam",
        "stream_url": "rtsp://petugas:rahasia@10.1.2.3:554/Streaming/101"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["area_code"] == KEL_A + ".003.002"
    assert body["stream_url"] == "rtsp://10.1.2.3:554/Streaming/101", "credentials are moved out of the address"
    assert body["has_credentials"] is True and "rahasia" not in r.text
    camera = cameras.get_by_code(db_session=db, code="SKM-003")
    assert "rahasia" not in (camera.credentials_enc or "")
    assert cameras.open_credentials(settings, camera) == ("petugas", "rahasia")
    event = db.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
    assert event.action == "camera.registered" and "rahasia" not in str(event.data)


def test_kelurahan_share_reaches_its_rt_and_rw_heads_but_not_the_next_kelurahan(client, db, settings, token_for):
    add_camera(db, settings, share_level="kelurahan")
    assert camera_codes(client, token_for("bob")) == ["CAM-1"], "Bob is ketua RT in the same kelurahan"
    for outsider in ("dina", "eko", "gita", "charlie"):
        headers = token_for(outsider)
        assert camera_codes(client, headers) == [], outsider
        assert client.get("/api/v1/cameras/CAM-1", headers=headers).status_code == 404


def test_neighbour_sharing_reaches_the_kelurahan_next_door(client, db, settings, token_for):
    add_camera(db, settings, share_level="kelurahan", share_neighbours=True)
    assert camera_codes(client, token_for("gita")) == ["CAM-1"], "FKDM of the neighbouring kelurahan B"
    far = areas.get_by_code(db_session=db, code="99.02.02.1002")
    assert KEL_A not in [a.code for a in cameras._neighbours(db, far)]


def test_rw_share_stays_inside_the_rw(client, db, settings, token_for):
    add_camera(db, settings, at=KEL_A + ".002.001", share_level="rw")
    assert camera_codes(client, token_for("bob")) == [], "Bob's RT is in RW 001, the camera in RW 002"
    accounts.create_user(db_session=db, username="rudi", full_name="Rudi", password="kata sandi panjang",
                         actor=ACTOR)
    accounts.add_grant(db_session=db, username="rudi", role="ketua_rt", area_code=KEL_A + ".002.003", actor=ACTOR)
    db.commit()
    assert camera_codes(client, token_for("rudi")) == ["CAM-1"]


def test_live_and_recordings_are_shared_separately(client, db, settings, token_for):
    add_camera(db, settings, live_roles=["ketua_rt"], recording_roles=[])
    headers = token_for("bob")
    assert camera_codes(client, headers, purpose="live") == ["CAM-1"]
    assert camera_codes(client, headers, purpose="recordings") == []
    one = client.get("/api/v1/cameras/CAM-1", headers=headers).json()
    assert (one["can_watch_live"], one["can_play_recordings"]) == (True, False)
    assert one["stream_url"] is None, "only camera managers see the stream address"


def test_a_role_left_out_of_the_rule_sees_nothing(client, db, settings, token_for):
    add_camera(db, settings, live_roles=["satpam"], recording_roles=[])
    assert camera_codes(client, token_for("bob")) == []


def test_a_satpam_sees_shared_cameras_only_on_duty(client, db, settings, token_for):
    add_camera(db, settings, share_level="kelurahan")
    now = utcnow()
    accounts.create_user(db_session=db, username="joko", full_name="Joko", password="kata sandi panjang", actor=ACTOR)
    accounts.add_grant(db_session=db, username="joko", role="satpam", area_code=KEL_A + ".004",
                       starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=9), actor=ACTOR)
    db.commit()
    headers = token_for("joko")
    assert camera_codes(client, headers) == []
    with time_machine.travel(now + timedelta(hours=2)):
        assert camera_codes(client, headers) == ["CAM-1"]
    with time_machine.travel(now + timedelta(hours=10)):
        assert client.get("/api/v1/cameras/CAM-1", headers=headers).status_code == 404


def test_operator_of_another_kelurahan_can_neither_see_nor_change_it(client, db, settings, token_for):
    add_camera(db, settings)
    headers = token_for("charlie")
    assert client.patch("/api/v1/cameras/CAM-1", json={"name": "x"}, headers=headers).status_code == 404
    assert client.patch("/api/v1/cameras/CAM-1", json={"name": "Taman Baru"}, headers=token_for("alice")).status_code == 200


@pytest.mark.parametrize("body, status", [
    ({"stream_url": "ftp://10.0.0.1/x"}, 422),
    ({"stream_url": "rtsp:///nohost"}, 422),
    ({"lat": 10.0, "lon": 10.0}, 422),
    ({"live_roles": ["admin"]}, 422),
    ({"share_level": "provinsi"}, 422),
    ({"code": "CAM 1 !"}, 422),
])
def test_bad_camera_input_is_refused_and_stores_nothing(login_as, db, body, status):
    b = login_as("alice")
    lat, lon = centre(db, KEL_A)
    payload = {"code": "CAM-X", "name": "Kamera", "lat": lat, "lon": lon, "stream_url": "rtsp://10.0.0.1/s"} | body
    r = b.client.post("/api/v1/cameras", headers={"X-CSRF-Token": b.csrf}, json=payload)
    assert r.status_code == status, r.text
    assert r.json()["error"]["message"]
    assert db.scalar(select(func.count(Camera.id))) == 0


def test_operator_cannot_place_a_camera_in_another_kelurahan(login_as, db):
    b = login_as("alice")
    lat, lon = centre(db, KEL_B)
    r = b.client.post("/api/v1/cameras", headers={"X-CSRF-Token": b.csrf}, json={
        "code": "CAM-B", "name": "Kamera", "lat": lat, "lon": lon, "stream_url": "rtsp://10.0.0.1/s"})
    assert r.status_code == 422
    b.client.cookies.set("lang", "en")
    again = b.client.post("/api/v1/cameras", headers={"X-CSRF-Token": b.csrf}, json={
        "code": "CAM-B", "name": "Kamera", "lat": lat, "lon": lon, "stream_url": "rtsp://10.0.0.1/s"})
    assert again.json()["error"]["message"] == "The camera's position is outside the areas you manage"


def test_registration_form_keeps_input_but_never_the_password(login_as, db):
    b = login_as("alice")
    lat, lon = centre(db, KEL_A + ".001.001")
    bad = b.post("/cameras/new", {"code": "CAM-F", "name": "Pos Ronda", "lat": str(lat), "lon": str(lon),
                                  "stream_url": "gopher://x", "password": "rahasia-sekali"})
    assert bad.status_code == 422
    page = html(bad)
    assert page.select_one(".error[role=alert]").text
    assert page.select_one("input[name=name]")["value"] == "Pos Ronda"
    assert "rahasia-sekali" not in bad.text
    ok = b.post("/cameras/new", {"code": "CAM-F", "name": "Pos Ronda", "lat": str(lat), "lon": str(lon),
                                 "stream_url": "rtsp://10.0.0.9/s", "live_roles": ["ketua_rt", "satpam"],
                                 "share_neighbours": "true"})
    assert ok.status_code == 303 and ok.headers["location"] == "/cameras/CAM-F"
    detail = html(b.get("/cameras/CAM-F"))
    assert detail.select_one("#camera-name").text == "Pos Ronda"
    assert {r.select("td")[0].text for r in detail.select("#shares tbody tr")} >= {
        "99/99.01/99.01.01/99.01.01.1001", "99/99.01/99.01.01/99.01.01.1002"}


def test_camera_pages_follow_the_same_scope(login_as, db, settings):
    add_camera(db, settings)
    assert [r["data-code"] for r in html(login_as("bob").get("/cameras")).select("#cameras tbody tr[data-code]")] == ["CAM-1"]
    other = login_as("dina").get("/cameras/CAM-1")
    assert other.status_code == 404 and "Kamera CAM-1" not in other.text


def test_import_is_all_or_nothing(db, settings, tmp_path):
    from siskamling.areas.importer import ImportFailed

    lat, lon = centre(db, KEL_A)
    good = f"CAM-10,Kamera 10,{lat},{lon},jalan,rtsp://10.0.0.10/s,kelurahan,ketua_rt;satpam"
    path = tmp_path / "cams.csv"
    path.write_text("code,name,lat,lon,site_type,stream_url,share_level,live_roles\n"
                    f"{good}\nCAM-11,Kamera 11,10,10,jalan,rtsp://10.0.0.11/s,kelurahan,\n"
                    f"CAM-10,Dobel,{lat},{lon},jalan,rtsp://10.0.0.12/s,kelurahan,\n")
    with pytest.raises(ImportFailed) as exc:
        cameras.import_file(db_session=db, path=path, actor=ACTOR, settings=settings)
    text = str(exc.value)
    assert "row 3 (CAM-11)" in text and "outside the service area" in text
    assert "row 4 (CAM-10): duplicate code" in text
    db.rollback()
    assert db.scalar(select(func.count(Camera.id))) == 0
    path.write_text("code,name,lat,lon,site_type,stream_url,share_level,live_roles\n" + good + "\n")
    assert cameras.import_file(db_session=db, path=path, actor=ACTOR, settings=settings) == (1, 0)
    assert cameras.import_file(db_session=db, path=path, actor=ACTOR, settings=settings) == (0, 1)
    assert cameras.get_by_code(db_session=db, code="CAM-10").live_roles == ["ketua_rt", "satpam"]


@pytest.mark.parametrize("code", ["..", ".hidden", "-x"])
def test_camera_codes_cannot_name_folders_outside_its_own(db, settings, code):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        CameraIn(code=code, name="x", lat=-6.2, lon=106.83, stream_url="rtsp://10.0.0.1/s")


def test_credentials_in_the_query_string_are_refused(db, settings):
    from siskamling.core.errors import Invalid

    for url in ("http://10.0.0.1/live.m3u8?user=admin&password=rahasia", "rtsp://10.0.0.1/s?token=abc"):
        with pytest.raises(Invalid, match="own fields"):
            cameras.split_stream_url(url)


def test_long_health_messages_are_cut_to_fit(db, settings):
    from siskamling.cameras.models import Health

    camera = add_camera(db, settings)
    cameras.set_health(db_session=db, camera_id=camera.id, health=Health.offline, message="x" * 2000)
    db.flush()
    assert len(camera.last_error) == 500
