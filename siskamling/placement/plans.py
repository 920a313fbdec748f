"""Placement plans: run the planner on the city's data with stated inputs, save the plan with
those inputs (so it can be run again and compared), and export it for the budget document."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from siskamling.areas.index import get_index
from siskamling.areas.models import Area
from siskamling.audit import service as audit
from siskamling.audit.events import PlanCreated
from siskamling.audit.service import Actor
from siskamling.cameras.models import SiteType
from siskamling.core.config import Settings
from siskamling.core.errors import Invalid, NotFound
from siskamling.core.i18n import N_, PLAN_METHOD_LABELS, PLAN_STATUS_LABELS, gettext, label_in, site_label
from siskamling.core.time import utcnow
from siskamling.placement import demand as demand_mod
from siskamling.placement import planner
from siskamling.placement.models import Plan, PlanSite


@dataclass
class PlanInputs:
    """Everything a plan depends on besides the data: saved with it, used again to re-run it."""

    name: str
    mode: str = "count"  # count | budget
    count: int | None = None
    budget: float | None = None
    area_code: str | None = None
    radius_m: float | None = None
    since: str | None = None  # ISO dates (inclusive, exclusive); default: the last 12 months
    until: str | None = None
    include_requests: bool = True
    include_generated: bool = True
    unit_cost: float | None = None
    site_costs: dict[str, float] = field(default_factory=dict)
    category_weights: dict[str, float] = field(default_factory=dict)
    flood_weight: float | None = None
    method: str = "auto"  # auto | mip | greedy
    time_limit: float | None = None

    def resolved(self, settings: Settings, now: datetime) -> PlanInputs:
        """The inputs with every default made explicit (what is saved with the plan)."""
        until = self.until or (now + timedelta(days=1)).date().isoformat()
        since = self.since or (_day(until, end=True) - timedelta(days=365)).date().isoformat()

        def given(value, default):
            return default if value is None else value

        return PlanInputs(
            name=self.name, mode=self.mode, count=self.count if self.mode == "count" else None,
            budget=self.budget if self.mode == "budget" else None, area_code=self.area_code or None,
            radius_m=given(self.radius_m, settings.placement_coverage_radius_m), since=since, until=until,
            include_requests=self.include_requests, include_generated=self.include_generated,
            unit_cost=given(self.unit_cost, settings.placement_unit_cost),
            site_costs=dict(given(self.site_costs or None, settings.placement_site_costs)),
            category_weights=dict(given(self.category_weights or None, settings.placement_category_weights)),
            flood_weight=given(self.flood_weight, settings.placement_flood_weight),
            method=self.method, time_limit=given(self.time_limit, settings.placement_time_limit_seconds))


def _day(value: str, end: bool = False) -> datetime:
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except (TypeError, ValueError):
        if end:
            raise Invalid("The end of the period must be a date (YYYY-MM-DD)") from None
        raise Invalid("The start of the period must be a date (YYYY-MM-DD)") from None


def _finite(*values: float | None) -> bool:
    return all(v is None or (isinstance(v, int | float) and math.isfinite(v)) for v in values)


def _validate(inputs: PlanInputs) -> None:
    name = (inputs.name or "").strip()
    if not name or len(name) > 200:
        raise Invalid("Give the plan a name (at most 200 characters)")
    inputs.name = name
    if inputs.mode not in ("count", "budget"):
        raise Invalid("Plan by a number of cameras or by a budget")
    if inputs.method not in ("auto", "mip", "greedy"):
        raise Invalid("Unknown method %(method)s", method=inputs.method)
    numbers = [inputs.budget, inputs.unit_cost, inputs.radius_m, inputs.time_limit, inputs.flood_weight,
               *inputs.site_costs.values(), *inputs.category_weights.values()]
    if not _finite(*numbers):
        raise Invalid("Amounts, radius, weights and the time limit must be ordinary numbers")
    if inputs.mode == "count" and (inputs.count is None or not 1 <= inputs.count <= 10_000):
        raise Invalid("The number of cameras must be between 1 and 10,000")
    if inputs.mode == "budget" and (inputs.budget is None or inputs.budget <= 0):
        raise Invalid("Give the budget in Rupiah")
    unknown = set(inputs.site_costs) - set(SiteType)
    if unknown:
        raise Invalid("Unknown site types in the costs: %(types)s", types=", ".join(sorted(unknown)))
    if any(v <= 0 for v in inputs.site_costs.values()) or inputs.unit_cost <= 0:
        raise Invalid("Costs must be above zero")
    if any(v < 0 for v in inputs.category_weights.values()) or inputs.flood_weight < 0:
        raise Invalid("Weights must not be negative")
    if not 10 <= inputs.radius_m <= 2000:
        raise Invalid("The coverage radius must be between 10 and 2,000 m")
    if not 1 <= inputs.time_limit <= 3600:
        raise Invalid("The time limit must be between 1 and 3,600 seconds")
    if _day(inputs.since) >= _day(inputs.until, end=True):
        raise Invalid("The period must end after it starts")


def make_plan(*, db_session: Session, settings: Settings, inputs: PlanInputs, actor: Actor,
              rerun_of: Plan | None = None, now: datetime | None = None) -> Plan:
    now = now or utcnow()
    inputs = inputs.resolved(settings, now)
    _validate(inputs)
    area_path = None
    if inputs.area_code:
        area = db_session.scalar(select(Area).where(Area.code == inputs.area_code))
        if area is None:
            raise Invalid("Unknown area %(code)s", code=inputs.area_code)
        area_path = area.path

    def cost_of(site_type: str) -> float:
        return float(inputs.site_costs.get(site_type, inputs.unit_cost))

    if inputs.mode == "budget":
        cheapest = min([inputs.unit_cost, *inputs.site_costs.values()])
        if inputs.budget < cheapest:
            raise Invalid("The budget (Rp %(budget)s) is below the cost of one camera site (Rp %(cost)s)",
                          budget=f"{inputs.budget:,.0f}", cost=f"{cheapest:,.0f}")
    dem = demand_mod.collect(db_session=db_session, since=_day(inputs.since),
                             until=_day(inputs.until, end=True), area_path=area_path,
                             category_weights=inputs.category_weights, flood_weight=inputs.flood_weight,
                             radius_m=inputs.radius_m)
    cand = demand_mod.candidates(db_session=db_session, demand=dem, area_path=area_path,
                                 include_requests=inputs.include_requests, include_generated=inputs.include_generated,
                                 spacing_m=inputs.radius_m, cost_of=cost_of)
    if len(cand.lat) == 0:
        raise Invalid("There are no candidate sites: no open camera requests in this area, and generated sites "
                      "are off (or there is no demand to place them at)")
    if len(dem.lat) == 0:
        raise Invalid("There is no demand to cover in this area and period (no reports, incidents or flood-prone "
                      "RWs that existing cameras do not already cover)")
    costs = cand.cost if inputs.mode == "budget" else np.ones(len(cand.lat))
    budget = float(inputs.budget) if inputs.mode == "budget" else float(inputs.count)
    inst = planner.Instance(cand.lat, cand.lon, costs, dem.lat, dem.lon, dem.weight, inputs.radius_m, budget)
    result = planner.solve(inst, time_limit=inputs.time_limit, method=inputs.method,
                           max_solver_nonzeros=settings.placement_solver_max_nonzeros)
    index = get_index(db_session)
    located = index.locate_many([cand.lon[j] for j in result.chosen], [cand.lat[j] for j in result.chosen],
                                settings.locate_edge_tolerance_m) if result.chosen else None
    plan = Plan(name=inputs.name, inputs=asdict(inputs), method=result.method, status=result.status,
                value=result.value, bound=result.bound, greedy_value=result.greedy_value,
                total_weight=float(dem.weight.sum()), already_covered=dem.already_covered,
                demand={"points": dem.counts, "weight": {k: round(v, 3) for k, v in dem.weights.items()}},
                demand_points=len(dem.lat), candidates=len(cand.lat),
                cost=float(sum(cand.cost[j] for j in result.chosen)), seconds=round(result.seconds, 3),
                rerun_of_id=rerun_of.id if rerun_of else None, created_at=now, created_by=actor.label)
    for rank, (j, gain) in enumerate(zip(result.chosen, result.gains, strict=True), 1):
        area_id = int(located.area_id[rank - 1]) if located is not None else -1
        plan.sites.append(PlanSite(rank=rank, kind=cand.kind[j], request_id=cand.request_id[j],
                                   lat=round(float(cand.lat[j]), 6), lon=round(float(cand.lon[j]), 6),
                                   area_path=index.areas[area_id].path if area_id >= 0 else None,
                                   site_type=cand.site_type[j], cost=float(cand.cost[j]), gain=round(gain, 4)))
    db_session.add(plan)
    db_session.flush()
    audit.record(db_session=db_session, actor=actor, area_path=area_path, event=PlanCreated(
        plan_id=plan.id, name=plan.name, sites=len(plan.sites), value=round(plan.value, 3),
        gap=round(plan.gap, 5), method=plan.method))
    return plan


def rerun(*, db_session: Session, settings: Settings, plan: Plan, actor: Actor, now: datetime | None = None) -> Plan:
    """The same inputs on today's data (requests, reports and cameras may have changed)."""
    known = set(PlanInputs.__dataclass_fields__)
    inputs = PlanInputs(**{k: v for k, v in plan.inputs.items() if k in known})
    return make_plan(db_session=db_session, settings=settings, inputs=inputs, actor=actor, rerun_of=plan, now=now)


def get(*, db_session: Session, plan_id: int) -> Plan:
    plan = db_session.get(Plan, plan_id)
    if plan is None:
        raise NotFound("No plan %(id)s", id=plan_id)
    return plan


def listing(*, db_session: Session, limit: int = 200) -> list[Plan]:
    return list(db_session.scalars(select(Plan).order_by(Plan.id.desc()).limit(limit)))


def _site_key(site: PlanSite) -> tuple:
    return ("r", site.request_id) if site.request_id else ("p", round(site.lat, 4), round(site.lon, 4))


@dataclass
class Comparison:
    a: Plan
    b: Plan
    common: list[PlanSite]
    only_a: list[PlanSite]
    only_b: list[PlanSite]
    input_changes: list[tuple[str, Any, Any]]


def compare(a: Plan, b: Plan) -> Comparison:
    keys_b = {_site_key(s): s for s in b.sites}
    keys_a = {_site_key(s) for s in a.sites}
    changes = [(k, a.inputs.get(k), b.inputs.get(k)) for k in sorted(set(a.inputs) | set(b.inputs))
               if a.inputs.get(k) != b.inputs.get(k) and k != "name"]
    return Comparison(a, b, [s for s in a.sites if _site_key(s) in keys_b],
                      [s for s in a.sites if _site_key(s) not in keys_b],
                      [s for s in b.sites if _site_key(s) not in keys_a], changes)


# --- export ------------------------------------------------------------------------------------

HEADER = ["rank", "kind", "request", "lat", "lon", "kelurahan", "area", "site_type", "cost_rp", "cumulative_cost_rp",
          "weight_added", "cumulative_weight", "cumulative_share_of_demand"]
# The exports are for the budget document: headings and words in the reader's language.
HEADER_LABELS = {
    "rank": N_("Rank"), "kind": N_("Where the site comes from"), "request": N_("Request"), "lat": N_("Latitude"),
    "lon": N_("Longitude"), "kelurahan": N_("Kelurahan"), "area": N_("Area"), "site_type": N_("Site type"),
    "cost_rp": N_("Cost (Rp)"), "cumulative_cost_rp": N_("Cumulative cost (Rp)"), "weight_added": N_("Demand added"),
    "cumulative_weight": N_("Cumulative demand covered"), "cumulative_share_of_demand": N_("Share of demand covered"),
}
KIND_LABELS = {"request": N_("camera request"), "generated": N_("generated site")}
SUMMARY_LABELS = {
    "plan": N_("Plan"), "name": N_("Name"), "created": N_("Made"), "by": N_("Made by"), "mode": N_("Planned by"),
    "count": N_("Number of cameras"), "budget_rp": N_("Budget (Rp)"), "area": N_("Area"), "period": N_("Demand period"),
    "coverage_radius_m": N_("Coverage radius (m)"), "method": N_("Method"), "status": N_("Result"),
    "weight_covered": N_("Demand covered"), "upper_bound": N_("Best possible (proven bound)"),
    "optimality_gap": N_("Optimality gap"), "greedy_weight": N_("Greedy alone"), "demand_weight": N_("Demand in the plan"),
    "already_covered_by_cameras": N_("Already covered by cameras"), "demand_points": N_("Demand points"),
    "candidates": N_("Candidate sites"), "sites": N_("Sites"), "total_cost_rp": N_("Total cost (Rp)"),
    "seconds": N_("Seconds"),
}


def site_rows(db_session: Session, plan: Plan) -> list[list[Any]]:
    by_path = {info.path: info for info in get_index(db_session).areas.values()}
    out, cost, weight = [], 0.0, 0.0
    for s in plan.sites:
        cost += s.cost
        weight += s.gain
        chain = []
        path = s.area_path or ""
        while path:
            info = by_path.get(path)
            if info is not None:
                chain.append(info)
            path = path.rsplit("/", 1)[0] if "/" in path else ""
        kel = next((i.name for i in chain if i.level == "kelurahan"), "")
        out.append([s.rank, s.kind, s.request.code if s.request else "", s.lat, s.lon, kel,
                    chain[0].name if chain else "", s.site_type, round(s.cost), round(cost), round(s.gain, 3),
                    round(weight, 3), round(weight / plan.total_weight, 4) if plan.total_weight else 0.0])
    return out


def summary_rows(plan: Plan) -> list[list[Any]]:
    i = plan.inputs
    return [["plan", plan.id], ["name", plan.name], ["created", plan.created_at.isoformat()],
            ["by", plan.created_by], ["mode", i.get("mode")], ["count", i.get("count")], ["budget_rp", i.get("budget")],
            ["area", i.get("area_code") or "all"], ["period", f"{i.get('since')} – {i.get('until')}"],
            ["coverage_radius_m", i.get("radius_m")], ["method", plan.method], ["status", plan.status],
            ["weight_covered", round(plan.value, 3)], ["upper_bound", round(plan.bound, 3)],
            ["optimality_gap", round(plan.gap, 5)], ["greedy_weight", round(plan.greedy_value, 3)],
            ["demand_weight", round(plan.total_weight, 3)], ["already_covered_by_cameras", round(plan.already_covered, 3)],
            ["demand_points", plan.demand_points], ["candidates", plan.candidates], ["sites", len(plan.sites)],
            ["total_cost_rp", round(plan.cost)], ["seconds", plan.seconds]]


def _readable(rows: list[list[Any]]) -> list[list[Any]]:
    """The site rows as the exports show them: kinds and site types in words."""
    kind, site = HEADER.index("kind"), HEADER.index("site_type")
    return [[*r[:kind], label_in(KIND_LABELS, r[kind]), *r[kind + 1:site], site_label(r[site]), *r[site + 1:]]
            for r in rows]


def _summary(plan: Plan) -> list[list[Any]]:
    out = []
    for key, value in summary_rows(plan):
        if key == "method":
            value = label_in(PLAN_METHOD_LABELS, value)
        elif key == "status":
            value = label_in(PLAN_STATUS_LABELS, value)
        elif key == "mode":
            value = gettext("A budget (Rp)") if value == "budget" else gettext("A number of cameras")
        out.append([label_in(SUMMARY_LABELS, key), value])
    return out


def export_csv(db_session: Session, plan: Plan) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow([label_in(HEADER_LABELS, h) for h in HEADER])
    w.writerows(_readable(site_rows(db_session, plan)))
    return out.getvalue().encode("utf-8-sig")  # with a BOM: spreadsheet programs read it as UTF-8


def export_xlsx(db_session: Session, plan: Plan) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    sites = wb.active
    sites.title = "Lokasi"
    sites.append([label_in(HEADER_LABELS, h) for h in HEADER])
    for cell in sites[1]:
        cell.font = Font(bold=True)
    for row in _readable(site_rows(db_session, plan)):
        sites.append(row)
    for col, width in zip("ABCDEFGHIJKLM", (6, 10, 14, 11, 11, 22, 22, 16, 14, 16, 12, 14, 12), strict=True):
        sites.column_dimensions[col].width = width
    info = wb.create_sheet("Ringkasan")
    for row in _summary(plan):
        info.append(row)
    info.column_dimensions["A"].width = 28
    info.column_dimensions["B"].width = 40
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()
