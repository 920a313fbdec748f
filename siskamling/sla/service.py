"""Deadline policies, the clocks on reports, and the sweep that finds what is due.

The sweep judges each clock from the report's own history (its steps), not from when the sweep
happens to run: a deadline that passed while the server was down is recorded with the time it
really passed, and charged to whoever held the report then. A breach is charged to the
officer assigned at that moment or, when none was (a first action not taken is usually that), to
the head of the unit holding the report. Every change a sweep makes is
claimed with a conditional UPDATE, so several nodes may sweep at once and each reminder and
each breach is recorded exactly once.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from siskamling.audit import service as audit
from siskamling.audit.events import SlaBreached, SlaPolicyChanged
from siskamling.audit.service import Actor
from siskamling.core import cache
from siskamling.core.errors import Invalid
from siskamling.core.permissions import Permission
from siskamling.core.time import utcnow
from siskamling.events import service as events
from siskamling.reports import catalogue
from siskamling.reports.models import CLOSED_STATUSES, Category, Report, Status, Step
from siskamling.sla import notify
from siskamling.sla.calendar import DAY, Mode, WorkCalendar
from siskamling.sla.models import Breach, DayOff, Deadline, Policy

KINDS = ("first_action", "resolution")
HANDOVER = ("continue", "restart")
DEFAULT_POLICY: dict[str, Any] = {
    "rules": [{"category": None, "group": None, "first_action": {"days": 6, "mode": Mode.calendar.value},
               "resolution": None}],
    "pause_statuses": [],
    "handover": "continue",
    "reminder_days": [3, 5],
    "tkd": {"mode": "per_breach", "percent": 2.5, "cap": 10.0, "kinds": ["first_action"]},
}
TKD_MODES = ("per_breach", "flat")
SWEEP_BATCH = 2000


# --- policies ----------------------------------------------------------------------------------


_LATEST = select(Policy.id, Policy.version, Policy.created_at).order_by(Policy.version.desc()).limit(1)
_snapshots: dict[tuple, Policy] = {}
_recent_latest = cache.Recent()  # which version is the newest: read at most every few seconds per process


def current_policy(db_session: Session, recent: bool = False) -> Policy:
    """The newest version, as an unattached copy for reading. Versions never change once saved,
    so each process keeps the copy. ``recent`` (report intake): which version is the newest is
    read at most every few seconds (``core.cache``: a new version reaches the other processes
    within ``TTL_S``); pages, sweeps and the ledger read it each time."""
    db_key = cache.db_key(db_session)

    def latest():
        return db_session.connection().execute(_LATEST).first()

    row = _recent_latest.get(db_key, latest, db_session) if recent else latest()
    if row is None:  # the migration seeds version 1; this is the same, unsaved
        return Policy(version=1, created_by="system", note="default", **DEFAULT_POLICY)
    key = (db_key, row.id, row.version, row.created_at)
    snapshot = _snapshots.get(key)
    if snapshot is None:
        full = db_session.get(Policy, row.id)
        snapshot = Policy(id=full.id, version=full.version, rules=copy.deepcopy(full.rules),
                          pause_statuses=list(full.pause_statuses or []), handover=full.handover,
                          reminder_days=list(full.reminder_days or []), tkd=dict(full.tkd or {}), note=full.note,
                          created_at=full.created_at, created_by=full.created_by)
        if db_session.info.get(cache.CHANGED):
            return snapshot  # a version this transaction saved: not for others until it commits
        if len(_snapshots) > 64:
            _snapshots.clear()
        _snapshots[key] = snapshot
    return snapshot


def needs_calendar(policy: Policy, category: Category) -> bool:
    """Whether this category's clocks count working days (and so need the days off)."""
    rule = rule_for(policy, category)
    return any(rule.get(kind) and rule[kind]["mode"] == Mode.working.value for kind in KINDS)


def policy_version(db_session: Session, version: int) -> Policy | None:
    return db_session.scalar(select(Policy).where(Policy.version == version))


def _clock(spec: Any, n: int, clock: str) -> dict[str, Any] | None:
    if spec in (None, "", {}):
        return None
    if not isinstance(spec, dict):
        raise Invalid("Rule %(n)s, %(clock)s: give days and mode", n=n, clock=clock)
    try:
        days = float(spec.get("days"))
    except (TypeError, ValueError):
        raise Invalid("Rule %(n)s, %(clock)s: days must be a number", n=n, clock=clock) from None
    if not 0 < days <= 365:
        raise Invalid("Rule %(n)s, %(clock)s: days must be more than 0 and at most 365", n=n, clock=clock)
    mode = spec.get("mode", Mode.calendar.value)
    if mode not in (m.value for m in Mode):
        raise Invalid("Rule %(n)s, %(clock)s: mode must be calendar_days or working_days", n=n, clock=clock)
    return {"days": days, "mode": mode}


def validate_policy(data: dict[str, Any], category_codes: set[str], groups: set[str]) -> dict[str, Any]:
    rules_in = data.get("rules")
    if not isinstance(rules_in, list) or not rules_in:
        raise Invalid("A policy needs at least one rule")
    rules = []
    for n, rule in enumerate(rules_in, 1):
        if not isinstance(rule, dict):
            raise Invalid("Rule %(n)s is not an object", n=n)
        category, group = rule.get("category") or None, rule.get("group") or None
        if category and group:
            raise Invalid("Rule %(n)s: name a category or a category group, not both", n=n)
        if category and category not in category_codes:
            raise Invalid("Rule %(n)s: unknown category %(code)s", n=n, code=category)
        if group and group not in groups:
            raise Invalid("Rule %(n)s: unknown category group %(group)s", n=n, group=group)
        first = _clock(rule.get("first_action"), n, "first_action")
        resolution = _clock(rule.get("resolution"), n, "resolution")
        rules.append({"category": category, "group": group, "first_action": first, "resolution": resolution})
    if rules[-1]["category"] or rules[-1]["group"]:
        raise Invalid("The last rule must apply to every category (no category, no group)")
    pauses = [str(s) for s in data.get("pause_statuses") or []]
    unknown = [s for s in pauses if s not in {st.value for st in Status}]
    if unknown:
        raise Invalid("Unknown status to pause in: %(statuses)s", statuses=", ".join(unknown))
    if any(s in {st.value for st in CLOSED_STATUSES} for s in pauses):
        raise Invalid("A closed status cannot pause the clock: the report is done")
    handover = data.get("handover", "continue")
    if handover not in HANDOVER:
        raise Invalid("On handover the clock continues or restarts")
    try:
        reminders = sorted({float(d) for d in data.get("reminder_days") or []})
    except (TypeError, ValueError):
        raise Invalid("Reminder days must be numbers") from None
    if any(d <= 0 for d in reminders):
        raise Invalid("Reminder days must be after the start")
    return {"rules": rules, "pause_statuses": pauses, "handover": handover, "reminder_days": reminders,
            "tkd": validate_tkd(data.get("tkd") or DEFAULT_POLICY["tkd"])}


def validate_tkd(rule: Any) -> dict[str, Any]:
    """The deduction rule: ``per_breach`` (percent per counted breach, at most ``cap`` a month) or
    ``flat`` (percent once in a month with any counted breach, as Jakarta did in 2018)."""
    if not isinstance(rule, dict):
        raise Invalid("The TKD rule needs a mode and a percentage")
    mode = rule.get("mode", "per_breach")
    if mode not in TKD_MODES:
        raise Invalid("The TKD rule's mode is per_breach or flat")
    try:
        percent = float(rule.get("percent"))
        cap = float(rule.get("cap", 100 if mode == "flat" else percent))
    except (TypeError, ValueError):
        raise Invalid("The TKD percentages must be numbers") from None
    if not (0 < percent <= 100 and 0 < cap <= 100):
        raise Invalid("The TKD percentages must be more than 0 and at most 100")
    kinds = [k for k in rule.get("kinds") or ["first_action"]]
    if not kinds or any(k not in KINDS for k in kinds):
        raise Invalid("The TKD rule counts first_action and/or resolution breaches")
    return {"mode": mode, "percent": percent, "cap": cap, "kinds": kinds}


def save_policy(*, db_session: Session, data: dict[str, Any], actor: Actor, note: str | None = None) -> Policy:
    """A new version of the policy; deadlines already running keep theirs."""
    categories = db_session.execute(select(Category.code, Category.group)).all()
    clean = validate_policy(data, {c for c, _ in categories}, {g for _, g in categories if g})
    latest = db_session.scalar(select(Policy.version).order_by(Policy.version.desc()).limit(1)) or 0
    policy = Policy(version=latest + 1, created_by=actor.label, note=(note or "").strip() or None, **clean)
    db_session.add(policy)
    db_session.flush()
    cache.changed(db_session)
    audit.record(db_session=db_session, actor=actor, event=SlaPolicyChanged(version=policy.version,
                                                                           note=policy.note))
    return policy


def rule_for(policy: Policy, category: Category) -> dict[str, Any]:
    for rule in policy.rules:
        if rule["category"] == category.code or (rule["group"] and rule["group"] == category.group):
            return rule
        if not rule["category"] and not rule["group"]:
            return rule
    return policy.rules[-1]


# --- days off ----------------------------------------------------------------------------------


def work_calendar(db_session: Session) -> WorkCalendar:
    return WorkCalendar.of(db_session.scalars(select(DayOff.day)))


def add_day_off(*, db_session: Session, day: date, name: str, actor: Actor) -> DayOff:
    name = (name or "").strip()
    if not name:
        raise Invalid("Name the day off (e.g. Cuti bersama Idulfitri)")
    if db_session.scalar(select(DayOff.id).where(DayOff.day == day)):
        raise Invalid("%(day)s is already a day off", day=day.isoformat())
    row = DayOff(day=day, name=name[:200], created_by=actor.label)
    db_session.add(row)
    db_session.flush()
    audit.record(db_session=db_session, actor=actor, event=SlaPolicyChanged(version=0, note=f"day off {day}: {name}"))
    return row


# --- clocks ------------------------------------------------------------------------------------


def start_deadlines(*, db_session: Session, report_id: int, category: Category, started_at: datetime,
                    calendar: WorkCalendar | None = None, policy: Policy | None = None) -> int:
    """The report's clocks under the current policy (imported history: under its real start)."""
    policy = policy or current_policy(db_session)
    if calendar is None:
        calendar = work_calendar(db_session) if needs_calendar(policy, category) else WorkCalendar()
    rows = deadline_rows(category=category, started_at=started_at, policy=policy, calendar=calendar)
    insert_deadlines(db_session=db_session, report_id=report_id, rows=rows)
    return len(rows)


def deadline_rows(*, category: Category, started_at: datetime, policy: Policy,
                  calendar: WorkCalendar) -> list[dict[str, Any]]:
    """The clocks a report starting now would get, computed without the database (intake does
    this before it takes the write lock); ``insert_deadlines`` stores them."""
    rule = rule_for(policy, category)
    rows = []
    for kind in KINDS:
        spec = rule.get(kind)
        if not spec:
            continue
        mode = Mode(spec["mode"])
        due = calendar.add(started_at, spec["days"] * DAY, mode)
        first_reminder = _reminder_at(calendar, policy.reminder_days, 0, started_at, mode, due)
        rows.append({"kind": kind, "policy_version": policy.version, "days": spec["days"],
                     "mode": mode.value, "started_at": started_at, "due_at": due, "state": "open",
                     "reminders_sent": 0, "next_check_at": _next_check(first_reminder, due)})
    return rows


def insert_deadlines(*, db_session: Session, report_id: int, rows: list[dict[str, Any]]) -> None:
    if rows:
        db_session.connection().execute(insert(Deadline.__table__), [{**row, "report_id": report_id} for row in rows])


def _next_check(reminder: datetime | None, due: datetime) -> datetime:
    """A clock's next event: its next reminder, or its due time."""
    return min(reminder, due) if reminder is not None else due


def _reminder_at(calendar: WorkCalendar, reminder_days: list[float], sent: int, start: datetime, mode: Mode,
                 due: datetime) -> datetime | None:
    """When reminder number ``sent + 1`` is due (None when there is none left before the deadline)."""
    if sent >= len(reminder_days):
        return None
    at = calendar.add(start, reminder_days[sent] * DAY, mode)
    return at if at < due else None


@dataclass
class Clock:
    """A deadline as the report's history has it at a moment."""

    start: datetime
    due: datetime | None  # None while paused
    acted_at: datetime | None
    paused: bool


def evaluate(deadline: Deadline, report: Report, steps: list[Step], policy: Policy, calendar: WorkCalendar,
             now: datetime) -> Clock:
    """The clock's true start (a restart at a handover), its due time with paused spans added, and
    when the required action came: a staff step after the start other than a handover (first
    action), or the report closing (resolution)."""
    mode = Mode(deadline.mode)
    start = deadline.started_at
    if policy.handover == "restart" and deadline.kind == "first_action":
        handovers = [s.at for s in steps if s.kind == "handover" and s.at >= start and s.at <= now]
        if handovers:
            start = handovers[-1]
    # Paused spans: from entering a pause status to leaving it, after the start.
    paused_for = timedelta(0)
    paused_since: datetime | None = None
    pauses = set(policy.pause_statuses)
    for s in steps:
        if s.at < start or s.at > now or s.status_to is None:
            continue
        if s.status_to in pauses and paused_since is None:
            paused_since = s.at
        elif s.status_to not in pauses and paused_since is not None:
            paused_for += calendar.between(paused_since, s.at, mode)
            paused_since = None
    budget = deadline.days * DAY
    due = None if paused_since is not None else calendar.add(start, budget + paused_for, mode)
    if deadline.kind == "first_action":
        # A handover is not acting on the report: under "continue" the clock runs on, and the
        # ledger charges whoever holds the report when it runs out.
        after = [s.at for s in steps if s.by_staff and s.kind != "handover" and s.at >= start]
        acted = min(after) if after else None
    else:
        ends = [t for t in (report.resolved_at, report.closed_at) if t is not None]
        acted = min(ends) if ends and report.status in {s.value for s in CLOSED_STATUSES} else None
    return Clock(start=start, due=due, acted_at=acted, paused=paused_since is not None)


def holder_at(steps: list[Step], at: datetime) -> tuple[int | None, int | None]:
    """(unit, officer) holding the report at a moment, from its history."""
    unit = officer = None
    for s in steps:
        if s.at > at:
            break
        if s.kind in ("filed", "handover", "import") and s.unit_to_id is not None:
            unit = s.unit_to_id
        if s.kind == "handover":
            officer = None
        if s.kind == "assign" and s.officer_id is not None:
            officer = s.officer_id
    return unit, officer


@dataclass
class SweepResult:
    checked: int = 0
    met: int = 0
    breached: int = 0
    reminders: int = 0
    moved: int = 0  # due later than set (a pause, a restart)


def sweep(*, db_session: Session, now: datetime | None = None, actor: Actor | None = None,
          limit: int | None = None, settings=None) -> SweepResult:
    """Every open clock whose next check has come (at most ``limit``): met, breached (at its true
    time), reminded, or moved. With ``settings`` whose mail server is set, reminders and
    escalations are also queued as email. Commits nothing itself; safe on several nodes at once."""
    now = now or utcnow()
    actor = actor or Actor.system("sla-sweep")
    result = SweepResult()
    calendar = work_calendar(db_session)
    policies: dict[int, Policy] = {}
    seen: set[int] = set()
    while True:
        size = SWEEP_BATCH if limit is None else min(SWEEP_BATCH, limit - result.checked)
        if size <= 0:
            return result
        # Along the (state, next_check_at) index: what is due, oldest first. Every clock judged
        # moves its next check past ``now`` or leaves "open", so the next query finds the rest.
        due_rows = [d for d in db_session.scalars(
            select(Deadline).where(Deadline.state == "open", Deadline.next_check_at <= now)
            .order_by(Deadline.next_check_at, Deadline.id).limit(size)) if d.id not in seen]
        if not due_rows:
            return result
        seen.update(d.id for d in due_rows)
        report_ids = {d.report_id for d in due_rows}
        reports = {r.id: r for r in db_session.scalars(select(Report).where(Report.id.in_(report_ids)))}
        history: dict[int, list[Step]] = {}
        for step in db_session.scalars(select(Step).where(Step.report_id.in_(report_ids))
                                       .order_by(Step.report_id, Step.at, Step.id)):
            history.setdefault(step.report_id, []).append(step)
        for deadline in due_rows:
            result.checked += 1
            policy = policies.get(deadline.policy_version)
            if policy is None:
                policy = policies[deadline.policy_version] = policy_version(db_session, deadline.policy_version) \
                    or current_policy(db_session)
            _judge(db_session, deadline, reports[deadline.report_id], history.get(deadline.report_id, []), policy,
                   calendar, now, actor, result, settings)
        db_session.flush()


def sweep_in_batches(factory, now: datetime | None = None, actor: Actor | None = None,
                     batch: int = 500, settings=None) -> SweepResult:
    """``sweep`` in transactions of at most ``batch`` clocks, each committed: after downtime,
    thousands of clocks come due at once, and one long transaction would hold SQLite's write lock
    (every report's intake) for as long as it takes."""
    from siskamling.core.db import session_scope

    now = now or utcnow()
    total = SweepResult()
    while True:
        with session_scope(factory) as db:
            part = sweep(db_session=db, now=now, actor=actor, limit=batch, settings=settings)
        for name in ("checked", "met", "breached", "reminders", "moved"):
            setattr(total, name, getattr(total, name) + getattr(part, name))
        if part.checked < batch:
            return total


def _claim(db_session: Session, deadline: Deadline, **values) -> bool:
    """A change to an open deadline, made only if no other sweep made one first."""
    done = db_session.execute(update(Deadline).where(Deadline.id == deadline.id, Deadline.state == "open",
                                                     Deadline.reminders_sent == deadline.reminders_sent)
                              .values(**values).execution_options(synchronize_session=False))
    return done.rowcount == 1


def _judge(db_session: Session, deadline: Deadline, report: Report, steps: list[Step], policy: Policy,
           calendar: WorkCalendar, now: datetime, actor: Actor, result: SweepResult, settings=None) -> None:
    clock = evaluate(deadline, report, steps, policy, calendar, now)
    mode = Mode(deadline.mode)
    if clock.acted_at is not None and (clock.due is None or clock.acted_at <= clock.due):
        if _claim(db_session, deadline, state="met", met_at=clock.acted_at, next_check_at=None,
                  due_at=clock.due or deadline.due_at):
            result.met += 1
        return
    if clock.due is None:  # paused: look again tomorrow (a resume is a step; the next sweep sees it)
        _claim(db_session, deadline, next_check_at=now + DAY)
        return
    if clock.due <= now:
        if _claim(db_session, deadline, state="breached", breached_at=clock.due, due_at=clock.due,
                  next_check_at=None):
            unit_id, officer_id = holder_at(steps, clock.due)
            heads = catalogue.heads(db_session=db_session, unit_id=unit_id)
            if officer_id is None and heads:
                officer_id = heads[0]  # nobody was assigned: the unit's head answers for it
            db_session.execute(insert(Breach).values(
                deadline_id=deadline.id, report_id=report.id, kind=deadline.kind, officer_id=officer_id,
                unit_id=unit_id, policy_version=deadline.policy_version, due_at=clock.due, breached_at=clock.due,
                recorded_at=now))
            audit.record(db_session=db_session, actor=actor, area_path=report.area_path, event=SlaBreached(
                ticket=report.ticket, kind=deadline.kind, due_at=clock.due.isoformat(), officer_id=officer_id,
                unit_id=unit_id, policy_version=deadline.policy_version))
            payload = {"ticket": report.ticket, "kind": deadline.kind, "due_at": clock.due.isoformat(),
                       "officer_id": officer_id, "unit_id": unit_id}
            # Live to the area's operators, and to the unit's head(s) by name.
            for user_id in (None, *heads):
                events.publish(db_session=db_session, kind="sla.breached", area_path=report.area_path,
                               permission=Permission.report_manage, payload=payload, user_id=user_id)
            if settings is not None:
                notify.escalation(db_session=db_session, settings=settings, report=report, kind=deadline.kind,
                                  due_at=clock.due, head_ids=heads)
            result.breached += 1
        return
    # Not yet due: a reminder whose time has come, then the next check.
    sent = deadline.reminders_sent
    reminder = _reminder_at(calendar, policy.reminder_days, sent, clock.start, mode, clock.due)
    if reminder is not None and reminder <= now:
        following = _reminder_at(calendar, policy.reminder_days, sent + 1, clock.start, mode, clock.due)
        if _claim(db_session, deadline, reminders_sent=sent + 1, due_at=clock.due,
                  next_check_at=_next_check(following, clock.due)):
            unit_id, officer_id = holder_at(steps, now)
            payload = {"ticket": report.ticket, "kind": deadline.kind, "due_at": clock.due.isoformat(),
                       "reminder": sent + 1, "officer_id": officer_id, "unit_id": unit_id}
            # Live to the area's operators, and by name to whoever holds the report: the officer
            # assigned, or the unit's head.
            holder = officer_id if officer_id is not None else next(
                iter(catalogue.heads(db_session=db_session, unit_id=unit_id)), None)
            for user_id in (None, holder) if holder is not None else (None,):
                events.publish(db_session=db_session, kind="sla.reminder", area_path=report.area_path,
                               permission=Permission.report_manage, payload=payload, user_id=user_id)
            if settings is not None and holder is not None:
                notify.reminder(db_session=db_session, settings=settings, report=report, kind=deadline.kind,
                                due_at=clock.due, user_id=holder, number=sent + 1)
            result.reminders += 1
        return
    next_check = _next_check(reminder, clock.due)
    if clock.due != deadline.due_at or deadline.next_check_at != next_check:
        if _claim(db_session, deadline, due_at=clock.due, next_check_at=next_check):
            result.moved += 1


# --- what a report page shows ------------------------------------------------------------------


@dataclass
class ClockView:
    kind: str
    due_at: datetime | None
    state: str  # open | met | breached | paused
    remaining: timedelta | None
    policy_version: int
    mode: str
    days: float


def clocks(*, db_session: Session, report: Report, now: datetime | None = None) -> list[ClockView]:
    now = now or utcnow()
    rows = db_session.scalars(select(Deadline).where(Deadline.report_id == report.id).order_by(Deadline.kind)).all()
    if not rows:
        return []
    steps = list(db_session.scalars(select(Step).where(Step.report_id == report.id).order_by(Step.at, Step.id)))
    calendar = work_calendar(db_session)
    out = []
    for d in rows:
        if d.state != "open":
            out.append(ClockView(d.kind, d.due_at, d.state, None, d.policy_version, d.mode, d.days))
            continue
        policy = policy_version(db_session, d.policy_version) or current_policy(db_session)
        clock = evaluate(d, report, steps, policy, calendar, now)
        if clock.acted_at is not None and (clock.due is None or clock.acted_at <= clock.due):
            state = "met"
        elif clock.due is None:
            state = "paused"
        else:
            state = "breached" if clock.due <= now else "open"
        out.append(ClockView(d.kind, clock.due, state, (clock.due - now) if clock.due else None, d.policy_version,
                             d.mode, d.days))
    return out


@dataclass
class Mark:
    """What a list of reports shows of their clocks: the next due time, and the red mark."""

    due_at: datetime | None
    overdue: bool


def overdue_condition(now: datetime):
    """Reports with a clock that ran out (recorded, or past due and not yet swept)."""
    return select(Deadline.report_id).where(
        (Deadline.state == "breached") | ((Deadline.state == "open") & (Deadline.due_at <= now)))


def next_due():
    """The report's earliest running clock, for sorting a queue by it."""
    return select(func.min(Deadline.due_at)).where(Deadline.report_id == Report.id,
                                                   Deadline.state == "open").scalar_subquery()


def marks(*, db_session: Session, report_ids: list[int], now: datetime | None = None) -> dict[int, Mark]:
    now = now or utcnow()
    out: dict[int, Mark] = {}
    if not report_ids:
        return out
    rows = db_session.execute(select(Deadline.report_id, Deadline.state, Deadline.due_at)
                              .where(Deadline.report_id.in_(report_ids))).all()
    for report_id, state, due_at in rows:
        mark = out.setdefault(report_id, Mark(None, False))
        if state == "breached" or (state == "open" and due_at <= now):
            mark.overdue = True
        if state == "open" and (mark.due_at is None or due_at < mark.due_at):
            mark.due_at = due_at
    return out
