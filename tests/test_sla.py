"""Deadlines: the six-day rule in calendar and working days (Indonesian holidays plus the city's
own days off), pauses, handovers under both policies, breaches recorded at the time they really
happened and charged to whoever held the report then, reminders sent once however many sweeps
run, and imported history judged by its real timestamps."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from siskamling.core.errors import Invalid
from siskamling.events.models import Event
from siskamling.reports import service as reports
from siskamling.reports.models import Report, Status, Step
from siskamling.sla import service as sla
from siskamling.sla.calendar import Mode, WorkCalendar
from siskamling.sla.models import Breach, Deadline
from tests.helpers import html
from tests.test_reports import ACTOR, RT, centre, staff

WIB = datetime.fromisoformat("2026-01-01T00:00:00+07:00").tzinfo
FRIDAY = datetime(2026, 5, 29, 16, 0, tzinfo=WIB)  # then Sat 30, Sun 31 (Waisak), Mon 1 June (Pancasila)


def wib(text: str) -> datetime:
    return datetime.fromisoformat(text + "+07:00")


def policy(db, **kw):
    data = {"rules": [{"first_action": {"days": 6, "mode": "calendar_days"}}], "reminder_days": [3, 5]} | kw
    return sla.save_policy(db_session=db, data=data, actor=ACTOR)


def file_at(db, settings, when: datetime, category="sampah", **kw):
    lat, lon = centre(db, RT)
    data = reports.NewReport(category=category, description="Sampah menumpuk di pinggir jalan", lat=lat, lon=lon, **kw)
    return reports.file_report(db_session=db, settings=settings, data=data, actor=ACTOR, now=when).report


def deadline(db, report, kind="first_action") -> Deadline:
    db.expire_all()
    return db.scalar(select(Deadline).where(Deadline.report_id == report.id, Deadline.kind == kind))


def breaches(db, report) -> list[Breach]:
    return list(db.scalars(select(Breach).where(Breach.report_id == report.id)))


# --- the calendar ------------------------------------------------------------------------------


def test_working_days_skip_weekends_national_holidays_and_the_citys_days_off():
    plain = WorkCalendar()
    # Friday's last 8 hours, then Tue 2, Wed 3, Thu 4, Fri 5, Mon 8, then 16 hours of Tue 9.
    assert plain.add(FRIDAY, timedelta(days=6), Mode.working) == wib("2026-06-09T16:00:00")
    cuti = WorkCalendar.of([date(2026, 6, 2)])  # a cuti bersama the city declares
    assert cuti.add(FRIDAY, timedelta(days=6), Mode.working) == wib("2026-06-10T16:00:00")
    assert plain.add(FRIDAY, timedelta(days=6), Mode.calendar) == wib("2026-06-04T16:00:00")
    # Filed on a Saturday: the clock starts on Monday at midnight.
    assert plain.add(wib("2026-06-06T10:00:00"), timedelta(days=1), Mode.working) == wib("2026-06-09T00:00:00")
    # Counting back is the inverse of adding.
    due = cuti.add(FRIDAY, timedelta(days=6), Mode.working)
    assert cuti.between(FRIDAY, due, Mode.working) == timedelta(days=6)
    assert plain.between(wib("2026-05-30T00:00:00"), wib("2026-06-02T00:00:00"), Mode.working) == timedelta(0)


# --- policies ----------------------------------------------------------------------------------


def test_the_default_policy_is_six_calendar_days_and_each_save_is_a_new_version(db, desk):
    current = sla.current_policy(db)
    assert current.rules[-1]["first_action"] == {"days": 6, "mode": "calendar_days"}
    assert current.handover == "continue" and current.reminder_days == [3, 5]
    newer = policy(db, rules=[{"group": "bencana", "first_action": {"days": 1, "mode": "calendar_days"}},
                              {"first_action": {"days": 6, "mode": "working_days"}}])
    assert newer.version == current.version + 1
    assert sla.current_policy(db).version == newer.version


@pytest.mark.parametrize("data, message", [
    ({"rules": []}, "at least one rule"),
    ({"rules": [{"category": "gempa", "first_action": {"days": 6}}, {}]}, "unknown category gempa"),
    ({"rules": [{"first_action": {"days": 0}}]}, "more than 0"),
    ({"rules": [{"first_action": {"days": 6, "mode": "lunar_days"}}]}, "calendar_days or working_days"),
    ({"rules": [{"category": "sampah", "first_action": {"days": 2}}]}, "last rule must apply to every category"),
    ({"rules": [{"first_action": {"days": 6}}], "pause_statuses": ["selesai"]}, "closed status cannot pause"),
    ({"rules": [{"first_action": {"days": 6}}], "handover": "reset"}, "continues or restarts"),
])
def test_a_bad_policy_is_refused_and_nothing_is_saved(db, desk, data, message):
    before = sla.current_policy(db).version
    with pytest.raises(Invalid) as err:
        sla.save_policy(db_session=db, data=data, actor=ACTOR)
    assert message in err.value.message % err.value.params
    assert sla.current_policy(db).version == before


# --- the sweep ---------------------------------------------------------------------------------


def test_friday_before_a_long_weekend_under_working_days(db, settings, desk):
    policy(db, rules=[{"first_action": {"days": 6, "mode": "working_days"}}])
    sla.add_day_off(db_session=db, day=date(2026, 6, 2), name="Cuti bersama", actor=ACTOR)
    report = file_at(db, settings, FRIDAY)
    assert deadline(db, report).due_at == wib("2026-06-10T16:00:00")
    sla.sweep(db_session=db, now=wib("2026-06-10T15:59:00"))
    assert deadline(db, report).state == "open" and not breaches(db, report)
    # The server was down from Wednesday afternoon to Friday: the breach keeps its true time.
    result = sla.sweep(db_session=db, now=wib("2026-06-12T09:00:00"))
    assert result.breached == 1
    [entry] = breaches(db, report)
    assert entry.breached_at == wib("2026-06-10T16:00:00") and entry.due_at == entry.breached_at
    assert entry.unit_id == desk.kelurahan.id
    assert entry.officer_id == desk.head.id, "nobody was assigned: the unit's head answers for it"
    assert entry.policy_version == sla.current_policy(db).version
    assert sla.sweep(db_session=db, now=wib("2026-06-13T09:00:00")).breached == 0, "a second sweep changes nothing"
    assert len(breaches(db, report)) == 1


def test_acting_in_time_meets_the_deadline_and_nothing_is_charged(db, settings, desk):
    report = file_at(db, settings, wib("2026-03-02T08:00:00"))
    kasi = staff(db, "kasi")
    reports.assign(db_session=db, staff=kasi, report=report, officer_id=desk.officer.id, actor=ACTOR,
                   now=wib("2026-03-05T10:00:00"))
    result = sla.sweep(db_session=db, now=wib("2026-03-20T00:00:00"))
    assert result.met == 1 and result.breached == 0
    row = deadline(db, report)
    assert row.state == "met" and row.met_at == wib("2026-03-05T10:00:00")


def test_the_clock_pauses_only_in_the_statuses_the_policy_names(db, settings, desk):
    policy(db, rules=[{"first_action": None, "resolution": {"days": 10, "mode": "calendar_days"}}],
           pause_statuses=["koordinasi"])
    t0 = wib("2026-03-02T08:00:00")
    report = file_at(db, settings, t0)
    kasi = staff(db, "kasi")
    with pytest.raises(Invalid):  # the clock stops only with a reason
        reports.change_status(db_session=db, staff=kasi, report=report, to=Status.koordinasi, note=None,
                              actor=ACTOR, now=t0 + timedelta(days=2))
    reports.change_status(db_session=db, staff=kasi, report=report, to=Status.koordinasi,
                          note="Menunggu foto lokasi dari pelapor", actor=ACTOR, now=t0 + timedelta(days=2))
    sla.sweep(db_session=db, now=t0 + timedelta(days=11))  # paused since day 2: not breached
    assert not breaches(db, report)
    reports.assign(db_session=db, staff=kasi, report=report, officer_id=desk.officer.id, actor=ACTOR,
                   now=t0 + timedelta(days=12))  # koordinasi -> disposisi: the clock runs again
    sla.sweep(db_session=db, now=t0 + timedelta(days=19, hours=23))
    assert not breaches(db, report), "10 days of budget, 10 days paused: due on day 20"
    sla.sweep(db_session=db, now=t0 + timedelta(days=21))
    [entry] = breaches(db, report)
    assert entry.kind == "resolution" and entry.breached_at == t0 + timedelta(days=20)
    assert entry.officer_id == desk.officer.id, "charged to the officer who held it when it ran out"


@pytest.mark.parametrize("handover, due_day", [("continue", 6), ("restart", 10)])
def test_a_handover_continues_or_restarts_the_clock_and_the_holder_is_charged(db, settings, desk, handover,
                                                                              due_day):
    policy(db, handover=handover)
    t0 = wib("2026-03-02T08:00:00")
    report = file_at(db, settings, t0)
    reports.hand_over(db_session=db, staff=staff(db, "kasi"), report=report, unit=desk.sda,
                      reason="Bukan kewenangan kelurahan: saluran milik SDA", actor=ACTOR,
                      now=t0 + timedelta(days=4))
    sla.sweep(db_session=db, now=t0 + timedelta(days=due_day) - timedelta(minutes=1))
    assert not breaches(db, report)
    sla.sweep(db_session=db, now=t0 + timedelta(days=due_day + 1))
    [entry] = breaches(db, report)
    assert entry.breached_at == t0 + timedelta(days=due_day)
    assert entry.unit_id == desk.sda.id, "the unit holding the report when the deadline passed"


def test_reminders_go_out_once_on_day_three_and_five_and_the_breach_alerts_operators(db, settings, desk):
    t0 = wib("2026-03-02T08:00:00")
    report = file_at(db, settings, t0)
    assert sla.sweep(db_session=db, now=t0 + timedelta(days=2)).reminders == 0
    assert sla.sweep(db_session=db, now=t0 + timedelta(days=3, minutes=1)).reminders == 1
    assert sla.sweep(db_session=db, now=t0 + timedelta(days=3, minutes=2)).reminders == 0
    assert sla.sweep(db_session=db, now=t0 + timedelta(days=5, minutes=1)).reminders == 1
    assert sla.sweep(db_session=db, now=t0 + timedelta(days=6, minutes=1)).breached == 1
    mine = [e for e in db.scalars(select(Event).where(Event.kind.like("sla.%")).order_by(Event.id))
            if e.payload.get("ticket") == report.ticket]
    assert [e.kind for e in mine if e.user_id is None] == ["sla.reminder", "sla.reminder", "sla.breached"], \
        "to the area's operators"
    assert [(e.kind, e.user_id) for e in mine if e.user_id is not None] == [
        ("sla.reminder", desk.head.id), ("sla.reminder", desk.head.id), ("sla.breached", desk.head.id)], \
        "and to the unit's head, who holds the report while nobody is assigned"
    from siskamling.accounts import service as accounts
    from siskamling.events import service as events

    head = accounts.principal_for(db_session=db, user=desk.head)
    assert [e.kind for e in events.since(db_session=db, principal=head, after_id=0)
            if e.payload.get("ticket") == report.ticket] == ["sla.reminder", "sla.reminder", "sla.breached"]


def test_two_sweeps_at_once_send_each_reminder_and_record_each_breach_once(db, settings, desk):
    """Both sweeps read the same open deadline; only the first claim of each change wins."""
    t0 = wib("2026-03-02T08:00:00")
    report = file_at(db, settings, t0)
    row = deadline(db, report)
    steps = list(db.scalars(select(Step).where(Step.report_id == report.id).order_by(Step.at, Step.id)))
    current = sla.current_policy(db)
    calendar = sla.work_calendar(db)
    first, second = sla.SweepResult(), sla.SweepResult()
    stale = Deadline(id=row.id, report_id=row.report_id, kind=row.kind, policy_version=row.policy_version,
                     days=row.days, mode=row.mode, started_at=row.started_at, due_at=row.due_at, state="open",
                     reminders_sent=0, next_check_at=row.next_check_at)
    now = t0 + timedelta(days=3, hours=1)
    sla._judge(db, row, report, steps, current, calendar, now, ACTOR, first)
    sla._judge(db, stale, report, steps, current, calendar, now, ACTOR, second)  # read before the first wrote
    assert (first.reminders, second.reminders) == (1, 0)
    later = t0 + timedelta(days=7)
    row, stale = deadline(db, report), deadline(db, report)
    sla._judge(db, row, report, steps, current, calendar, later, ACTOR, first)
    sla._judge(db, stale, report, steps, current, calendar, later, ACTOR, second)
    assert (first.breached, second.breached) == (1, 0)
    assert len(breaches(db, report)) == 1


def test_the_ledger_cannot_be_changed(db, settings, desk):
    t0 = wib("2026-03-02T08:00:00")
    report = file_at(db, settings, t0)
    sla.sweep(db_session=db, now=t0 + timedelta(days=7))
    [entry] = breaches(db, report)
    with pytest.raises(Exception, match="append-only"):
        with db.begin_nested():
            db.execute(update(Breach).where(Breach.id == entry.id).values(officer_id=None))


def test_imported_history_is_judged_by_its_real_timestamps(db, settings, desk, tmp_path):
    from siskamling.reports import importer
    from tests.test_report_import import history_row, write_jsonl

    acted = history_row(db, ticket="OLD-ACTED", created_at="2024-02-03T07:15:00+07:00")
    ignored = history_row(db, ticket="OLD-IGNORED", created_at="2024-03-01T07:15:00+07:00", status="menunggu",
                          history=[])
    path = write_jsonl(tmp_path / "old.jsonl", [acted, ignored])
    importer.import_file(db_session=db, path=path, actor=ACTOR, settings=settings)
    sla.sweep(db_session=db)
    old = {r.ticket: r for r in db.scalars(select(Report).where(Report.ticket.in_(["OLD-ACTED", "OLD-IGNORED"])))}
    assert deadline(db, old["OLD-ACTED"]).met_at == wib("2024-02-03T09:00:00")
    [entry] = breaches(db, old["OLD-IGNORED"])
    assert entry.breached_at == wib("2024-03-07T07:15:00"), "six days after it really arrived"


# --- what staff see ----------------------------------------------------------------------------


def test_queue_and_report_page_carry_the_red_mark_and_sort_by_the_deadline(login_as, db, settings, desk):
    now = datetime.now(WIB)
    late = file_at(db, settings, now - timedelta(days=8))
    soon = file_at(db, settings, now - timedelta(days=5))
    fresh = file_at(db, settings, now - timedelta(hours=1))
    sla.sweep(db_session=db)
    db.commit()
    alice = login_as("alice")
    page = html(alice.get("/reports"))
    rows = {tr["data-ticket"]: tr for tr in page.select("#queue tbody tr[data-ticket]")}
    assert "overdue-row" in rows[late.ticket]["class"] and rows[late.ticket].select_one(".tag.overdue")
    assert "overdue-row" not in rows[soon.ticket]["class"] and not rows[fresh.ticket].select_one(".tag.overdue")
    page = html(alice.get("/reports?overdue=true"))
    assert [tr["data-ticket"] for tr in page.select("#queue tbody tr[data-ticket]")] == [late.ticket]
    page = html(alice.get("/reports?sort=due"))
    order = [tr["data-ticket"] for tr in page.select("#queue tbody tr[data-ticket]")]
    assert order.index(soon.ticket) < order.index(fresh.ticket) < order.index(late.ticket), \
        "nearest running deadline first; a breached one has none left to run"
    detail = html(alice.get(f"/reports/{late.ticket}"))
    clock = detail.select_one('.clock[data-kind="first_action"]')
    assert clock["data-state"] == "breached" and clock.select_one(".tag.overdue")
    detail = html(alice.get(f"/reports/{soon.ticket}"))
    clock = detail.select_one('.clock[data-kind="first_action"]')
    assert clock["data-state"] == "open" and "sisa 0 hari 23 jam" in " ".join(clock.get_text().split())


def test_performance_ranks_by_volume_adjusted_share_so_one_lucky_report_does_not_win(login_as, db, settings, desk):
    """The kelurahan office acted in time on 45 of 50, Dinas SDA on its only report, Satpol PP on
    5 of 20: raw shares would put SDA first; the adjusted ranking puts the office first."""
    t0 = datetime.now(WIB) - timedelta(days=20)
    alice = staff(db, "alice")
    plan = [("sampah", {}, 45, 5), ("banjir", {"attributes": {"tinggi_air_cm": 30}}, 1, 0), ("ketertiban", {}, 5, 15)]
    for category, extra, in_time, late in plan:
        for n in range(in_time + late):
            report = file_at(db, settings, t0 + timedelta(minutes=n), category=category, **extra)
            if n < in_time:
                reports.change_status(db_session=db, staff=alice, report=report, to=Status.koordinasi, note=None,
                                      actor=ACTOR, now=t0 + timedelta(days=1))
    sla.sweep(db_session=db)
    db.commit()
    page = html(login_as("alice").get("/sla/performance"))
    rows = page.select("#performance tbody tr[data-group]")
    names = [tr.select_one(".name").get_text() for tr in rows]
    assert names == ["Kantor Kelurahan Sukamaju", "Dinas Sumber Daya Air", "Satpol PP"]
    cells = {tr.select_one(".name").get_text(): tr for tr in rows}
    assert cells["Dinas Sumber Daya Air"].select_one(".in-time").get_text().startswith("100 %")
    assert cells["Satpol PP"].select_one(".in-time").get_text() == "25 % (5/20)"
    assert cells["Satpol PP"].select_one(".open-breaches").get_text() == "15"
    assert cells["Kantor Kelurahan Sukamaju"].select_one(".volume").get_text() == "50"
    months = page.select("#trend g.month")
    assert len(months) == 12 and sum(int(g["data-volume"]) for g in months) == 71
    page = html(login_as("alice").get("/sla/performance?by=kelurahan"))
    assert [tr.select_one(".volume").get_text() for tr in page.select("#performance tbody tr[data-group]")] == ["71"]
    assert login_as("alice").get("/sla/performance?by=rw").status_code == 422
    assert login_as("petugas").get("/sla/performance").status_code == 403


# --- email -------------------------------------------------------------------------------------


@pytest.fixture
def mailbox():
    """A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives."""
    from aiosmtpd.controller import Controller

    class Keep:
        def __init__(self) -> None:
            self.messages = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            from email import message_from_bytes, policy

            self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default)))
            return "250 OK"

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Keep()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, handler
    finally:
        controller.stop()


def test_reminders_and_escalations_go_out_by_email_once(db, settings, desk, mailbox):
    from sqlalchemy.orm import sessionmaker

    from siskamling.accounts.models import User
    from siskamling.sla import notify

    port, box = mailbox
    mail = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False,
                                       "public_url": "https://siskamling.jakarta.go.id/"})
    for username in ("kasi", "petugas", "alice"):
        db.scalar(select(User).where(User.username == username)).email = f"{username}@jakarta.go.id"
    t0 = wib("2026-03-02T08:00:00")
    report = file_at(db, settings, t0)
    factory = sessionmaker(bind=db.connection(), join_transaction_mode="create_savepoint", expire_on_commit=False)
    sla.sweep(db_session=db, now=t0 + timedelta(days=3, minutes=1), settings=mail)
    sla.sweep(db_session=db, now=t0 + timedelta(days=3, minutes=2), settings=mail)
    assert notify.send_due(factory, mail) == 1 and notify.send_due(factory, mail) == 0
    [(to, message)] = box.messages
    assert to == ["kasi@jakarta.go.id"], "nobody assigned: the unit's head is reminded"
    assert report.ticket in message["Subject"] and message["Subject"].startswith("Pengingat 1")
    assert f"https://siskamling.jakarta.go.id/reports/{report.ticket}" in message.get_content()
    sla.sweep(db_session=db, now=t0 + timedelta(days=7), settings=mail)  # down since day 4: the breach, no
    assert notify.send_due(factory, mail) == 2                          # late day-5 reminder after it
    escalated = sorted(to[0] for to, m in box.messages[1:] if m["Subject"].startswith("Lewat tenggat"))
    assert escalated == ["alice@jakarta.go.id", "kasi@jakarta.go.id"], "the unit's head and the area's operator"
    assert notify.send_due(factory, settings) == 0, "no mail server configured: nothing is sent"


def test_an_unreachable_mail_server_is_retried_later_and_nothing_is_lost(db, settings, desk):
    from sqlalchemy.orm import sessionmaker

    from siskamling.accounts.models import User
    from siskamling.sla import notify
    from siskamling.sla.models import Notification

    mail = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": 9, "smtp_starttls": False})
    db.scalar(select(User).where(User.username == "kasi")).email = "kasi@jakarta.go.id"
    t0 = wib("2026-03-02T08:00:00")
    file_at(db, settings, t0)
    sla.sweep(db_session=db, now=t0 + timedelta(days=3, minutes=1), settings=mail)
    factory = sessionmaker(bind=db.connection(), join_transaction_mode="create_savepoint", expire_on_commit=False)
    assert notify.send_due(factory, mail) == 0
    db.expire_all()
    [row] = db.scalars(select(Notification)).all()
    assert row.state == "pending" and row.attempts == 1 and "Connection refused" in row.last_error
    assert row.next_attempt_at > row.created_at


def test_an_outbox_row_queued_a_moment_ago_is_due_at_once(db):
    """Rows are stamped to the microsecond by Python, SQLite's clock counts milliseconds: a row
    queued in the same millisecond as the claim must still be due (it was, at random, not)."""
    from siskamling.core.db import database_now
    from siskamling.core.outbox import claim_due
    from siskamling.sla.models import Notification

    for _ in range(50):
        row = Notification(channel="email", recipient="x@jakarta.go.id", subject="s", body="b", kind="reminder")
        db.add(row)
        db.flush()
        assert row.next_attempt_at <= database_now(db)
        assert row.id in claim_due(db, Notification, 100, 60)


def test_the_staff_api_gives_a_reports_clocks(client, db, settings, desk, token_for):
    late = file_at(db, settings, datetime.now(WIB) - timedelta(days=8))
    sla.sweep(db_session=db)
    db.commit()
    body = client.get(f"/api/v1/reports/{late.ticket}", headers=token_for("alice")).json()
    [clock] = body["deadlines"]
    assert clock["kind"] == "first_action" and clock["state"] == "breached" and clock["seconds_left"] is None
    assert clock["mode"] == "calendar_days" and clock["days"] == 6
