"""The report pages as people use them: a visitor files a report with photos from the form and
follows it by its link; staff work the queue and the report's page; the public map shows coarse
positions only. HTML is parsed as HTML."""

from __future__ import annotations

import io
import re

from PIL import Image
from sqlalchemy import func, select

from siskamling.reports import service as reports
from siskamling.reports.models import Report, Status
from tests.conftest import KEL_B
from tests.helpers import html
from tests.test_reports import ACTOR, RT, centre, file, jpeg_with_gps, staff


def form_data(db, **kw):
    lat, lon = centre(db, RT)
    return {"category": "sampah", "description": "Sampah menumpuk di depan gang 4", "lat": str(lat),
            "lon": str(lon), "public": "on", "name": "Siti", "phone": "081234567890"} | kw


def test_a_visitor_files_a_report_with_a_photo_and_follows_it(browser, db, settings, desk):
    page = html(browser.get("/lapor"))
    assert page.select_one("select#category option[value=banjir]") is not None
    assert "112" in page.select_one("#emergency-always").get_text()
    r = browser.post("/lapor", data=form_data(db), files=[("photos", ("a.jpg", jpeg_with_gps(), "image/jpeg"))])
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    ticket = re.match(r"/laporan/(LP\w+)\?kunci=", location).group(1)
    page = html(browser.get(location))
    assert page.select_one("#filed") is not None and page.select_one("#ticket").get_text() == ticket
    assert page.select_one("#status").get_text().strip() == "Menunggu"
    assert page.select_one("#unit").get_text() == "Kantor Kelurahan Sukamaju"
    text = page.get_text()
    assert "Siti" not in text and "081234567890" not in text, "never public"
    img = page.select_one(".photos img")
    photo = browser.get(img["src"])
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert not Image.open(io.BytesIO(photo.content)).getexif()


def test_the_form_keeps_what_was_typed_and_explains_the_error(browser, db, desk):
    before = db.scalar(select(func.count()).select_from(Report))
    r = browser.post("/lapor", data=form_data(db, category="banjir", description="Air naik"))
    assert r.status_code == 422
    page = html(r)
    assert "10" in page.select_one("#form-error").get_text()
    assert page.select_one("#description").get_text() == "Air naik"
    assert page.select_one("input[name='attribute[tinggi_air_cm]']") is not None, "the category's question is back"
    r = browser.post("/lapor", data=form_data(db), files=[("photos", ("x.jpg", b"not an image", "image/jpeg"))])
    assert r.status_code == 422 and "foto" in html(r).select_one("#form-error").get_text().lower()
    r = browser.post("/lapor", data=form_data(db, lat="10", lon="10"))
    assert r.status_code == 422 and "di luar" in html(r).select_one("#form-error").get_text()
    assert db.scalar(select(func.count()).select_from(Report)) == before


def test_emergency_categories_show_112_at_once(browser, db, desk):
    page = html(browser.get("/lapor/pertanyaan?category=kebakaran"))
    assert "112" in page.select_one("#emergency").get_text()
    assert html(browser.get("/lapor/pertanyaan?category=sampah")).select_one("#emergency") is None
    questions = html(browser.get("/lapor/pertanyaan?category=kriminalitas"))
    assert questions.select_one("select[name='attribute[sedang_terjadi]'] option[value=ya]") is not None


def test_similar_reports_are_offered_and_support_counts_once_per_browser(browser, db, settings, desk):
    first = file(db, settings).report
    db.commit()
    lat, lon = centre(db, RT)
    page = html(browser.get(f"/lapor/serupa?category=sampah&lat={lat}&lon={lon}"))
    assert page.select_one(f"li[data-ticket={first.ticket}]") is not None
    for _ in range(2):
        assert browser.post(f"/laporan/{first.ticket}/dukung").status_code == 303
    db.refresh(first)
    assert first.support_count == 1


def test_private_reports_need_the_key_and_the_reporter_confirms_with_it(browser, client, db, settings, desk):
    filed = file(db, settings, public=False)
    report = filed.report
    head = staff(db, "kasi")
    reports.change_status(db_session=db, staff=head, report=report, to=Status.koordinasi, note=None, actor=ACTOR)
    reports.change_status(db_session=db, staff=head, report=report, to=Status.selesai, note="Sudah diangkut",
                          actor=ACTOR)
    db.commit()
    assert client.get(f"/laporan/{report.ticket}").status_code == 404
    assert client.get(f"/laporan/{report.ticket}?kunci=wrong").status_code == 404
    page = html(browser.get(f"/laporan/{report.ticket}?kunci={filed.track_key}"))
    assert page.select_one("#confirm") is not None
    assert browser.post(f"/laporan/{report.ticket}/sanggah", data={"kunci": "wrong", "reason": "Belum"}).status_code \
        == 404
    r = browser.post(f"/laporan/{report.ticket}/sanggah", data={"kunci": filed.track_key,
                                                                "reason": "Masih ada di ujung gang"})
    assert r.status_code == 303
    db.refresh(report)
    assert report.status == Status.proses and report.reopen_count == 1


def test_public_map_has_coarse_positions_and_no_private_reports(client, db, settings, desk):
    shown = file(db, settings).report
    hidden = file(db, settings, public=False).report
    db.commit()
    data = client.get("/laporan/peta.geojson").json()
    tickets = {f["properties"]["ticket"]: f for f in data["features"]}
    assert shown.ticket in tickets and hidden.ticket not in tickets
    lon, lat = tickets[shown.ticket]["geometry"]["coordinates"]
    assert (lat, lon) != (shown.lat, shown.lon)
    assert reports.distance_m(lat, lon, shown.lat, shown.lon) <= 71
    assert set(tickets[shown.ticket]["properties"]) == {"ticket", "status", "category", "open"}
    page = html(client.get("/laporan"))
    assert page.select_one(f"#recent a[href='/laporan/{shown.ticket}']") is not None


def test_operator_queue_filters_and_bulk_assigns(login_as, db, settings, desk):
    a, b = file(db, settings).report, file(db, settings, category="banjir", attributes={"tinggi_air_cm": 30}).report
    other = file(db, settings, at=KEL_B + ".001.001").report
    db.commit()
    alice = login_as("alice")
    page = html(alice.get("/reports"))
    tickets = [tr["data-ticket"] for tr in page.select("#queue tbody tr[data-ticket]")]
    assert a.ticket in tickets and b.ticket in tickets and other.ticket not in tickets
    page = html(alice.get("/reports?category=banjir"))
    assert [tr["data-ticket"] for tr in page.select("#queue tbody tr[data-ticket]")] == [b.ticket]
    r = alice.post("/reports/assign", data={"ticket": [a.ticket], "officer": "petugas"})
    assert r.status_code == 303
    db.refresh(a)
    assert a.officer_id == desk.officer.id and a.status == Status.disposisi


def test_report_page_shows_history_viewers_and_refuses_bad_moves(login_as, db, settings, desk):
    report = file(db, settings, confidential=True, reporter_phone="081299998888").report
    db.commit()
    kasi = login_as("kasi")
    page = html(kasi.get(f"/reports/{report.ticket}"))
    assert "081299998888" not in page.get_text(), "rahasia hides the reporter from officers"
    assert [tr["data-kind"] for tr in page.select("#history tbody tr")] == ["filed"]
    r = kasi.post(f"/reports/{report.ticket}/status", data={"status": "selesai", "note": "x"})
    assert r.status_code == 409 and html(r).select_one("#action-error") is not None
    r = kasi.post(f"/reports/{report.ticket}/handover", data={"unit": "dinas-sda", "note": "Saluran air tersumbat"})
    assert r.status_code == 303
    assert kasi.get(f"/reports/{report.ticket}").status_code == 404, "handed away: no longer the unit's report"
    page = html(login_as("alice").get(f"/reports/{report.ticket}"))
    assert page.select_one("#unit").get_text() == "Dinas Sumber Daya Air"
    assert [tr["data-kind"] for tr in page.select("#history tbody tr")] == ["filed", "handover"]
    assert "Kasi" in page.select_one("#viewers").get_text() and "Alice" in page.select_one("#viewers").get_text()
    assert login_as("charlie").get(f"/reports/{report.ticket}").status_code == 404


def test_admins_configure_units_rules_and_clients_on_the_catalogue_page(login_as, db, desk):
    admin = login_as("admin")
    page = html(admin.get("/reports/catalogue"))
    assert page.select_one("#categories tr[data-code=kebakaran]") is not None
    r = admin.post("/reports/catalogue/unit", data={"code": "bina-marga", "name": "Dinas Bina Marga", "kind": "dinas"})
    assert r.status_code == 200 and html(r).select_one("#notice") is not None
    r = admin.post("/reports/catalogue/rule", data={"category": "jalan_rusak", "area": "99", "unit": "bina-marga"})
    assert r.status_code == 200 and "Dinas Bina Marga" in html(r).select_one("#rules").get_text()
    r = admin.post("/reports/catalogue/rule", data={"category": "jalan_rusak", "area": "77", "unit": "bina-marga"})
    assert r.status_code == 404 and html(r).select_one("#error") is not None
    r = admin.post("/reports/catalogue/client", data={"name": "Aplikasi RW", "webhook": "https://rw.example/hook"})
    key = html(r).select_one("#created-key code").get_text()
    assert key.startswith("sk_app_")
    from siskamling.reports import channels

    assert channels.resolve(db_session=db, key=key).name == "Aplikasi RW"
    assert login_as("alice").get("/reports/catalogue").status_code == 403, "operators do not change the catalogue"
