"""The integer linear program that picks the cheapest mix of instances.

Variables
  n_c ∈ ℤ≥0        instances of candidate c (accelerator × TP/PP/EP × role)
  x_cb ∈ [0,1]     share of bucket b's rate served by colocated candidate c
  y_pb, z_db ≥ 0   share of bucket b served disaggregated: prefill on p, decode on d
  u_c ∈ {0,1}      candidate c is used (only with N+k redundancy)

Objective  min Σ_c w_c·n_c  with w_c the instance's $/hour (or GPUs, or watts; a 1e-6·cost
           tie-break keeps the cheapest among equals)

Constraints
  coverage       Σ_c x_cb + Σ_p y_pb = 1                       every bucket fully served
  pairing        Σ_p y_pb = Σ_d z_db                           a disaggregated share needs both pools
  capacity       Σ_b λ_b·x_cb / cap_cb ≤ n_c − k·u_c            (y, z alike for the pools)
  used           n_c ≤ M_c·u_c, M_c = ⌈Σ_b λ_b/cap_cb⌉ + k + 1   (only with k spare instances)
  availability   Σ_{c on type g} gpus_c·n_c ≤ A_g
  budget         Σ_c price_c·n_c ≤ B

Before solving, candidates dominated by another of the same type and role (no more capacity in
any bucket at no less price, GPUs or watts) are dropped; that cannot change the optimum.

Linear load: an instance's busy share is the sum over buckets of rate / capacity, as if it
time-shared between request sizes. This is exact for throughput-bound instances and safe
for latency (each capacity already meets the SLO at that size alone); it is optimistic
only when one instance mixes very different sizes whose prefills interfere, which the
per-bucket TTFT checks in the report flag. Only instance counts are integer: bucket splits
stay continuous (Mélange-style slices without binaries), which keeps the MILP small; it is
solved by HiGHS in-process when ``highspy`` is installed, else by CBC.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import pulp

from planner.optimise.candidates import Candidate

STATUS = {pulp.LpSolutionOptimal: "optimal", pulp.LpSolutionIntegerFeasible: "feasible",
          pulp.LpSolutionInfeasible: "infeasible", pulp.LpSolutionUnbounded: "unbounded",
          pulp.LpSolutionNoSolutionFound: "no solution found"}


@dataclass(frozen=True)
class Solution:
    status: str
    objective: float | None
    counts: dict[str, int] = field(default_factory=dict)
    shares: dict[tuple[str, int], float] = field(default_factory=dict)
    load: dict[str, float] = field(default_factory=dict)
    lp_bound: float | None = None
    solve_s: float = 0.0
    time_limited: bool = False

    @property
    def ok(self) -> bool:
        return self.status in ("optimal", "feasible")

    @property
    def gap(self) -> float | None:
        """Relative gap to the LP-relaxation bound (an upper bound on the true optimality gap)."""
        if self.objective is None or self.lp_bound is None or self.objective <= 0:
            return None
        return max(0.0, (self.objective - self.lp_bound) / self.objective)


def prune_dominated(cands: list[Candidate]) -> list[Candidate]:
    """Drop a candidate when another of the same accelerator type and role has at least its capacity
    in every bucket at no more price, GPUs and watts: any plan using it can swap in the other at no
    extra cost on every objective and constraint (availability counts GPUs per type), so the optimum
    is unchanged while the MILP shrinks."""
    keep = []
    for a in cands:
        dominated = False
        for b in cands:
            if b is a or b.acc.id != a.acc.id or b.role != a.role:
                continue
            if (b.price_per_hour <= a.price_per_hour and b.gpus <= a.gpus and b.watts <= a.watts
                    and all(cb >= ca for cb, ca in zip(b.capacity_rps, a.capacity_rps))):
                strictly = (b.price_per_hour < a.price_per_hour or b.gpus < a.gpus
                            or any(cb > ca for cb, ca in zip(b.capacity_rps, a.capacity_rps)))
                if strictly or b.key < a.key:  # identical twins: keep one
                    dominated = True
                    break
        if not dominated:
            keep.append(a)
    return keep


def weight(c: Candidate, objective: str) -> float:
    if objective == "gpus":
        return c.gpus + 1e-6 * c.price_per_hour
    if objective == "power":
        return c.watts + 1e-6 * c.price_per_hour
    return c.price_per_hour


def _solver(time_limit_s: float, gap_rel: float = 0.0) -> pulp.LpSolver:
    if "HiGHS" in pulp.listSolvers(onlyAvailable=True):
        return pulp.getSolver("HiGHS", msg=False, timeLimit=time_limit_s, gapRel=gap_rel)
    return pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s, gapRel=gap_rel)


def solve(cands: list[Candidate], rates: list[float], *, objective: str = "cost",
          availability: dict[str, int] | None = None, budget: float | None = None, spare: int = 0,
          allow: Callable[[Candidate], bool] | None = None, time_limit_s: float = 60.0,
          relax: bool = False, gap_rel: float = 0.0) -> Solution:
    """Build and solve the ILP over the candidates ``allow`` admits (see the module docstring)."""
    with warnings.catch_warnings():  # PuLP 3.x announces its 4.0 API on every variable
        warnings.simplefilter("ignore", DeprecationWarning)
        return _solve(cands, rates, objective, availability, budget, spare, allow, time_limit_s, relax, gap_rel)


def _solve(cands: list[Candidate], rates: list[float], objective: str, availability: dict[str, int] | None,
           budget: float | None, spare: int, allow: Callable[[Candidate], bool] | None, time_limit_s: float,
           relax: bool, gap_rel: float) -> Solution:
    t0 = time.perf_counter()
    cs = [c for c in cands if max(c.capacity_rps, default=0.0) > 0 and (allow is None or allow(c))]
    if len({c.key for c in cs}) != len(cs):
        raise ValueError("ilp.solve: candidate keys must be unique (one variable per candidate)")
    cs = prune_dominated(cs)
    nb = len(rates)
    prob = pulp.LpProblem("capacity_plan", pulp.LpMinimize)
    cat = "Continuous" if relax else "Integer"
    n = {c.key: pulp.LpVariable(f"n_{i}", lowBound=0, cat=cat) for i, c in enumerate(cs)}
    share: dict[tuple[str, int], pulp.LpVariable] = {}
    for i, c in enumerate(cs):
        for b in range(nb):
            if c.capacity_rps[b] > 0 and rates[b] > 0:
                share[(c.key, b)] = pulp.LpVariable(f"s_{i}_{b}", lowBound=0, upBound=1)
    prob += pulp.lpSum(weight(c, objective) * n[c.key] for c in cs)
    for b in range(nb):
        if rates[b] <= 0:
            continue
        colo = [share[(c.key, b)] for c in cs if c.role == "colocated" and (c.key, b) in share]
        pre = [share[(c.key, b)] for c in cs if c.role == "prefill" and (c.key, b) in share]
        dec = [share[(c.key, b)] for c in cs if c.role == "decode" and (c.key, b) in share]
        prob += pulp.lpSum(colo) + pulp.lpSum(pre) == 1, f"cover_{b}"
        prob += pulp.lpSum(pre) == pulp.lpSum(dec), f"pair_{b}"
    used = {}
    for i, c in enumerate(cs):
        load = pulp.lpSum(rates[b] / c.capacity_rps[b] * share[(c.key, b)] for b in range(nb) if (c.key, b) in share)
        if spare and not relax:
            # big-M: no optimum runs more instances of c than it would need to carry every bucket alone
            big_m = math.ceil(sum(rates[b] / c.capacity_rps[b] for b in range(nb) if (c.key, b) in share)) + spare + 1
            used[c.key] = pulp.LpVariable(f"u_{i}", cat="Binary")
            prob += n[c.key] <= big_m * used[c.key], f"used_{i}"
            prob += load <= n[c.key] - spare * used[c.key], f"cap_{i}"
        else:
            prob += load <= n[c.key], f"cap_{i}"
    for acc_id, limit in (availability or {}).items():
        on_type = [c for c in cs if c.acc.id == acc_id]
        if on_type:
            prob += pulp.lpSum(c.gpus * n[c.key] for c in on_type) <= limit, f"avail_{acc_id}"
    if budget is not None:
        prob += pulp.lpSum(c.price_per_hour * n[c.key] for c in cs) <= budget, "budget"
    if not cs:
        return Solution("infeasible", None, solve_s=time.perf_counter() - t0)
    try:
        prob.solve(_solver(time_limit_s, gap_rel))
    except Exception:  # noqa: BLE001 - a solver interface failing on extreme numbers: retry with CBC
        try:
            prob.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s))
        except Exception:  # noqa: BLE001
            return Solution("solver error", None, solve_s=time.perf_counter() - t0)
    elapsed = time.perf_counter() - t0
    status = STATUS.get(prob.sol_status, "no solution found")
    # CBC stopped by its time limit can report problem status "Optimal": trust the solution status.
    time_limited = elapsed >= time_limit_s * 0.98 or prob.sol_status == pulp.LpSolutionIntegerFeasible
    if status == "optimal" and time_limited and not relax:
        status = "feasible"
    if status not in ("optimal", "feasible"):
        return Solution(status, None, solve_s=elapsed, time_limited=time_limited)
    counts = {k: int(round(v.value() or 0)) if not relax else float(v.value() or 0) for k, v in n.items()}
    shares = {k: float(v.value() or 0.0) for k, v in share.items() if (v.value() or 0.0) > 1e-9}
    loads = {}
    for c in cs:
        loads[c.key] = sum(rates[b] / c.capacity_rps[b] * shares.get((c.key, b), 0.0) for b in range(nb)
                           if c.capacity_rps[b] > 0)
    obj = float(pulp.value(prob.objective) or 0.0)
    return Solution(status, obj, {k: v for k, v in counts.items() if v}, shares, loads, solve_s=elapsed,
                    time_limited=time_limited)
