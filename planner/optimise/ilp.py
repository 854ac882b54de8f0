"""The integer linear program that picks the cheapest mix of instances, from a capacity table alone.

Variables (``k`` ranges over input-length classes: the buckets' ISL ranges)
  n_c ∈ ℤ≥0        instances of candidate c (accelerator × TP/PP/EP × role)
  x_ck ∈ [0,1]     share of input class k routed to colocated candidate c
  y_pk, z_dk ≥ 0   share of class k served disaggregated: prefill on p, decode on d
  u_c ∈ {0,1}      candidate c is used (with N+k redundancy, or when its type has fleet tiers)

A router sees a request's prompt, not its answer, so shares are per input class: every output
bucket of one input class splits alike, and a candidate takes a class only if it meets the SLO
for every bucket in it.

Objective  min Σ_c w_c·n_c  with w_c the instance's $/hour (or GPUs, or watts, with a 1e-6·cost
           tie-break); energy: min Σ_c [P_idle,c·n_c + (TDP_c − P_idle,c)·ρ·load_c], ρ the target
           utilisation (planner.energy: idle draw of every instance, dynamic draw by its busy share)

Constraints
  coverage       Σ_c x_ck + Σ_p y_pk = 1                       every class fully served
  pairing        Σ_{p of vendor v} y_pk = Σ_{d of vendor v} z_dk  KV moves only within a vendor's
                                                                 transport (NIXL/NCCL, RCCL, HCCL)
  capacity       Σ_b λ_b·s_{c,k(b)} / cap_cb ≤ n_c − spare·u_c
  used           n_c ≤ M_c·u_c, M_c = max(⌈Σ_b λ_b/cap_cb⌉, pool_c) + spare + 1
  fleet tier     n_c ≥ (pool_c + spare)·u_c                    a row whose capacity assumes pool_c instances
                                                                behind one balancer needs that many
  one tier       Σ_{rows c of one instance type} u_c ≤ 1       one group (one balancer) per type
  availability   Σ_{c on type g} gpus_c·n_c ≤ A_g
  budget         Σ_c price_c·n_c ≤ B

Before solving, candidates dominated by another of the same type and role (no more capacity in
any bucket at no less price, GPUs or watts) are dropped; that cannot change the optimum.

Linear load: an instance's busy share is the sum over buckets of rate / capacity, as if it
time-shared between request sizes (exact for throughput-bound instances, safe for latency since
each capacity meets the SLO at that size alone). Only instance counts are integer. HiGHS runs
in-process (its banner is kept off standard output); CBC is the fallback with the same gap.

Building blocks: ``add_table`` adds one table's variables and constraints, ``add_shared`` the
availability and budget rows, ``part_solution`` reads one table's plan back; ``solve`` is the three
on one table, ``planner.optimise.multi.solve_joint`` the same on several tables sharing the limits.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pulp

from planner.capacity import CandidateInfo, CapacityTable
from planner.optimise.quiet import quiet_stdout

OBJECTIVES = ("cost", "gpus", "power", "energy")
TINY_LOAD = 1e-3
"""A load coefficient (rate / capacity) below which a routed share also forces an instance (``add_table``)."""
# PuLP 3.x announces its 4.0 API on every variable; solves run in threads, where catch_warnings is not safe
warnings.filterwarnings("ignore", message=".*deprecated; in PuLP 4.0.*", category=DeprecationWarning)


@dataclass(frozen=True)
class Limits:
    """What the plan must respect besides the SLO (already in the table) and how to solve it."""

    objective: str = "cost"
    availability: dict[str, int] = field(default_factory=dict)
    budget_per_hour: float | None = None
    spare_instances: int = 0
    time_limit_s: float = 60.0
    gap_rel: float = 0.002
    cross_vendor_kv: bool = False
    """Allow a prefill pool of one vendor to feed a decode pool of another (no engine ships that)."""
    idle_fraction: float = 0.15
    """Idle power as a share of TDP, for ``objective: energy`` (``planner.energy``)."""


class Outcome:
    """What every solve reports from its ``status``, ``objective`` and ``bound``: whether it has a plan,
    and the measured relative gap between the plan and the solver's best bound."""

    status: str
    objective: float | None
    bound: float | None

    @property
    def ok(self) -> bool:
        return self.status in ("optimal", "feasible")

    @property
    def gap(self) -> float | None:
        if self.objective is None or self.bound is None or self.objective <= 0:
            return None
        return max(0.0, (self.objective - self.bound) / self.objective)


@dataclass(frozen=True)
class Solution(Outcome):
    """``status``: optimal, feasible (stopped at the time limit with a plan), time limit (stopped
    before any plan was found), infeasible, or solver error. ``gap`` is the solver's measured
    relative gap between the plan and its best bound."""

    status: str
    objective: float | None
    counts: dict[str, int] = field(default_factory=dict)
    shares: dict[tuple[str, int], float] = field(default_factory=dict)
    load: dict[str, float] = field(default_factory=dict)
    bound: float | None = None
    solve_s: float = 0.0


def input_classes(table: CapacityTable) -> list[list[int]]:
    """Bucket indices grouped by input-length range, in order of first appearance."""
    order: dict[tuple[int, int], list[int]] = {}
    for b in table.buckets:
        order.setdefault((b.isl_lo, b.isl_hi), []).append(b.index)
    return list(order.values())


def prune_dominated(table: CapacityTable, idx: list[int]) -> list[int]:
    """Drop a candidate when another of the same accelerator type and role has at least its capacity
    in every bucket at no more price, GPUs and watts: any plan using it can swap in the other at no
    extra cost on every objective and constraint, so the optimum is unchanged."""
    cap = table.capacity_rps
    keep = []
    for a in idx:
        ca = table.candidates[a]
        dominated = False
        for b in idx:
            cb = table.candidates[b]
            if b == a or cb.accelerator != ca.accelerator or cb.role != ca.role:
                continue
            if (cb.price_per_hour <= ca.price_per_hour and cb.gpus <= ca.gpus and cb.watts <= ca.watts
                    and cb.pool <= ca.pool and np.all(cap[b] >= cap[a])):
                strictly = (cb.price_per_hour < ca.price_per_hour or cb.gpus < ca.gpus or cb.pool < ca.pool
                            or np.any(cap[b] > cap[a]))
                if strictly or cb.key < ca.key:  # identical twins: keep one
                    dominated = True
                    break
        if not dominated:
            keep.append(a)
    return keep


def weight(c: CandidateInfo, objective: str, idle_fraction: float = 0.15) -> float:
    if objective == "energy":  # the idle part; the dynamic part is added on the load (see _solve)
        return idle_fraction * c.watts + 1e-6 * c.price_per_hour
    if objective == "gpus":
        return c.gpus + 1e-6 * c.price_per_hour
    if objective == "power":
        return c.watts + 1e-6 * c.price_per_hour
    return c.price_per_hour


def _solver(time_limit_s: float, gap_rel: float) -> pulp.LpSolver:
    if "HiGHS" in pulp.listSolvers(onlyAvailable=True):
        return pulp.getSolver("HiGHS", msg=False, timeLimit=time_limit_s, gapRel=gap_rel)
    return pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s, gapRel=gap_rel)


def solve(table: CapacityTable, rates: list[float], limits: Limits | None = None, *,
          allow: Callable[[CandidateInfo], bool] | None = None, relax: bool = False) -> Solution:
    """Build and solve the ILP over the candidates ``allow`` admits (see the module docstring)."""
    limits = limits or Limits()
    with warnings.catch_warnings():  # PuLP 3.x announces its 4.0 API on every variable
        warnings.simplefilter("ignore", DeprecationWarning)
        return _solve(table, rates, limits, allow, relax)


def _solve(table: CapacityTable, rates: list[float], limits: Limits,
           allow: Callable[[CandidateInfo], bool] | None, relax: bool) -> Solution:
    t0 = time.perf_counter()
    prob = pulp.LpProblem("capacity_plan", pulp.LpMinimize)
    part = add_table(prob, table, rates, limits, allow, relax)
    prob += part.objective
    add_shared(prob, [part], limits)
    if not part.idx:
        return Solution("infeasible", None, solve_s=time.perf_counter() - t0)
    status, bound = _run(prob, limits, relax)
    elapsed = time.perf_counter() - t0
    if status not in ("optimal", "feasible"):
        return Solution(status, None, solve_s=elapsed)
    obj = float(pulp.value(prob.objective) or 0.0)
    if status == "optimal" and bound is None:
        bound = obj
    return part_solution(part, status, obj, bound, elapsed, relax)


@dataclass(frozen=True)
class Part:
    """One capacity table's variables inside a (possibly joint) problem: what ``add_shared`` couples and
    ``part_solution`` reads back."""

    table: CapacityTable
    rates: list[float]
    idx: list[int]
    classes: list[list[int]]
    n: dict[int, pulp.LpVariable]
    share: dict[tuple[int, int], pulp.LpVariable]
    objective: pulp.LpAffineExpression


def add_table(prob: pulp.LpProblem, table: CapacityTable, rates: list[float], limits: Limits,
              allow: Callable[[CandidateInfo], bool] | None = None, relax: bool = False, tag: str = "") -> Part:
    """Add one table's variables and its own constraints (coverage, pairing, capacity, used, fleet tier,
    one tier) to ``prob``; names carry ``tag`` so several tables can share one problem. The objective
    terms are returned, not set, and availability and budget are left to ``add_shared``."""
    if len(rates) != len(table.buckets):
        raise ValueError("ilp.solve: one rate per bucket of the capacity table")
    classes = input_classes(table)
    idx = [i for i, c in enumerate(table.candidates) if table.useful(i) and (allow is None or allow(c))]
    idx = prune_dominated(table, idx)
    cap = table.capacity_rps
    cat = "Continuous" if relax else "Integer"
    n = {i: pulp.LpVariable(f"n{tag}_{i}", lowBound=0, cat=cat) for i in idx}
    share: dict[tuple[int, int], pulp.LpVariable] = {}
    for i in idx:
        for k, members in enumerate(classes):
            live = [b for b in members if rates[b] > 0]
            if live and all(cap[i, b] > 0 for b in live):
                share[(i, k)] = pulp.LpVariable(f"s{tag}_{i}_{k}", lowBound=0, upBound=1)
    objective = pulp.lpSum(weight(table.candidates[i], limits.objective, limits.idle_fraction) * n[i] for i in idx)
    vendors = sorted({table.candidates[i].vendor for i in idx})
    for k, members in enumerate(classes):
        if not any(rates[b] > 0 for b in members):
            continue
        role = {r: [(i, share[(i, k)]) for i in idx if (i, k) in share and table.candidates[i].role == r]
                for r in ("colocated", "prefill", "decode")}
        prob += pulp.lpSum(v for _, v in role["colocated"]) + pulp.lpSum(v for _, v in role["prefill"]) == 1, \
            f"cover{tag}_{k}"
        groups = [None] if limits.cross_vendor_kv else vendors
        for g in groups:
            pre = [v for i, v in role["prefill"] if g is None or table.candidates[i].vendor == g]
            dec = [v for i, v in role["decode"] if g is None or table.candidates[i].vendor == g]
            prob += pulp.lpSum(pre) == pulp.lpSum(dec), f"pair{tag}_{k}_{g or 'any'}"
    cls_of = {b: k for k, members in enumerate(classes) for b in members}
    spare = limits.spare_instances
    tiers: dict[str, list[pulp.LpVariable]] = {}
    dynamic = []
    base_of = {i: table.candidates[i].base or table.candidates[i].key for i in idx}
    tiered = {b for b in base_of.values() if sum(1 for v in base_of.values() if v == b) > 1}
    for i in idx:
        c = table.candidates[i]
        terms = [(rates[b] / cap[i, b], share[(i, cls_of[b])]) for b in range(len(rates))
                 if rates[b] > 0 and (i, cls_of[b]) in share]
        load = pulp.lpSum(w * v for w, v in terms)
        coef: dict[str, tuple[float, pulp.LpVariable]] = {}  # each share's total load coefficient (its buckets)
        for w, v in terms:
            coef[v.name] = (coef.get(v.name, (0.0, v))[0] + w, v)
        for name, (w, v) in coef.items():  # traffic routed here needs an instance, however light: a coefficient
            if w < TINY_LOAD:  # this small is within the solver's tolerance of 0, and n = 0 would pass `load <= n`
                prob += v <= n[i], f"any{tag}_{i}_{name}"
        if limits.objective == "energy":
            dynamic.append((1 - limits.idle_fraction) * c.watts * table.target_utilisation * load)
        if (spare or c.pool > 1 or base_of[i] in tiered) and not relax:
            # big-M: no optimum runs more instances of c than it needs to carry every bucket alone
            big_m = max(math.ceil(sum(w for w, _ in terms)), c.pool) + spare + 1
            used = pulp.LpVariable(f"u{tag}_{i}", cat="Binary")
            tiers.setdefault(base_of[i], []).append(used)
            prob += n[i] <= big_m * used, f"used{tag}_{i}"
            if c.pool > 1:  # a fleet tier: its capacity holds only with at least `pool` instances behind one balancer
                prob += n[i] >= (c.pool + spare) * used, f"tier{tag}_{i}"
            prob += load <= n[i] - spare * used, f"cap{tag}_{i}"
        else:
            prob += load <= n[i], f"cap{tag}_{i}"
    if dynamic:  # energy: the load-dependent part of the power (idle + u·(TDP − idle))
        objective = objective + pulp.lpSum(dynamic)
    for k, (base, used) in enumerate(tiers.items()):  # one group per instance type: its tiers are alternatives
        if base in tiered:
            prob += pulp.lpSum(used) <= 1, f"one_tier{tag}_{k}"
    return Part(table, list(rates), idx, classes, n, share, objective)


def add_shared(prob: pulp.LpProblem, parts: list[Part], limits: Limits) -> None:
    """The constraints every table in ``prob`` shares: GPUs per accelerator type within ``availability``
    (Σ over tables and candidates on type g of gpus_c·n_c ≤ A_g) and Σ price_c·n_c ≤ the budget."""
    for acc_id, limit in (limits.availability or {}).items():
        on_type = [(p, i) for p in parts for i in p.idx if p.table.candidates[i].accelerator == acc_id]
        if on_type:
            prob += pulp.lpSum(p.table.candidates[i].gpus * p.n[i] for p, i in on_type) <= limit, f"avail_{acc_id}"
    if limits.budget_per_hour is not None:
        prob += pulp.lpSum(p.table.candidates[i].price_per_hour * p.n[i] for p in parts for i in p.idx) \
            <= limits.budget_per_hour, "budget"


def part_solution(part: Part, status: str, obj: float, bound: float | None, elapsed: float,
                  relax: bool = False) -> Solution:
    """Read one table's counts, shares and loads back from a solved problem."""
    table, rates, classes, idx, cap = part.table, part.rates, part.classes, part.idx, part.table.capacity_rps
    keys = {i: table.candidates[i].key for i in idx}
    counts = {keys[i]: int(round(v.value() or 0)) if not relax else float(v.value() or 0) for i, v in part.n.items()}
    shares: dict[tuple[str, int], float] = {}
    for (i, k), v in part.share.items():
        val = float(v.value() or 0.0)
        if val > 1e-7 and counts.get(keys[i], 0) > 0:  # solver noise on an unused candidate is no route
            for b in classes[k]:
                if rates[b] > 0:
                    shares[(keys[i], b)] = val
    loads = {keys[i]: sum(rates[b] / cap[i, b] * shares.get((keys[i], b), 0.0) for b in range(len(rates))
                          if cap[i, b] > 0) for i in idx}
    return Solution(status, obj, {k: v for k, v in counts.items() if v}, shares, loads, bound, elapsed)


_HIGHS_LIMIT = {"kTimeLimit", "kIterationLimit", "kSolutionLimit", "kInterrupt"}


def _run(prob: pulp.LpProblem, limits: Limits, relax: bool) -> tuple[str, float | None]:
    """Solve; (status, best bound). Status is read from the solver itself: a time-limited stop with a
    plan is 'feasible', without one 'time limit' (never 'infeasible')."""
    try:
        with quiet_stdout():
            prob.solve(_solver(limits.time_limit_s, limits.gap_rel))
    except Exception:  # noqa: BLE001 - a solver interface failing on extreme numbers: retry with CBC
        try:
            with quiet_stdout():
                prob.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=limits.time_limit_s, gapRel=limits.gap_rel))
        except Exception:  # noqa: BLE001
            return "solver error", None
        return _cbc_status(prob), None
    model = getattr(prob, "solverModel", None)
    if model is None or not hasattr(model, "getModelStatus"):
        return _cbc_status(prob), None
    ms = model.modelToString(model.getModelStatus()) if hasattr(model, "modelToString") else ""
    name = str(model.getModelStatus()).split(".")[-1]
    info = model.getInfo()
    has_plan = getattr(info, "primal_solution_status", 0) == 2
    bound = getattr(info, "mip_dual_bound", None) if not relax else None
    bound = float(bound) if bound is not None and math.isfinite(bound) else None
    if name == "kOptimal":
        return "optimal", bound
    if name in _HIGHS_LIMIT or "limit" in ms.lower():
        return ("feasible" if has_plan else "time limit"), bound
    if name == "kInfeasible":
        return "infeasible", None
    return ("feasible" if has_plan else "no solution found"), bound


def _cbc_status(prob: pulp.LpProblem) -> str:
    if prob.sol_status == pulp.LpSolutionOptimal:
        return "optimal"
    if prob.sol_status == pulp.LpSolutionIntegerFeasible:
        return "feasible"
    if prob.status == pulp.LpStatusInfeasible:
        return "infeasible"
    return "time limit" if prob.status == pulp.LpStatusNotSolved else "no solution found"
