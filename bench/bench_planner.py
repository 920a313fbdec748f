"""Camera placement planner benchmarks (``siskamling/placement/planner.py``), printed with their
references:

    .venv/bin/python bench/bench_planner.py large    # 5,000 sites, 200,000 demand points: a plan within 60 s, gap printed
    .venv/bin/python bench/bench_planner.py large --budget-mode           # site costs 35/45/60 M Rp, budget 200 × 40 M
    .venv/bin/python bench/bench_planner.py large --radius 150 --radius 300
    .venv/bin/python bench/bench_planner.py small    # 10 instances solved to optimality: greedy / optimum

``large`` builds a Jakarta instance from the real data in ``../shared/data`` (seeded, so every
run builds the same one): demand points sampled inside the 267 kelurahan polygons in proportion to
their 2014 population, 70 % of them around hotspots (a normal spread of 150-300 m) and 30 %
uniformly, each weighted by a report category (the project's ``DEFAULT_CATEGORY_WEIGHTS``); the
1,592 fire-brigade incidents of 2013 at the centroid of their RW (else of their kelurahan), weight
2; one point per flood-prone RW of the 2012 RW layer, weight 5. Candidate sites: 40 % a demand
point of a hotspot plus ~50 m of noise, 60 % uniformly inside the kelurahan polygons. It then times
``solve(inst, method="auto", time_limit=60)`` from the raw instance (the coverage matrix is
computed inside the timed call; the MIP step, model and SCIP, is timed apart by wrapping
``planner._mip``). References measured in the same run: the coverage and the lazy greedy on their
own, and the greedy with the Lagrangian bound but no MIP (``solve(method="greedy")``). Target: a
plan within 60 s of wall time, with its gap to the proven bound printed.

``small`` solves seeded instances meant to be small enough for the MIP to prove optimality
(300 sites, 5,000 demand points in one box, or two side by side, of the area of a mainland
kelurahan of 4-9 km², K in {5, 10, 20}, 300 m) with ``method="mip"``, and prints the greedy's
value as a ratio of the optimum. Target: that ratio printed, and at least 1 - 1/e (the greedy's
guarantee for a count K) on every instance: by the optimum, or, where the MIP did not prove one,
by the bound (greedy / bound is a lower bound on greedy / optimum).

``--workers N`` is passed to ``solve`` (0, the default, is the planner's own choice).

Each subcommand prints the machine and the load average, PASS/FAIL per target, and exits with
status 1 when a target is missed.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data"
TIME_TARGET_S = 60.0
M_PER_DEG = 6_371_008.8 * math.pi / 180  # the planner's own sphere
# Shares of the synthetic reports by category (an assumption: the published CRM figures give only
# the top categories); their weights are the project's defaults.
CATEGORY_SHARE = {"kriminalitas": 0.10, "ketertiban": 0.20, "pju_mati": 0.15, "banjir": 0.10,
                  "parkir_liar": 0.25, "sampah": 0.20}
INCIDENT_WEIGHT = 2.0  # kebakaran
FLOOD_WEIGHT = 5.0
# Site types for --budget-mode, million Rupiah: an existing street-light pole, a building wall,
# a new pole of its own.
SITE_COSTS = {"tiang_pju": 35.0, "dinding_bangunan": 45.0, "tiang_baru": 60.0}
BUDGET_PER_SITE = 40.0


def echo(text: str = "") -> None:
    click.echo(text)


def header(title: str) -> None:
    import ortools
    import scipy
    import shapely

    load = os.getloadavg()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    echo(title)
    echo(f"  machine: {cpu}, {os.cpu_count()} logical CPU(s), Python {platform.python_version()}, "
         f"numpy {np.__version__}, scipy {scipy.__version__}, shapely {shapely.__version__}, "
         f"OR-Tools {ortools.__version__} (SCIP)")
    echo(f"  date: {datetime.now(UTC).isoformat(timespec='seconds')}; load average "
         f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


class MipClock:
    """Times the planner's MIP step (model building and SCIP) by wrapping ``planner._mip``, which
    ``solve`` looks up at call time; nothing else changes."""

    def __init__(self) -> None:
        from siskamling.placement import planner

        self.planner = planner
        self.original = planner._mip
        self.seconds = 0.0
        self.calls = 0

    def __enter__(self) -> MipClock:
        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return self.original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t
                self.calls += 1

        self.planner._mip = timed
        return self

    def __exit__(self, *exc) -> None:
        self.planner._mip = self.original


# --- the city --------------------------------------------------------------------------------


def load_city(data: Path) -> dict:
    import shapely
    from shapely.geometry import shape

    kel = json.loads((data / "boundaries/dki_kelurahan_kemendagri.geojson").read_text())["features"]
    codes = [f["properties"]["kode_kel"] for f in kel]
    polys = np.array([shape(f["geometry"]) for f in kel], dtype=object)
    shapely.prepare(polys)
    pop_by_code = {}
    with open(data / "reference/dki_kelurahan_population_2014.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            pop_by_code[row["kode_kemendagri"]] = float(row["total"])
    population = np.array([pop_by_code.get(c, 0.0) for c in codes])
    area = np.array([float(f["properties"]["area_km2"]) for f in kel])
    cent = shapely.centroid(polys)
    rw = json.loads((data / "boundaries/dki_rw_osm2012_inasafe.geojson").read_text())["features"]
    rw_polys = np.array([shape(f["geometry"]) for f in rw], dtype=object)
    rw_cent = shapely.centroid(rw_polys)
    rw_key = [(f["properties"].get("kode_kel_kemendagri"), f["properties"].get("rw_no")) for f in rw]
    rw_flood = np.array([bool(f["properties"].get("floodprone")) for f in rw])
    return {"codes": codes, "polys": polys, "population": population, "area": area,
            "cent_lon": shapely.get_x(cent), "cent_lat": shapely.get_y(cent),
            "pop_matched": sum(c in pop_by_code for c in codes),
            "rw_key": rw_key, "rw_lon": shapely.get_x(rw_cent), "rw_lat": shapely.get_y(rw_cent),
            "rw_flood": rw_flood}


def uniform_in(rng: np.random.Generator, poly, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points uniformly inside ``poly`` (lon/lat; rejection in its bounding box)."""
    import shapely

    if n <= 0:
        return np.zeros(0), np.zeros(0)
    x0, y0, x1, y1 = poly.bounds
    out_x, out_y, have = [], [], 0
    while have < n:
        m = max(64, int((n - have) * 1.5 * (x1 - x0) * (y1 - y0) / max(poly.area, 1e-12)))
        x = rng.uniform(x0, x1, m)
        y = rng.uniform(y0, y1, m)
        keep = shapely.contains_xy(poly, x, y)
        out_x.append(x[keep])
        out_y.append(y[keep])
        have += int(keep.sum())
    return np.concatenate(out_x)[:n], np.concatenate(out_y)[:n]


def around_in(rng: np.random.Generator, poly, cx: np.ndarray, cy: np.ndarray, sigma_m: np.ndarray,
              tries: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """One point per centre, normally spread by ``sigma_m`` metres, kept inside ``poly``
    (redrawn up to ``tries`` times; what is still outside then falls uniformly inside)."""
    import shapely

    n = len(cx)
    x = np.empty(n)
    y = np.empty(n)
    todo = np.arange(n)
    kx = M_PER_DEG * np.cos(np.radians(cy))
    for _ in range(tries):
        if not len(todo):
            break
        px = cx[todo] + rng.normal(0, 1, len(todo)) * sigma_m[todo] / kx[todo]
        py = cy[todo] + rng.normal(0, 1, len(todo)) * sigma_m[todo] / M_PER_DEG
        inside = shapely.contains_xy(poly, px, py)
        x[todo[inside]] = px[inside]
        y[todo[inside]] = py[inside]
        todo = todo[~inside]
    if len(todo):
        x[todo], y[todo] = uniform_in(rng, poly, len(todo))
    return x, y


def build_large(city: dict, data: Path, *, demand: int, candidates: int, count: int, budget_mode: bool,
                hotspots: int, seed: int) -> tuple[dict, dict]:
    from siskamling.core.config import DEFAULT_CATEGORY_WEIGHTS

    rng = np.random.default_rng(seed)
    polys = city["polys"]
    n_kel = len(polys)
    # Real demand: fire-brigade incidents at their RW's centroid (else their kelurahan's).
    kel_index = {c: i for i, c in enumerate(city["codes"])}
    rw_at = {}
    for i, key in enumerate(city["rw_key"]):
        if key[0] and key[1] is not None:
            rw_at.setdefault((key[0], int(key[1])), i)
    inc_lon, inc_lat = [], []
    at_rw = at_kel = skipped = 0
    with open(data / "incidents/dki_damkar_incidents_2013_nopii.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            code = row["kode_kel_kemendagri"].strip()
            try:
                rw_no = int(row["rw"])
            except ValueError:
                rw_no = None
            if (code, rw_no) in rw_at:
                i = rw_at[(code, rw_no)]
                inc_lon.append(city["rw_lon"][i])
                inc_lat.append(city["rw_lat"][i])
                at_rw += 1
            elif code in kel_index:
                i = kel_index[code]
                inc_lon.append(city["cent_lon"][i])
                inc_lat.append(city["cent_lat"][i])
                at_kel += 1
            else:
                skipped += 1
    flood = np.flatnonzero(city["rw_flood"])
    n_syn = demand - len(inc_lon) - len(flood)
    # Synthetic reports: kelurahan in proportion to population, 70 % around hotspots.
    pop = city["population"]
    per_kel = rng.multinomial(n_syn, pop / pop.sum())
    hot_per_kel = (pop > 0).astype(int) + rng.multinomial(max(0, hotspots - int((pop > 0).sum())), pop / pop.sum())
    lon_parts, lat_parts, hot_parts = [], [], []
    for k in range(n_kel):
        n = int(per_kel[k])
        if n == 0:
            continue
        poly = polys[k]
        n_hot = int(rng.binomial(n, 0.7)) if hot_per_kel[k] else 0
        if n_hot:
            h = int(hot_per_kel[k])
            hx, hy = uniform_in(rng, poly, h)
            intensity = rng.lognormal(0.0, 1.0, h)
            sigma = rng.uniform(150.0, 300.0, h)
            which = rng.choice(h, size=n_hot, p=intensity / intensity.sum())
            px, py = around_in(rng, poly, hx[which], hy[which], sigma[which])
            lon_parts.append(px)
            lat_parts.append(py)
            hot_parts.append(np.ones(n_hot, dtype=bool))
        ux, uy = uniform_in(rng, poly, n - n_hot)
        lon_parts.append(ux)
        lat_parts.append(uy)
        hot_parts.append(np.zeros(n - n_hot, dtype=bool))
    syn_lon = np.concatenate(lon_parts)
    syn_lat = np.concatenate(lat_parts)
    syn_hot = np.concatenate(hot_parts)
    cats = list(CATEGORY_SHARE)
    share = np.array([CATEGORY_SHARE[c] for c in cats])
    cat = rng.choice(len(cats), size=n_syn, p=share / share.sum())
    syn_w = np.array([DEFAULT_CATEGORY_WEIGHTS[c] for c in cats])[cat]
    dem_lon = np.concatenate([syn_lon, inc_lon, city["rw_lon"][flood]])
    dem_lat = np.concatenate([syn_lat, inc_lat, city["rw_lat"][flood]])
    weight = np.concatenate([syn_w, np.full(len(inc_lon), INCIDENT_WEIGHT), np.full(len(flood), FLOOD_WEIGHT)])
    # Candidate sites: 40 % near hotspot demand, 60 % uniform over the city (by area).
    n_near = int(round(candidates * 0.4))
    hot_idx = np.flatnonzero(syn_hot)
    pick = rng.choice(hot_idx, size=n_near, replace=False)
    near_lat = syn_lat[pick] + rng.normal(0, 50.0, n_near) / M_PER_DEG
    near_lon = syn_lon[pick] + rng.normal(0, 50.0, n_near) / (M_PER_DEG * np.cos(np.radians(syn_lat[pick])))
    area = city["area"]
    per_kel_c = rng.multinomial(candidates - n_near, area / area.sum())
    cu_lon, cu_lat = [], []
    for k in np.flatnonzero(per_kel_c):
        x, y = uniform_in(rng, polys[k], int(per_kel_c[k]))
        cu_lon.append(x)
        cu_lat.append(y)
    cand_lon = np.concatenate([near_lon, *cu_lon])
    cand_lat = np.concatenate([near_lat, *cu_lat])
    if budget_mode:
        types = list(SITE_COSTS)
        cost = np.array([SITE_COSTS[t] for t in types])[rng.integers(0, len(types), candidates)]
        budget = count * BUDGET_PER_SITE
    else:
        cost = np.ones(candidates)
        budget = float(count)
    arrays = {"cand_lat": cand_lat, "cand_lon": cand_lon, "cost": cost, "dem_lat": dem_lat,
              "dem_lon": dem_lon, "weight": weight, "budget": budget}
    info = {"synthetic": n_syn, "hotspot_points": int(syn_hot.sum()), "hotspots": int(hot_per_kel.sum()),
            "incidents_rw": at_rw, "incidents_kel": at_kel, "incidents_skipped": skipped, "flood": len(flood),
            "near": n_near, "uniform": candidates - n_near,
            "weights": {c: DEFAULT_CATEGORY_WEIGHTS[c] for c in cats},
            "cat_counts": dict(zip(cats, np.bincount(cat, minlength=len(cats)).tolist(), strict=True))}
    return arrays, info


# --- commands --------------------------------------------------------------------------------


@click.group()
def cli() -> None:
    """Camera placement planner benchmarks."""


@cli.command()
@click.option("--candidates", default=5000, show_default=True)
@click.option("--demand", default=200_000, show_default=True, help="demand points in all (synthetic + real)")
@click.option("--radius", "radii", type=float, multiple=True, default=(200.0,), show_default=True,
              help="coverage radius in metres; repeat to run several on the same instance")
@click.option("--count", default=200, show_default=True, help="K sites (or, with --budget-mode, budget = K × 40 M Rp)")
@click.option("--budget-mode", is_flag=True, help="per-site-type costs of 35/45/60 M Rp instead of a count")
@click.option("--time-limit", default=60.0, show_default=True)
@click.option("--workers", default=0, show_default=True, help="passed to solve (0: the planner's default)")
@click.option("--hotspots", default=500, show_default=True, help="hotspot centres (at least one per kelurahan)")
@click.option("--seed", default=2026, show_default=True)
@click.option("--data", type=click.Path(path_type=Path), default=DATA, show_default=True)
def large(candidates: int, demand: int, radii: tuple[float, ...], count: int, budget_mode: bool, time_limit: float,
          workers: int, hotspots: int, seed: int, data: Path) -> None:
    """A Jakarta-sized instance: a plan within the time limit, with its gap."""
    from siskamling.placement.planner import Instance, coverage, greedy, solve

    header(f"Placement planner, large: {candidates:,} candidate sites, {demand:,} demand points, "
           + (f"budget {count} × {BUDGET_PER_SITE:g} M Rp, site costs {'/'.join(f'{v:g}' for v in SITE_COSTS.values())} M"
              if budget_mode else f"K = {count}") + f", time limit {time_limit:g} s" + (f", workers {workers}" if workers else ""))
    t0 = time.perf_counter()
    city = load_city(data)
    t_city = time.perf_counter() - t0
    arrays, info = build_large(city, data, demand=demand, candidates=candidates, count=count,
                               budget_mode=budget_mode, hotspots=hotspots, seed=seed)
    t_gen = time.perf_counter() - t0
    w = arrays["weight"]
    echo(f"  instance (seed {seed}), built in {t_gen:.1f} s (reading the data files {t_city:.1f} s); not timed below:")
    echo(f"    demand: {len(w):,} points, total weight {w.sum():,.1f}")
    echo(f"      {info['synthetic']:,} synthetic reports over {city['pop_matched']} kelurahan with population "
         f"({info['hotspot_points']:,} around {info['hotspots']} hotspots, the rest uniform); by category "
         + ", ".join(f"{c} {n:,} (w {info['weights'][c]:g})" for c, n in info["cat_counts"].items()))
    echo(f"      {info['incidents_rw'] + info['incidents_kel']:,} fire-brigade incidents 2013 (w {INCIDENT_WEIGHT:g}): "
         f"{info['incidents_rw']:,} at their RW's centroid, {info['incidents_kel']:,} at their kelurahan's; "
         f"{info['incidents_skipped']} without a kelurahan code skipped")
    echo(f"      {info['flood']:,} flood-prone RW centroids (w {FLOOD_WEIGHT:g})")
    cost = arrays["cost"]
    echo(f"    candidates: {candidates:,} ({info['near']:,} near hotspot demand, {info['uniform']:,} uniform by area); "
         + (f"costs {', '.join(f'{t} {v:g} M × {int((cost == v).sum()):,}' for t, v in SITE_COSTS.items())}, "
            f"budget {arrays['budget']:,.0f} M Rp" if budget_mode else f"K = {count}"))
    failed = False
    for radius in radii:
        inst = Instance(radius_m=radius, **arrays)
        echo()
        echo(f"  radius {radius:g} m")
        # The reference: coverage and the lazy greedy alone, on the same instance.
        t = time.perf_counter()
        cov = coverage(inst)
        t_cov = time.perf_counter() - t
        t = time.perf_counter()
        _, _, g_value, g_bound = greedy(cov, inst.cost, inst.budget)
        t_greedy = time.perf_counter() - t
        by_point_nnz = int((cov.matrix.multiply(cov.points_covered[np.newaxis, :])).sum())
        echo(f"    coverage matrix: {cov.matrix.shape[0]:,} sites × {cov.matrix.shape[1]:,} rows after merging "
             f"(from {int(cov.points_covered.sum()):,} coverable points), {cov.matrix.nnz:,} nonzeros "
             f"({by_point_nnz:,} site-point pairs before merging); uncoverable weight {cov.uncoverable_weight:,.1f} "
             f"({cov.uncoverable_weight / w.sum():.1%})")
        echo(f"    reference, greedy alone: coverage {t_cov:.2f} s + greedy {t_greedy:.2f} s = {t_cov + t_greedy:.2f} s; "
             f"value {g_value:,.1f} ({g_value / w.sum():.2%} of the weight), its own bound {g_bound:,.1f} "
             f"(gap {(g_bound - g_value) / g_bound:.2%})")
        t = time.perf_counter()
        lag = solve(inst, time_limit=time_limit, method="greedy", cov=cov, workers=workers)
        t_lag = time.perf_counter() - t
        echo(f"    reference, greedy + Lagrangian without the MIP (solve(method='greedy'), coverage given): "
             f"{t_lag:.2f} s; value {lag.value:,.1f}, bound {lag.bound:,.1f}, gap {lag.gap:.3%}")
        del cov
        with MipClock() as mip:
            t = time.perf_counter()
            cpu = time.process_time()
            res = solve(inst, time_limit=time_limit, method="auto", workers=workers)
            wall = time.perf_counter() - t
            cpu = time.process_time() - cpu
        spent = float(inst.cost[res.chosen].sum())
        echo(f"    solve(method='auto', time_limit={time_limit:g}), coverage included: wall {wall:.2f} s "
             f"(CPU {cpu:.1f} s, all threads); method {res.method}, status {res.status}"
             + (f"; in the MIP step (model + SCIP) {mip.seconds:.2f} s, before it {res.seconds - mip.seconds:.2f} s"
                if mip.calls else "; MIP not run"))
        echo(f"      value {res.value:,.1f} ({res.value / res.total_weight:.2%} of the weight), "
             f"{len(res.chosen)} sites, cost {spent:,.0f} of {inst.budget:,.0f}")
        echo(f"      bound {res.bound:,.1f}; gap {res.gap:.3%}")
        echo(f"      greedy value {res.greedy_value:,.1f}; greedy / best {res.greedy_value / res.value:.4f}")
        ok = wall <= TIME_TARGET_S and res.value > 0 and math.isfinite(res.gap)
        failed |= not ok
        echo(f"    target: a plan within {TIME_TARGET_S:g} s with its gap printed: {verdict(ok)} "
             f"({wall:.1f} s, gap {res.gap:.3%})")
    load = os.getloadavg()
    echo(f"  load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end")
    sys.exit(1 if failed else 0)


def build_small(rng: np.random.Generator, city: dict, *, candidates: int, demand: int, boxes: int,
                k: int, radius: float, area_km2: tuple[float, float]):
    """Demand and sites in one or two kelurahan-sized boxes side by side: a square of the area of a
    mainland kelurahan drawn among those of ``area_km2`` (km²), around its centroid; hotspots
    (150-300 m spread) for 70 % of the points, uniform for 30 %."""
    from siskamling.core.config import DEFAULT_CATEGORY_WEIGHTS
    from siskamling.placement.planner import Instance

    lo, hi = area_km2
    pool = [i for i, c in enumerate(city["codes"]) if not c.startswith("31.01") and lo <= city["area"][i] <= hi]
    kel = int(rng.choice(pool))
    side = math.sqrt(city["area"][kel]) * 1000
    width, height = side * boxes, side

    def clip_box(x, y):
        return (0 <= x) & (x <= width) & (0 <= y) & (y <= height)

    n_hot_centres = int(rng.integers(8, 16)) * boxes
    hx, hy = rng.uniform(0, width, n_hot_centres), rng.uniform(0, height, n_hot_centres)
    intensity = rng.lognormal(0.0, 1.0, n_hot_centres)
    sigma = rng.uniform(150.0, 300.0, n_hot_centres)
    n_hot = int(rng.binomial(demand, 0.7))
    which = rng.choice(n_hot_centres, size=n_hot, p=intensity / intensity.sum())
    x = np.empty(n_hot)
    y = np.empty(n_hot)
    todo = np.arange(n_hot)
    while len(todo):
        px = hx[which[todo]] + rng.normal(0, 1, len(todo)) * sigma[which[todo]]
        py = hy[which[todo]] + rng.normal(0, 1, len(todo)) * sigma[which[todo]]
        ok = clip_box(px, py)
        x[todo[ok]], y[todo[ok]] = px[ok], py[ok]
        todo = todo[~ok]
    x = np.concatenate([x, rng.uniform(0, width, demand - n_hot)])
    y = np.concatenate([y, rng.uniform(0, height, demand - n_hot)])
    cats = list(CATEGORY_SHARE)
    share = np.array([CATEGORY_SHARE[c] for c in cats])
    weight = np.array([DEFAULT_CATEGORY_WEIGHTS[c] for c in cats])[rng.choice(len(cats), size=demand, p=share)]
    n_near = int(round(candidates * 0.4))
    pick = rng.choice(n_hot, size=n_near, replace=False)
    cx = np.concatenate([x[pick] + rng.normal(0, 50.0, n_near), rng.uniform(0, width, candidates - n_near)])
    cy = np.concatenate([y[pick] + rng.normal(0, 50.0, n_near), rng.uniform(0, height, candidates - n_near)])
    lat0, lon0 = city["cent_lat"][kel], city["cent_lon"][kel]
    kx = M_PER_DEG * math.cos(math.radians(lat0))

    def to_ll(px, py):
        return lat0 + (py - height / 2) / M_PER_DEG, lon0 + (px - width / 2) / kx

    dlat, dlon = to_ll(x, y)
    clat, clon = to_ll(cx, cy)
    inst = Instance(cand_lat=clat, cand_lon=clon, cost=np.ones(candidates), dem_lat=dlat, dem_lon=dlon,
                    weight=weight, radius_m=radius, budget=float(k))
    return inst, city["codes"][kel], width, height


@cli.command()
@click.option("--instances", default=10, show_default=True)
@click.option("--candidates", default=300, show_default=True)
@click.option("--demand", default=5000, show_default=True)
@click.option("--radius", default=300.0, show_default=True)
@click.option("--counts", default="5,10,20", show_default=True, help="K per instance, in turn")
@click.option("--kelurahan-km2", default="4,9", show_default=True,
              help="the boxes take the area of a mainland kelurahan of this size (min,max km²)")
@click.option("--time-limit", default=60.0, show_default=True)
@click.option("--workers", default=0, show_default=True, help="passed to solve (0: the planner's default)")
@click.option("--seed", default=7, show_default=True)
@click.option("--data", type=click.Path(path_type=Path), default=DATA, show_default=True)
def small(instances: int, candidates: int, demand: int, radius: float, counts: str, kelurahan_km2: str,
          time_limit: float, workers: int, seed: int, data: Path) -> None:
    """Instances the MIP solves to optimality: the greedy's value as a ratio of the optimum."""
    from siskamling.placement.planner import GREEDY_GUARANTEE, coverage, greedy, solve

    ks = [int(v) for v in counts.split(",")]
    area = tuple(float(v) for v in kelurahan_km2.split(","))
    header(f"Placement planner, small: {instances} instances of {candidates} sites × {demand:,} demand points, "
           f"K in {{{', '.join(map(str, ks))}}}, radius {radius:g} m, method='mip', time limit {time_limit:g} s"
           + (f", workers {workers}" if workers else ""))
    city = load_city(data)
    echo(f"  each instance: one box (or two side by side) of the area of a mainland kelurahan of {area[0]:g}-{area[1]:g} km²")
    echo("  columns: merged demand rows and nonzeros of the coverage matrix; the greedy alone (value, time); "
         "solve(method='mip') with the coverage given (status, value, time in all and in the MIP step: model + SCIP); "
         "greedy / optimum; the bound greedy + Lagrangian prove without the MIP (solve(method='greedy')) / optimum")
    echo(f"  {'#':>2} {'box (kelurahan)':<24} {'K':>3} {'rows':>6} {'nnz':>7} {'greedy':>9} {'g ms':>5} "
         f"{'status':>8} {'optimum':>9} {'solve s':>7} {'MIP s':>6} {'greedy/opt':>10} {'L.bound/opt':>11}")
    ratios, lag_excess, mip_times, unproven = [], [], [], []
    started = time.perf_counter()
    for i in range(instances):
        rng = np.random.default_rng(seed * 1000 + i)
        k = ks[i % len(ks)]
        boxes = 1 + (i // len(ks)) % 2
        inst, code, width, height = build_small(rng, city, candidates=candidates, demand=demand, boxes=boxes,
                                                k=k, radius=radius, area_km2=area)
        cov = coverage(inst)
        t = time.perf_counter()
        _, _, g_value, _ = greedy(cov, inst.cost, inst.budget)
        t_greedy = time.perf_counter() - t
        lag = solve(inst, time_limit=time_limit, method="greedy", cov=cov, workers=workers)
        with MipClock() as mip:
            res = solve(inst, time_limit=time_limit, method="mip", cov=cov, workers=workers)
        box = f"{width / 1000:.1f}×{height / 1000:.1f} km ({code})"
        line = (f"  {i + 1:>2} {box:<24} {k:>3} {cov.matrix.shape[1]:>6,} {cov.matrix.nnz:>7,} {g_value:>9,.1f} "
                f"{t_greedy * 1000:>5.1f} {res.status:>8} "
                + (f"{res.value:>9,.1f}" if res.status == "optimal" else f"{'≤' + format(res.bound, ',.1f'):>9}")
                + f" {res.seconds:>7.2f} {mip.seconds:>6.2f}")
        if res.status == "optimal":
            ratio = res.greedy_value / res.value
            ratios.append(ratio)
            lag_excess.append(lag.bound / res.value)
            mip_times.append(mip.seconds)
            line += f" {ratio:>10.4f} {lag.bound / res.value:>11.4f}"
        else:
            # Not proven: the best plan found, and greedy / bound, a proven lower bound on greedy / optimum.
            unproven.append(res.greedy_value / res.bound)
            line += (f" {'≥' + format(res.greedy_value / res.bound, '.4f'):>10}   (best found {res.value:,.1f}, "
                     f"gap {res.gap:.2%})")
        echo(line)
    echo(f"  {instances} instances in {time.perf_counter() - started:.1f} s; proven optimal within {time_limit:g} s: "
         f"{len(ratios)} of {instances}")
    if ratios:
        echo(f"  greedy / optimum: min {min(ratios):.4f}, mean {sum(ratios) / len(ratios):.4f}, max {max(ratios):.4f}; "
             f"the greedy itself optimal: {sum(r >= 1 - 1e-9 for r in ratios)} of {len(ratios)}")
        echo(f"  greedy + Lagrangian bound / optimum (what the gap would say without the MIP): "
             f"min {min(lag_excess):.4f}, mean {sum(lag_excess) / len(lag_excess):.4f}, max {max(lag_excess):.4f}")
        echo(f"  MIP step (model + SCIP) on the instances proven optimal: median "
             f"{sorted(mip_times)[len(mip_times) // 2]:.2f} s, max {max(mip_times):.2f} s")
    if unproven:
        echo(f"  not proven optimal: {len(unproven)}; greedy / bound (a lower bound on greedy / optimum) "
             f"min {min(unproven):.4f}")
    worst = min(ratios + unproven) if ratios else float("nan")
    ok = bool(ratios) and worst >= GREEDY_GUARANTEE
    load = os.getloadavg()
    echo(f"  load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end")
    echo(f"  target: greedy / optimum printed for the instances solved to optimality and ≥ 1 - 1/e = "
         f"{GREEDY_GUARANTEE:.4f} on every instance (by the optimum, or by the bound where not proven): {verdict(ok)} "
         f"(lowest {worst:.4f})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    cli()
