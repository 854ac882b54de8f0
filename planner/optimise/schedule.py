"""One integer linear program over all periods of a rate profile: reserved, on-demand and spot.

The capacity table is built once, at the peak period's request mix; period p's bucket rates are
``λ_{b,p} = share_b · R_p`` with ``R_p`` the planned rate of the period (after the scale-up lag
rule of ``planner.rate_profile``). ``g`` ranges over instance types (a candidate's ``base``: its
rows are the fleet tiers), ``c`` over rows, ``p`` over periods of length T_p hours.

Variables
  r_g ∈ ℤ≥0            fixed instances (reserved at the term, or owned), the same in every period
  o_{g,p}, s_{g,p} ∈ ℤ≥0  on-demand and spot instances bought for period p
  n_{c,p} ≥ 0           instances of row c serving in period p (continuous: spot counts at its
                        expected surviving share); u_{c,p} ∈ {0,1} row c used in p
  x_{c,k,p} ∈ [0,1]     share of input class k routed to row c in period p (as in ``ilp``)

Objective (cost)  min Σ_g gpus_g·[ fixed_g·r_g·Σ_p T_p + Σ_p T_p·(od_g·o_{g,p} + spot_g·s_{g,p}) ]
          (energy) min Σ_p T_p·Σ_g [ P_idle,g·(r_g + o_{g,p} + s_{g,p}) + (TDP_g − P_idle,g)·ρ·load_{g,p} ]
          (ρ: the target utilisation, load in instances at ρ)
          (gpus / power: GPU-hours / TDP-watt-hours bought), each with a 1e-6·cost tie-break

Constraints, in every period p
  supply       Σ_{c of g} n_{c,p} ≤ r_g + o_{g,p} + (1 − q_g)·s_{g,p}
               spot is counted at its expected surviving share: an interruption rate q_g (share of
               spot instances lost at any time, replaced within the period) is covered by buying
               1/(1 − q_g) as many
  coverage, pairing, capacity, used, fleet tier, one tier per type: as ``ilp``, per period
               (the fleet tier may change from period to period with the count)
  availability Σ_{g on accelerator a} gpus_g·(r_g + o_{g,p} + s_{g,p}) ≤ A_a
  budget       Σ_g gpus_g·(fixed_g·r_g + od_g·o_{g,p} + spot_g·s_{g,p}) ≤ B     (per hour)

A type without a fixed, on-demand or spot price has that variable fixed at 0.
``fixed_counts`` pins r_g (the brute-force check over reserved counts uses it).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import pulp

from planner.capacity import CapacityTable
from planner.optimise.ilp import Limits, Outcome, _run, input_classes, prune_dominated

SPOT_FLOOR = 1e-9


@dataclass(frozen=True)
class TierPrice:
    """Per-GPU-hour prices of one accelerator (None: tier not offered) and the spot interruption rate."""

    on_demand: float | None
    fixed: float | None
    spot: float | None = None
    spot_interruption: float = 0.0


@dataclass(frozen=True)
class DaySolution(Outcome):
    """``fixed[g]``: r_g; ``on_demand[g]`` / ``spot[g]``: per period; ``serving[(row, p)]``: n_{c,p};
    ``shares[(row, bucket, p)]``; ``load[(row, p)]``: Σ_b λ_{b,p}·x / cap (busy instances)."""

    status: str
    objective: float | None
    cost: float = 0.0
    fixed: dict[str, int] = field(default_factory=dict)
    on_demand: dict[str, tuple[int, ...]] = field(default_factory=dict)
    spot: dict[str, tuple[int, ...]] = field(default_factory=dict)
    serving: dict[tuple[str, int], float] = field(default_factory=dict)
    shares: dict[tuple[str, int, int], float] = field(default_factory=dict)
    load: dict[tuple[str, int], float] = field(default_factory=dict)
    solve_s: float = 0.0
    bound: float | None = None


def solve_day(table: CapacityTable, mix: list[float], period_rates: list[float], period_h: float,
              prices: dict[str, TierPrice], limits: Limits | None = None, *, idle_fraction: float = 0.15,
              fixed_counts: dict[str, int] | None = None) -> DaySolution:
    """Build and solve the multi-period program (module docstring). ``mix``: each bucket's share of
    requests; ``period_rates``: R_p in req/s; ``prices`` by accelerator id."""
    limits = limits or Limits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return _solve(table, mix, period_rates, period_h, prices, limits, idle_fraction, fixed_counts or {})


def _solve(table: CapacityTable, mix: list[float], period_rates: list[float], period_h: float,
           prices: dict[str, TierPrice], limits: Limits, idle_fraction: float,
           fixed_counts: dict[str, int]) -> DaySolution:
    t0 = time.perf_counter()
    if len(mix) != len(table.buckets):
        raise ValueError("schedule.solve_day: one share per bucket of the capacity table")
    cap, classes = table.capacity_rps, input_classes(table)
    idx = [i for i, c in enumerate(table.candidates) if table.useful(i) and c.accelerator in prices]
    idx = prune_dominated(table, idx)
    periods = range(len(period_rates))
    base = {i: table.candidates[i].base or table.candidates[i].key for i in idx}
    types = sorted(set(base.values()))
    rep = {g: table.candidates[next(i for i in idx if base[i] == g)] for g in types}
    prob = pulp.LpProblem("day_schedule", pulp.LpMinimize)

    def count(name: str, offered: bool) -> pulp.LpVariable:
        return pulp.LpVariable(name, lowBound=0, upBound=None if offered else 0, cat="Integer")

    tp = {g: prices[rep[g].accelerator] for g in types}
    r = {g: count(f"r_{k}", tp[g].fixed is not None) for k, g in enumerate(types)}
    o = {(g, p): count(f"o_{k}_{p}", tp[g].on_demand is not None) for k, g in enumerate(types) for p in periods}
    s = {(g, p): count(f"s_{k}_{p}", tp[g].spot is not None) for k, g in enumerate(types) for p in periods}
    for g, v in fixed_counts.items():
        if g in r:
            prob += r[g] == v, f"pin_{types.index(g)}"
    n = {(i, p): pulp.LpVariable(f"n_{i}_{p}", lowBound=0) for i in idx for p in periods}
    rates = [[mix[b] * period_rates[p] for b in range(len(mix))] for p in periods]
    share: dict[tuple[int, int, int], pulp.LpVariable] = {}
    for p in periods:
        for i in idx:
            for k, members in enumerate(classes):
                live = [b for b in members if rates[p][b] > 0]
                if live and all(cap[i, b] > 0 for b in live):
                    share[(i, k, p)] = pulp.LpVariable(f"x_{i}_{k}_{p}", lowBound=0, upBound=1)
    vendors = sorted({table.candidates[i].vendor for i in idx})
    cls_of = {b: k for k, members in enumerate(classes) for b in members}
    spare = limits.spare_instances
    tiered = {g for g in types if sum(1 for i in idx if base[i] == g) > 1}
    load: dict[tuple[int, int], pulp.LpAffineExpression] = {}
    for p in periods:
        for k, members in enumerate(classes):
            if not any(rates[p][b] > 0 for b in members):
                continue
            role = {ro: [(i, share[(i, k, p)]) for i in idx if (i, k, p) in share
                         and table.candidates[i].role == ro] for ro in ("colocated", "prefill", "decode")}
            prob += (pulp.lpSum(v for _, v in role["colocated"]) + pulp.lpSum(v for _, v in role["prefill"])
                     == 1), f"cover_{k}_{p}"
            for vg in ([None] if limits.cross_vendor_kv else vendors):
                pre = [v for i, v in role["prefill"] if vg is None or table.candidates[i].vendor == vg]
                dec = [v for i, v in role["decode"] if vg is None or table.candidates[i].vendor == vg]
                prob += pulp.lpSum(pre) == pulp.lpSum(dec), f"pair_{k}_{p}_{vg or 'any'}"
        used_by_type: dict[str, list[pulp.LpVariable]] = {}
        for i in idx:
            c = table.candidates[i]
            terms = [(rates[p][b] / cap[i, b], share[(i, cls_of[b], p)]) for b in range(len(mix))
                     if rates[p][b] > 0 and (i, cls_of[b], p) in share]
            load[(i, p)] = pulp.lpSum(w * v for w, v in terms)
            if spare or c.pool > 1 or base[i] in tiered:
                big_m = max(math.ceil(sum(w for w, _ in terms)), c.pool) + spare + 1
                u = pulp.LpVariable(f"u_{i}_{p}", cat="Binary")
                used_by_type.setdefault(base[i], []).append(u)
                prob += n[(i, p)] <= big_m * u, f"used_{i}_{p}"
                if c.pool > 1:
                    prob += n[(i, p)] >= (c.pool + spare) * u, f"tier_{i}_{p}"
                prob += load[(i, p)] <= n[(i, p)] - spare * u, f"cap_{i}_{p}"
            else:
                prob += load[(i, p)] <= n[(i, p)], f"cap_{i}_{p}"
        for k, g in enumerate(types):
            if g in tiered:
                prob += pulp.lpSum(used_by_type.get(g, [])) <= 1, f"one_tier_{k}_{p}"
            q = tp[g].spot_interruption if tp[g].spot is not None else 0.0
            prob += (pulp.lpSum(n[(i, p)] for i in idx if base[i] == g)
                     <= r[g] + o[(g, p)] + (1 - q) * s[(g, p)]), f"supply_{k}_{p}"
        for acc_id, limit in (limits.availability or {}).items():
            on = [g for g in types if rep[g].accelerator == acc_id]
            if on:
                prob += pulp.lpSum(rep[g].gpus * (r[g] + o[(g, p)] + s[(g, p)]) for g in on) <= limit, \
                    f"avail_{acc_id}_{p}"
    hourly = {p: pulp.lpSum(rep[g].gpus * ((tp[g].fixed or 0) * r[g] + (tp[g].on_demand or 0) * o[(g, p)]
                                           + (tp[g].spot or 0) * s[(g, p)]) for g in types) for p in periods}
    if limits.budget_per_hour is not None:
        for p in periods:
            prob += hourly[p] <= limits.budget_per_hour, f"budget_{p}"
    cost = pulp.lpSum(period_h * hourly[p] for p in periods)
    prob += cost if limits.objective == "cost" else _other_objective(
        limits.objective, table, idx, types, rep, base, r, o, s, load, periods, period_h, idle_fraction) + 1e-6 * cost
    if not idx:
        return DaySolution("infeasible", None, solve_s=time.perf_counter() - t0)
    status, bound = _run(prob, limits, relax=False)
    elapsed = time.perf_counter() - t0
    if status not in ("optimal", "feasible"):
        return DaySolution(status, None, solve_s=elapsed)
    return _read(table, idx, types, r, o, s, n, share, load, classes, rates, periods, prob, cost, status, bound,
                 elapsed)


def _other_objective(objective, table, idx, types, rep, base, r, o, s, load, periods, period_h, idle_fraction):
    """Energy (load-dependent watts), GPU-hours or TDP watt-hours bought, over the day."""
    terms = []
    for p in periods:
        for g in types:
            bought = r[g] + o[(g, p)] + s[(g, p)]
            c = rep[g]
            if objective == "gpus":
                terms.append(period_h * c.gpus * bought)
            elif objective == "power":
                terms.append(period_h * c.watts * bought)
            else:  # energy: idle draw of every instance bought, dynamic draw by load
                idle = idle_fraction * c.watts
                terms.append(period_h * idle * bought)
                busy = pulp.lpSum(load[(i, p)] for i in idx if base[i] == g)
                terms.append(period_h * (c.watts - idle) * table.target_utilisation * busy)
    return pulp.lpSum(terms)


def _read(table, idx, types, r, o, s, n, share, load, classes, rates, periods, prob, cost, status, bound, elapsed):
    def val(v) -> int:
        return int(round(v.value() or 0))

    keys = {i: table.candidates[i].key for i in idx}
    serving = {(keys[i], p): float(v.value() or 0.0) for (i, p), v in n.items() if (v.value() or 0.0) > 1e-7}
    shares: dict[tuple[str, int, int], float] = {}
    for (i, k, p), v in share.items():
        x = float(v.value() or 0.0)
        if x > 1e-7 and serving.get((keys[i], p), 0) > 0:
            for b in classes[k]:
                if rates[p][b] > 0:
                    shares[(keys[i], b, p)] = x
    loads = {(keys[i], p): float(pulp.value(e) or 0.0) for (i, p), e in load.items()
             if serving.get((keys[i], p), 0) > 0}
    obj = float(pulp.value(prob.objective) or 0.0)
    return DaySolution(
        status, obj, float(pulp.value(cost) or 0.0), {g: val(r[g]) for g in types if val(r[g])},
        {g: tuple(val(o[(g, p)]) for p in periods) for g in types if any(val(o[(g, p)]) for p in periods)},
        {g: tuple(val(s[(g, p)]) for p in periods) for g in types if any(val(s[(g, p)]) for p in periods)},
        serving, shares, loads, elapsed, bound if bound is not None else (obj if status == "optimal" else None))
