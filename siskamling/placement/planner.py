"""The placement planner: choose camera sites that cover the most weighted demand (maximal
covering location problem, Church & ReVelle 1974) within a budget or a count.

A demand point (a report, an incident, a flood-prone RW) is *covered* when a chosen site lies
within the coverage radius. Three methods work together, and every result carries a proven
upper bound on the best possible value, hence its optimality gap:

- the **greedy** runs first, always: each round it takes the affordable site with the most newly
  covered weight per unit cost (lazily re-evaluated: a site's last gain bounds its gain now,
  coverage being submodular). With a count K, or equal costs, it is within (1 - 1/e) of the
  optimum (Nemhauser, Wolsey & Fisher 1978); with unequal costs the best single site is
  compared too (Khuller, Moss & Naor 1999);
- the **Lagrangian relaxation** of the coverage constraints, optimised by subgradient steps,
  gives the bound (usually within a few per cent of the optimum) and, on the way, plans of its
  own; each step is one sparse product, so it runs on inputs of any size;
- the **MIP** (SCIP, bundled with OR-Tools) solves the problem exactly within the time limit,
  started from the best plan in hand, for inputs up to a size it can handle (``auto``); beyond
  that the greedy and the Lagrangian plans are the answer, with the gap they prove.

Demand points covered by exactly the same set of candidates are merged first (their weights
summed): the solver sees one row per distinct coverage pattern, not per point, which is what
makes 200,000 points tractable.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

EARTH_M = 6_371_008.8
GREEDY_GUARANTEE = 1 - 1 / math.e


@dataclass
class Instance:
    """Candidate sites (position, cost) and demand points (position, weight)."""

    cand_lat: np.ndarray
    cand_lon: np.ndarray
    cost: np.ndarray  # one unit cost per site; all 1 for a plain count K
    dem_lat: np.ndarray
    dem_lon: np.ndarray
    weight: np.ndarray
    radius_m: float
    budget: float  # total cost allowed (K when the costs are all 1)

    def __post_init__(self) -> None:
        for name in ("cand_lat", "cand_lon", "cost", "dem_lat", "dem_lon", "weight"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=float))


@dataclass
class Coverage:
    """Which candidate covers which (merged) demand row: ``matrix`` is candidates × rows."""

    matrix: sparse.csr_matrix
    row_weight: np.ndarray
    points_covered: np.ndarray  # per merged row, how many demand points it stands for
    uncoverable_weight: float  # weight no candidate reaches


@dataclass
class Result:
    chosen: list[int]  # candidate indices, in the order the plan ranks them
    value: float  # weight covered
    bound: float  # proven upper bound on the best possible value
    method: str  # mip | greedy
    status: str  # optimal (proven) | feasible (gap to the bound) | greedy
    seconds: float
    greedy_value: float
    total_weight: float
    candidates: int = 0
    rows: int = 0
    gains: list[float] = field(default_factory=list)  # weight each chosen site adds, in order

    @property
    def gap(self) -> float:
        """Relative distance to the bound: 0 is proven optimal."""
        if self.bound <= 0:
            return 0.0
        return max(0.0, (self.bound - self.value) / self.bound)


def project(lat: np.ndarray, lon: np.ndarray, lat0: float, lon0: float) -> np.ndarray:
    """Local equirectangular metres: accurate to well under 0.1 % across a city."""
    k = EARTH_M * math.pi / 180
    return np.column_stack(((lon - lon0) * k * math.cos(math.radians(lat0)), (lat - lat0) * k))


def coverage(inst: Instance) -> Coverage:
    n_cand = len(inst.cand_lat)
    if n_cand == 0 or len(inst.dem_lat) == 0:
        return Coverage(sparse.csr_matrix((n_cand, 0)), np.zeros(0), np.zeros(0, dtype=np.int64),
                        float(inst.weight.sum()))
    lat0 = float(np.mean(inst.dem_lat))
    lon0 = float(np.mean(inst.dem_lon))
    tree = cKDTree(project(inst.dem_lat, inst.dem_lon, lat0, lon0))
    hits = tree.query_ball_point(project(inst.cand_lat, inst.cand_lon, lat0, lon0), r=inst.radius_m)
    indptr = np.zeros(n_cand + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(h) for h in hits])
    indices = np.fromiter((i for h in hits for i in h), dtype=np.int64, count=int(indptr[-1]))
    by_point = sparse.csr_matrix((np.ones(len(indices), dtype=np.int8), indices, indptr),
                                 shape=(n_cand, len(inst.dem_lat))).tocsc()
    by_point.sort_indices()
    # Merge points with the same covering set: one row per distinct pattern.
    patterns: dict[bytes, int] = {}
    row_of = np.full(len(inst.dem_lat), -1, dtype=np.int64)
    ptr, idx = by_point.indptr, by_point.indices.astype(np.int64)
    for p in range(len(inst.dem_lat)):
        start, end = ptr[p], ptr[p + 1]
        if start == end:
            continue
        key = idx[start:end].tobytes()
        row = patterns.get(key)
        if row is None:
            row = patterns[key] = len(patterns)
        row_of[p] = row
    covered = row_of >= 0
    n_rows = len(patterns)
    row_weight = np.bincount(row_of[covered], weights=inst.weight[covered], minlength=n_rows)
    points = np.bincount(row_of[covered], minlength=n_rows)
    # candidates × rows, from the points' covering sets.
    rows_idx, cols_idx = [], []
    for key, row in patterns.items():
        cands = np.frombuffer(key, dtype=np.int64)
        rows_idx.append(cands)
        cols_idx.append(np.full(len(cands), row, dtype=np.int64))
    if n_rows:
        r = np.concatenate(rows_idx)
        c = np.concatenate(cols_idx)
    else:
        r = c = np.zeros(0, dtype=np.int64)
    matrix = sparse.csr_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(n_cand, n_rows))
    return Coverage(matrix, row_weight, points, float(inst.weight[~covered].sum()))


def _knapsack_bound(gains: np.ndarray, costs: np.ndarray, budget: float) -> float:
    """The fractional knapsack of the gains within the budget: an upper bound on what any set of
    sites within the budget can add."""
    if budget <= 0 or len(gains) == 0:
        return 0.0
    order = np.argsort(-(gains / costs), kind="stable")
    g, c = gains[order], costs[order]
    spent = np.cumsum(c)
    full = spent <= budget
    total = float(g[full].sum())
    k = int(full.sum())
    if k < len(g):
        left = budget - (spent[k - 1] if k else 0.0)
        total += float(g[k]) * left / float(c[k])
    return total


def greedy(cov: Coverage, cost: np.ndarray, budget: float) -> tuple[list[int], list[float], float, float]:
    """Lazy greedy by gain per cost. Returns (chosen, gains, value, online upper bound)."""
    matrix = cov.matrix
    weight = cov.row_weight.copy()  # zeroed as rows get covered
    cost = np.asarray(cost, dtype=float)
    n = matrix.shape[0]
    ptr, idx = matrix.indptr, matrix.indices
    gain = np.array([weight[idx[ptr[j]:ptr[j + 1]]].sum() for j in range(n)]) if n else np.zeros(0)
    affordable = cost <= budget
    bound = _knapsack_bound(gain[affordable], cost[affordable], budget)
    heap = [(-gain[j] / cost[j], j) for j in range(n) if affordable[j] and gain[j] > 0]
    heapq.heapify(heap)
    stale = gain.copy()  # last evaluated gain of each site: an upper bound on its gain now
    chosen: list[int] = []
    gains: list[float] = []
    value = 0.0
    left = budget
    while heap:
        neg_ratio, j = heapq.heappop(heap)
        if cost[j] > left:
            continue
        rows = idx[ptr[j]:ptr[j + 1]]
        g = float(weight[rows].sum())
        stale[j] = g
        if g <= 0:
            continue
        if heap and g / cost[j] < -heap[0][0] - 1e-12:
            heapq.heappush(heap, (-g / cost[j], j))  # no longer the best: evaluate it again later
            continue
        chosen.append(int(j))
        gains.append(g)
        value += g
        left -= cost[j]
        weight[rows] = 0
        stale[j] = 0
        if len(chosen) % 8 == 0:
            # Every site not chosen counts here, those dropped for no longer fitting what is left of
            # the budget too: an optimal plan may well contain them.
            bound = min(bound, value + _remaining_bound(stale, cost, chosen, budget))
    bound = min(bound, value + _remaining_bound(stale, cost, chosen, budget))
    # Unequal costs: the best single site may beat the ratio greedy (Khuller, Moss & Naor).
    single = np.where(affordable, gain, -1.0)
    if n and single.max() > value:
        j = int(single.argmax())
        return [j], [float(gain[j])], float(gain[j]), max(bound, float(gain[j]))
    return chosen, gains, value, max(bound, value)


def _remaining_bound(stale: np.ndarray, cost: np.ndarray, chosen: list[int], budget: float) -> float:
    mask = cost <= budget
    mask[chosen] = False
    return _knapsack_bound(stale[mask], cost[mask], budget)


def lagrangian(cov: Coverage, cost: np.ndarray, budget: float, result: Result, *, deadline: float,
               iterations: int = 3000) -> None:
    """Tightens ``result.bound`` by subgradient optimisation of the Lagrangian relaxation of the
    coverage constraints (Galvão & ReVelle 1996): for multipliers 0 <= l_r <= w_r,
    L(l) = sum(w_r - l_r) + max { sum_j (sum_r a_rj l_r) x_j : sum_j c_j x_j <= budget, 0 <= x <= 1 }
    is an upper bound on the optimum for every l; the search drives it down. Each step is one
    sparse product, so it runs on inputs far too large for the MIP. The integer part of each
    step's x is also a plan, kept when it beats the one in hand."""
    matrix = cov.matrix.tocsr().astype(np.float64)
    w = cov.row_weight
    n, m = matrix.shape
    if n == 0 or m == 0:
        return
    at = matrix.T.tocsr()
    affordable = cost <= budget + 1e-9
    idx_aff = np.flatnonzero(affordable)
    covers = np.asarray(matrix.sum(axis=0)).ravel()
    lam = w / np.maximum(covers, 1.0)  # each row's weight shared among the sites covering it
    best = result.bound
    theta = 2.0
    since_better = 0
    lower = max(result.value, 1e-9)
    for _ in range(iterations):
        if time.perf_counter() > deadline:
            break
        values = matrix @ lam
        order = idx_aff[np.argsort(-(values[idx_aff] / cost[idx_aff]), kind="stable")]
        spent = np.cumsum(cost[order])
        whole = order[spent <= budget + 1e-9]
        x = np.zeros(n)
        x[whole] = 1.0
        k = len(whole)
        if k < len(order) and values[order[k]] > 0:
            x[order[k]] = (budget - (spent[k - 1] if k else 0.0)) / cost[order[k]]
        x[values <= 0] = 0.0
        bound = float((w - lam).sum() + values @ x)
        if bound < best - 1e-9:
            best, since_better = bound, 0
        else:
            since_better += 1
            if since_better >= 20:
                theta, since_better = theta / 2, 0
                if theta < 1e-4:
                    break
        if len(whole):
            value = value_of(cov, [int(j) for j in whole])
            if value > result.value + 1e-9:
                result.chosen = _rank(cov, [int(j) for j in whole])
                result.gains = _gains(cov, result.chosen)
                result.value = lower = value
        y = (w - lam > 1e-12).astype(float)
        g = at @ x - y  # subgradient of L at lam (L decreases along -g)
        norm = float(g @ g)
        if norm <= 1e-12 or best - lower <= 1e-9 * max(1.0, best):
            break
        lam = np.clip(lam - theta * (bound - lower) / norm * g, 0.0, w)
    result.bound = min(result.bound, max(best, result.value))


def value_of(cov: Coverage, chosen: list[int]) -> float:
    if not chosen:
        return 0.0
    rows = np.unique(cov.matrix[chosen].indices)
    return float(cov.row_weight[rows].sum())


def solve(inst: Instance, *, time_limit: float = 60.0, method: str = "auto", workers: int = 0,
          max_solver_nonzeros: int = 200_000, cov: Coverage | None = None) -> Result:
    """Best plan found within ``time_limit`` seconds. ``method``: auto (the MIP unless the
    coverage matrix has more than ``max_solver_nonzeros`` entries, then the greedy), mip or
    greedy. Either way the Lagrangian bound tightens the proven bound behind the gap."""
    started = time.perf_counter()
    cov = cov or coverage(inst)
    total = float(inst.weight.sum())
    chosen, gains, g_value, g_bound = greedy(cov, inst.cost, inst.budget)
    result = Result(chosen=chosen, value=g_value, bound=g_bound, method="greedy", status="greedy",
                    seconds=0.0, greedy_value=g_value, total_weight=total, candidates=cov.matrix.shape[0],
                    rows=cov.matrix.shape[1], gains=gains)
    lagrangian(cov, np.asarray(inst.cost, dtype=float), inst.budget, result,
               deadline=started + min(time_limit * 0.25, 15.0))
    if method == "auto":
        method = "mip" if cov.matrix.nnz <= max_solver_nonzeros else "greedy"
    left = time_limit - (time.perf_counter() - started)
    if method != "greedy" and cov.matrix.shape[1] and left > 0.5 and result.gap > 1e-9:
        _mip(inst, cov, result, started + time_limit, workers)
    elif result.gap <= 1e-9:
        result.status = "optimal"  # the greedy met its own bound
    result.seconds = time.perf_counter() - started
    return result


def _mip(inst: Instance, cov: Coverage, result: Result, deadline: float, workers: int) -> None:
    """The exact model as a mixed-integer program, solved by SCIP (bundled with OR-Tools):
    x_j in {0,1} per site, 0 <= y_r <= 1 per demand row, y_r <= sum of the x_j covering it,
    sum cost_j x_j <= budget, maximise sum weight_r y_r. Its LP relaxation is close to the
    optimum on city-like instances (not always tight), so branch and bound usually closes the gap
    quickly; CP-SAT, tried first, did not move from the greedy's plan on the same inputs.

    SCIP runs on one thread by default: with two it switches to its concurrent mode, which was
    slower here and sometimes stopped early (google/or-tools#2210)."""
    from ortools.linear_solver import pywraplp

    solver = pywraplp.Solver.CreateSolver("SCIP")
    if solver is None:  # pragma: no cover - OR-Tools wheels ship SCIP
        return
    matrix = cov.matrix.tocsc()
    cost = np.asarray(inst.cost, dtype=float)
    n = matrix.shape[0]
    usable = np.array([cost[j] <= inst.budget + 1e-9 and cov.matrix.indptr[j + 1] > cov.matrix.indptr[j]
                       for j in range(n)], dtype=bool)
    x = {int(j): solver.BoolVar(f"x{j}") for j in np.flatnonzero(usable)}
    objective = solver.Objective()
    y_vars: list[tuple[int, object]] = []
    for r in range(matrix.shape[1]):
        if cov.row_weight[r] <= 0:
            continue
        sites = [x[j] for j in matrix.indices[matrix.indptr[r]:matrix.indptr[r + 1]] if j in x]
        if not sites:
            continue
        y = solver.NumVar(0, 1, f"y{r}")
        y_vars.append((r, y))
        row = solver.Constraint(-solver.infinity(), 0)
        row.SetCoefficient(y, 1)
        for v in sites:
            row.SetCoefficient(v, -1)
        objective.SetCoefficient(y, float(cov.row_weight[r]))
    objective.SetMaximization()
    budget = solver.Constraint(0, float(inst.budget))
    for j, v in x.items():
        budget.SetCoefficient(v, float(cost[j]))
    # The plan in hand as a complete starting solution (sites and the rows they cover): SCIP
    # ignores a partial one.
    chosen = set(result.chosen)
    covered = np.zeros(matrix.shape[1], dtype=bool)
    if chosen:
        covered[cov.matrix[sorted(chosen)].indices] = True
    hint_vars = list(x.values()) + [y for _r, y in y_vars]
    hint_values = [1.0 if j in chosen else 0.0 for j in x] + [1.0 if covered[r] else 0.0 for r, _y in y_vars]
    solver.SetHint(hint_vars, hint_values)
    # Building the model took time too: the solver gets what is left until the deadline.
    # SCIP overruns its limit a little, and ranking its plan takes a moment: keep a margin.
    left = deadline - time.perf_counter()
    left -= max(1.0, 0.08 * left)
    if left < 0.5:
        return
    solver.SetTimeLimit(int(left * 1000))
    solver.SetNumThreads(workers or 1)
    status = solver.Solve()
    if status not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
        return
    picked = [j for j, v in x.items() if v.solution_value() > 0.5]
    _take(cov, result, picked, objective.BestBound(), "mip", status == pywraplp.Solver.OPTIMAL)


def _take(cov: Coverage, result: Result, picked: list[int], bound: float, method: str, optimal: bool) -> None:
    """Keeps the solver's answer when it is at least as good as the greedy's, and its bound."""
    value = value_of(cov, picked)
    result.method = method
    if value >= result.value - 1e-9:
        result.chosen = _rank(cov, picked)
        result.gains = _gains(cov, result.chosen)
        result.value = value
    result.bound = min(result.bound, max(bound, result.value))
    result.status = "optimal" if optimal else "feasible"
    if optimal:
        result.bound = result.value


def _rank(cov: Coverage, picked: list[int]) -> list[int]:
    """The solver's sites in greedy order (most new weight first): a budget cut short keeps
    the best part of the plan."""
    weight = cov.row_weight.copy()
    ptr, idx = cov.matrix.indptr, cov.matrix.indices
    left, out = set(picked), []
    while left:
        j = max(left, key=lambda k: (weight[idx[ptr[k]:ptr[k + 1]]].sum(), -k))
        out.append(j)
        weight[idx[ptr[j]:ptr[j + 1]]] = 0
        left.remove(j)
    return out


def _gains(cov: Coverage, order: list[int]) -> list[float]:
    weight = cov.row_weight.copy()
    ptr, idx = cov.matrix.indptr, cov.matrix.indices
    out = []
    for j in order:
        rows = idx[ptr[j]:ptr[j + 1]]
        out.append(float(weight[rows].sum()))
        weight[rows] = 0
    return out

