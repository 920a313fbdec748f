"""The recordings timeline: recorded spans merged across short gaps and clipped to the window,
health changes, motion and evidence holds of one camera, served as JSON under the recordings
sharing rule (hold reasons only to the camera's managers), and drawn on the playback page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import event, insert

from siskamling.cameras import service as cameras
from siskamling.cameras import timeline
from siskamling.cameras.models import CameraEvent, CameraHealthEvent, EvidenceHold, RecordingSegment
from siskamling.core.time import utcnow
from tests.conftest import KEL_B
from tests.helpers import html
from tests.test_recording import register

T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)  # 08:00 WIB
REASON = "Laporan warga JKT-0007: tabrak lari"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def z(seconds: float) -> str:
    return at(seconds).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def add_segments(db, camera_id: int, starts: list[float], length: float = 10) -> None:
    for s in starts:
        cameras.add_segment(db_session=db, camera_id=camera_id, started_at=at(s), ended_at=at(s + length),
                            path=f"x/{camera_id}/{s}.mp4", size=1)


@pytest.fixture
def camera(db, settings):
    """A camera in Charlie's kelurahan (B): Gita (FKDM) may play its recordings, Dina (ketua RT)
    may only watch it live, Charlie manages it, Alice (kelurahan A) sees nothing of it."""
    camera = register(db, settings, "CAM-T", "rtsp://10.0.0.9/a", at=KEL_B)
    camera.live_roles, camera.recording_roles = ["ketua_rt", "fkdm"], ["fkdm"]
    cameras._rebuild_shares(db, camera)
    # 0–60 s and 80–100 s (a 20 s gap: one span), 300–360 s, then 390–400 s after a gap of exactly 30 s.
    add_segments(db, camera.id, [0, 10, 20, 30, 40, 50, 80, 90, 300, 310, 320, 330, 340, 350, 390])
    add_segments(db, camera.id, [-2 * 86400])  # two days before: outside every window here
    other = register(db, settings, "CAM-U", "rtsp://10.0.0.10/a", at=KEL_B)
    add_segments(db, other.id, [100, 110, 120, 130, 140, 150, 160, 170, 180, 190, 200, 210, 220, 230, 240])
    db.add_all([
        CameraHealthEvent(camera_id=camera.id, at=at(-86400), health="online", message=None),
        CameraHealthEvent(camera_id=camera.id, at=at(200), health="offline", message="stalled for 5 s"),
        CameraHealthEvent(camera_id=camera.id, at=at(290), health="online", message=None),
        CameraEvent(camera_id=camera.id, kind="motion", started_at=at(-50), ended_at=at(-40), score=0.1),
        CameraEvent(camera_id=camera.id, kind="motion", started_at=at(-5), ended_at=at(15), score=0.2),
        CameraEvent(camera_id=camera.id, kind="motion", started_at=at(310), ended_at=at(320), score=0.4),
        CameraEvent(camera_id=camera.id, kind="motion", started_at=at(395), ended_at=None, score=0.3),
        EvidenceHold(camera_id=camera.id, starts_at=at(0), ends_at=at(120), reason=REASON, placed_by="charlie"),
        EvidenceHold(camera_id=camera.id, starts_at=at(0), ends_at=at(60), reason="Dilepas sebelum jendela",
                     placed_by="charlie", released_at=at(-60), released_by="charlie"),
        EvidenceHold(camera_id=camera.id, starts_at=at(300), ends_at=at(900), reason="Dilepas di tengah jendela",
                     placed_by="charlie", released_at=at(200), released_by="charlie"),
        EvidenceHold(camera_id=camera.id, starts_at=at(-7200), ends_at=at(-3600), reason="Sebelum jendela",
                     placed_by="charlie"),
    ])
    db.commit()
    return camera


# --- the queries -------------------------------------------------------------------------------


def test_segments_closer_than_30_s_merge_into_one_span(db, camera):
    spans = timeline.recorded_spans(db_session=db, camera_id=camera.id, start=at(-3600), end=at(3600))
    assert spans == [(at(0), at(100)), (at(300), at(360)), (at(390), at(400))]


def test_spans_are_clipped_to_the_window(db, camera):
    spans = timeline.recorded_spans(db_session=db, camera_id=camera.id, start=at(35), end=at(305))
    assert spans == [(at(35), at(100)), (at(300), at(305))]
    assert timeline.recorded_spans(db_session=db, camera_id=camera.id, start=at(100), end=at(300)) == []


@pytest.mark.parametrize("chunk", [timedelta(seconds=7), timedelta(seconds=45), timedelta(minutes=5)])
def test_any_chunk_size_gives_the_same_spans(db, camera, chunk):
    args = {"db_session": db, "camera_id": camera.id, "start": at(-60), "end": at(900)}
    assert timeline.recorded_spans(**args, chunk=chunk) == timeline.recorded_spans(**args)


def test_segments_that_do_not_meet_exactly_merge_by_the_gap_rule(db, camera):
    add_segments(db, camera.id, [1000, 1010.5, 1021, 1030, 1070], length=10)  # 0.5 s gaps, an overlap, 30 s
    assert timeline.recorded_spans(db_session=db, camera_id=camera.id, start=at(900), end=at(1200)) == [
        (at(1000), at(1040)), (at(1070), at(1080))]


def test_a_week_of_10_s_segments_is_read_a_day_at_a_time(db, camera):
    start = T0 + timedelta(days=10)
    rows = [{"camera_id": camera.id, "started_at": start + timedelta(seconds=10 * i),
             "ended_at": start + timedelta(seconds=10 * i + 10), "path": f"w/{i}.mp4", "bytes": 1}
            for i in range(7 * 8640) if not 30000 <= i < 30006]  # one minute missing in the middle
    db.execute(insert(RecordingSegment), rows)
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.connection(), "before_cursor_execute", listener)
    try:
        spans = timeline.recorded_spans(db_session=db, camera_id=camera.id, start=start, end=start + timedelta(days=7))
    finally:
        event.remove(db.connection(), "before_cursor_execute", listener)
    gap = start + timedelta(seconds=300000)
    assert spans == [(start, gap), (gap + timedelta(seconds=60), start + timedelta(days=7))]
    assert len(statements) == 1 + 7 * 2, "the segment before the window, then two queries per day"


def test_events_and_holds_of_the_window(db, camera):
    window = {"db_session": db, "camera_id": camera.id, "start": at(0), "end": at(3600)}
    assert [(e.at, e.health) for e in timeline.health_events(**window)] == [(at(200), "offline"), (at(290), "online")]
    assert [(e.started_at, e.ended_at) for e in timeline.camera_events(**window)] == [
        (at(-5), at(15)), (at(310), at(320)), (at(395), None)]
    assert [h.reason for h in timeline.holds(**window)] == [REASON, "Dilepas di tengah jendela"]
    assert timeline.newest_end(db_session=db, camera_id=camera.id) == at(400)


# --- the JSON ----------------------------------------------------------------------------------


def get(b, start, end):
    return b.get("/cameras/CAM-T/timeline.json", params={"start": start, "end": end})


def test_timeline_json_for_a_manager(camera, login_as):
    r = get(login_as("charlie"), z(0), z(3600))
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store, private"
    body = r.json()
    assert body["start"] == "2026-11-27T01:00:00.000Z" and body["end"] == z(3600)
    assert body["spans"] == [[z(0), z(100)], [z(300), z(360)], [z(390), z(400)]]
    assert [(e["kind"], e["start"], e["end"], e["label"]) for e in body["events"]] == [
        ("motion", z(-5), z(15), "motion"),
        ("health", z(200), z(200), "offline"),
        ("health", z(290), z(290), "online"),
        ("motion", z(310), z(320), "motion"),
        ("motion", z(395), None, "motion"),
    ]
    assert body["events"][1]["message"] == "stalled for 5 s"
    assert body["holds"] == [{"start": z(0), "end": z(120), "reason": REASON},
                             {"start": z(300), "end": z(900), "reason": "Dilepas di tengah jendela"}]


def test_hold_reasons_and_health_messages_only_for_managers(camera, login_as):
    body = get(login_as("gita"), z(0), z(3600)).json()
    assert body["spans"] == [[z(0), z(100)], [z(300), z(360)], [z(390), z(400)]], "Gita may play recordings"
    assert body["holds"] == [{"start": z(0), "end": z(120)}, {"start": z(300), "end": z(900)}]
    assert all("message" not in e for e in body["events"]) and len(body["events"]) == 5


def test_times_without_an_offset_are_jakarta_time(camera, login_as):
    body = get(login_as("gita"), "2026-11-27T08:00:35", "2026-11-27T08:05:05").json()
    assert (body["start"], body["end"]) == (z(35), z(305))
    assert body["spans"] == [[z(35), z(100)], [z(300), z(305)]]


def test_the_window_defaults_to_the_last_24_hours(camera, login_as):
    b = login_as("gita")
    body = b.get("/cameras/CAM-T/timeline.json").json()
    start, end = datetime.fromisoformat(body["start"]), datetime.fromisoformat(body["end"])
    assert end - start == timedelta(hours=24) and abs((utcnow() - end).total_seconds()) < 60
    one_end = b.get("/cameras/CAM-T/timeline.json", params={"start": z(0)}).json()
    assert (one_end["start"], one_end["end"]) == (z(0), z(86400))


@pytest.mark.parametrize("username", ["dina", "alice", "warga"])
def test_no_timeline_without_the_recordings_rule(camera, login_as, username):
    """Dina may watch the camera live, not play it back; Alice and a resident see nothing of it."""
    assert get(login_as(username), z(0), z(3600)).status_code == 404
    assert login_as(username).get("/cameras/NOPE/timeline.json").status_code == 404


@pytest.mark.parametrize("start, end, message", [
    (z(60), z(0), "Akhir rentang waktu harus setelah awalnya"),
    (z(0), z(0), "Akhir rentang waktu harus setelah awalnya"),
    (z(0), z(32 * 86400), "31"),
    ("kemarin", z(0), "start"),
])
def test_a_bad_window_is_refused_with_a_translated_message(camera, login_as, start, end, message):
    r = get(login_as("charlie"), start, end)
    assert r.status_code == 422
    assert message in html(r).select_one(".error").text


def test_a_31_day_window_is_allowed(camera, login_as):
    assert get(login_as("charlie"), z(0), z(31 * 86400)).status_code == 200


# --- the page ----------------------------------------------------------------------------------


def test_the_play_page_draws_a_timeline_instead_of_a_table(camera, login_as):
    page = html(login_as("gita").get("/cameras/CAM-T/play"))
    assert page.select_one("table#spans") is None
    root = page.select_one("#timeline")
    assert root["data-src"] == "/cameras/CAM-T/timeline.json"
    assert root["data-playback"] == "/cameras/CAM-T/playback.mp4"
    svg = root.select_one("svg#timeline-svg")
    assert svg["tabindex"] == "0" and svg["role"] == "slider" and svg["aria-label"] and svg.select_one("title").text
    assert [b["data-zoom"] for b in root.select("button[data-zoom]")] == ["1", "6", "24", "168"]
    assert [b["aria-pressed"] for b in root.select("button[data-zoom]")] == ["false", "false", "true", "false"]
    assert {b["data-pan"] for b in root.select("button[data-pan]")} == {"-1", "1"}
    assert root["data-health-offline"] == "Offline" and root["data-recorded"] == "Terekam"
    assert "%(time)s" in root["data-playing"], "the script fills in the time"
    assert [s["src"] for s in page.select("script[src]") if "timeline" in s["src"]] == ["/static/js/timeline.js"]
    assert not [s for s in page.select("script") if s.string and s.string.strip()], "no inline script (CSP)"


def test_the_page_opens_on_the_last_recorded_minute(camera, login_as):
    page = html(login_as("gita").get("/cameras/CAM-T/play"))
    # The newest span is 390–400 s: the last minute of it is all of it.
    assert page.select_one("#range-form input[name=start]")["value"] == "2026-11-27T08:06:30"
    assert page.select_one("#range-form input[name=end]")["value"] == "2026-11-27T08:06:40"
    assert page.select_one("#export-form input[name=start]")["value"] == "2026-11-27T08:06:30"
    root = page.select_one("#timeline")
    assert (root["data-loaded-start"], root["data-loaded-end"]) == (z(390), z(400))
    src = urlsplit(page.select_one("video#playback")["src"])
    assert src.path == "/cameras/CAM-T/playback.mp4"
    assert parse_qs(src.query) == {"start": [z(390)], "end": [z(400)]}, "the times survive URL decoding"


def test_a_chosen_range_keeps_its_offset_through_the_url(camera, login_as):
    page = html(login_as("gita").get("/cameras/CAM-T/play",
                                     params={"start": "2026-11-27T08:00:10", "end": "2026-11-27T08:00:40"}))
    query = parse_qs(urlsplit(page.select_one("video#playback")["src"]).query)
    assert query == {"start": [z(10)], "end": [z(40)]}


def test_the_script_is_told_what_part_of_the_range_was_recorded(camera, login_as):
    """A range that starts in a gap plays from the first recorded moment: the video's time 0."""
    page = html(login_as("gita").get("/cameras/CAM-T/play",
                                     params={"start": "2026-11-27T08:01:50", "end": "2026-11-27T08:05:10"}))
    assert parse_qs(urlsplit(page.select_one("video#playback")["src"]).query) == {"start": [z(110)], "end": [z(310)]}
    root = page.select_one("#timeline")
    assert (root["data-loaded-start"], root["data-loaded-end"]) == (z(300), z(310))


def test_a_page_without_recordings_has_an_empty_player(db, settings, login_as):
    camera = register(db, settings, "CAM-E", "rtsp://10.0.0.11/a", at=KEL_B)
    db.commit()
    page = html(login_as("charlie").get(f"/cameras/{camera.code}/play"))
    assert not page.select_one("video#playback").get("src")
    assert page.select_one("#timeline")["data-loaded-start"] == ""
