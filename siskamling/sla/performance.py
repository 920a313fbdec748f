"""How units and kelurahan do against their deadlines: volume, the share acted on in time, time
to first action and to resolution (median and p90), breaches still open, and the trend by month.

Rankings must not reward tiny volumes: a unit that acted on its only report in time is not
better than one that acted on 95 of 100. The ranking uses a **Bayesian average**: each group's
in-time share is pulled toward the share of everything on the page, as if it had ``PRIOR_WEIGHT``
more decided reports at that share. With many reports a group's own figure dominates; with few,
the shared figure does.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from siskamling.areas.models import Area
from siskamling.core.errors import Invalid
from siskamling.core.time import WIB, utcnow
from siskamling.reports.models import CLOSED_STATUSES, Report, Unit
from siskamling.reports.service import Staff, visible_condition
from siskamling.sla.models import Deadline

PRIOR_WEIGHT = 20  # decided reports' worth of pull toward the shared share
KELURAHAN_DEPTH = 4  # provinsi/kota/kecamatan/kelurahan


@dataclass
class Stats:
    key: str
    name: str
    volume: int = 0
    met: int = 0
    breached: int = 0
    open_breaches: int = 0
    to_first_action: list[float] = field(default_factory=list)  # hours
    to_resolution: list[float] = field(default_factory=list)  # hours
    adjusted: float = 0.0

    @property
    def decided(self) -> int:
        return self.met + self.breached

    @property
    def in_time(self) -> float | None:
        return self.met / self.decided if self.decided else None

    @staticmethod
    def _q(values: list[float], q: float) -> float | None:
        if not values:
            return None
        if len(values) == 1:
            return values[0]
        return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]

    def median_first(self) -> float | None:
        return statistics.median(self.to_first_action) if self.to_first_action else None

    def p90_first(self) -> float | None:
        return self._q(self.to_first_action, 0.9)

    def median_resolution(self) -> float | None:
        return statistics.median(self.to_resolution) if self.to_resolution else None

    def p90_resolution(self) -> float | None:
        return self._q(self.to_resolution, 0.9)


@dataclass
class Month:
    month: str
    volume: int = 0
    met: int = 0
    breached: int = 0

    @property
    def in_time(self) -> float | None:
        return self.met / (self.met + self.breached) if self.met + self.breached else None


@dataclass
class Performance:
    by: str
    since: datetime
    groups: list[Stats]  # ranked
    months: list[Month]
    shared_in_time: float | None


def performance(*, db_session: Session, staff: Staff, by: str = "unit", months: int = 12,
                now: datetime | None = None) -> Performance:
    if by not in ("unit", "kelurahan"):
        raise Invalid("Group by unit or kelurahan")
    if not 1 <= months <= 36:
        raise Invalid("Show between 1 and 36 months")
    now = now or utcnow()
    local = now.astimezone(WIB)
    first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for _ in range(months - 1):
        first = (first - timedelta(days=1)).replace(day=1)
    rows = db_session.execute(
        select(Report.unit_id, Report.area_path, Report.created_at, Report.first_action_at, Report.resolved_at,
               Report.status, Deadline.state)
        .outerjoin(Deadline, and_(Deadline.report_id == Report.id, Deadline.kind == "first_action"))
        .where(visible_condition(staff), Report.created_at >= first)).all()
    closed = {s.value for s in CLOSED_STATUSES}
    groups: dict[str, Stats] = {}
    trend: dict[str, Month] = {}
    cursor = first
    while cursor <= local:
        trend[cursor.strftime("%Y-%m")] = Month(cursor.strftime("%Y-%m"))
        cursor = (cursor + timedelta(days=32)).replace(day=1)
    for unit_id, path, created, acted, resolved, status, state in rows:
        if by == "unit":
            key = str(unit_id) if unit_id is not None else "-"
        else:
            key = "/".join(path.split("/")[:KELURAHAN_DEPTH])
        g = groups.get(key)
        if g is None:
            g = groups[key] = Stats(key, key)
        m = trend.get(created.astimezone(WIB).strftime("%Y-%m"))
        g.volume += 1
        if m:
            m.volume += 1
        if state == "met":
            g.met += 1
            if m:
                m.met += 1
        elif state == "breached":
            g.breached += 1
            if m:
                m.breached += 1
            if status not in closed:
                g.open_breaches += 1
        if acted is not None:
            g.to_first_action.append((acted - created).total_seconds() / 3600)
        if resolved is not None:
            g.to_resolution.append((resolved - created).total_seconds() / 3600)
    _name(db_session, by, groups)
    met = sum(g.met for g in groups.values())
    decided = sum(g.decided for g in groups.values())
    shared = met / decided if decided else None
    for g in groups.values():
        g.adjusted = (g.met + PRIOR_WEIGHT * (shared or 0)) / (g.decided + PRIOR_WEIGHT) if decided else 0.0
    ranked = sorted(groups.values(), key=lambda g: (-g.adjusted, -g.volume, g.name))
    return Performance(by=by, since=first, groups=ranked, months=list(trend.values()), shared_in_time=shared)


def _name(db_session: Session, by: str, groups: dict[str, Stats]) -> None:
    if by == "unit":
        ids = [int(k) for k in groups if k != "-"]
        names = dict(db_session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(ids))).all()) if ids else {}
        for key, g in groups.items():
            g.name = names.get(int(key), key) if key != "-" else "—"
    else:
        names = dict(db_session.execute(select(Area.path, Area.name).where(Area.path.in_(list(groups)))).all())
        for key, g in groups.items():
            g.name = names.get(key, key)
