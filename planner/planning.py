"""``plan``: the cheapest deployment that meets the SLO at the rate, its alternatives, and why.

Flow: scenario → buckets (``planner.workload``) → capacity table (``planner.serving.table``) →
ILP over the table (``planner.optimise.ilp``) → ``Plan`` (``planner.plan_result``) with groups,
costs, predicted latency per bucket, routing, alternatives (best single accelerator,
colocated-only, disaggregated-only, and per accelerator not chosen: why), and, when nothing is
feasible, which constraint blocks it and the smallest change that would not.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from planner.capacity import CandidateInfo, CapacityTable, Rejection
from planner.deployment import precision_for
from planner.dtypes import Precision
from planner.energy import plan_energy
from planner.errors import InfeasibleError, InputError, PlannerError, SolverLimitError
from planner.hardware import Accelerator, HardwareDB, default_hardware
from planner.models import get_model
from planner.optimise.ilp import Limits, Solution, solve
from planner.plan_result import (
    Alternative,
    Plan,
    binding_of,
    bucket_reports,
    cost_of,
    groups_of,
    per_million,
    routing_of,
)
from planner.profile import load_profile
from planner.scenario import Scenario
from planner.serving.table import POOL_TIERS, build_table
from planner.workload import Buckets, bucketize

ROLE_SETS = {"auto": ("colocated", "prefill", "decode"), "off": ("colocated",), "only": ("prefill", "decode")}


@dataclass(frozen=True)
class Prepared:
    """A scenario turned into buckets and a capacity table: everything the ILP needs. Capacities do
    not depend on the rate, so one ``Prepared`` serves a whole sweep of rates."""

    scenario: Scenario
    model_id: str
    buckets: Buckets
    rates: tuple[float, ...]
    table: CapacityTable
    limits: Limits
    notes: tuple[str, ...] = ()
    purchase_priced: tuple[str, ...] = ()
    """Candidate accelerators priced at an amortised purchase price (``Accelerator.price_basis``)."""


def _by_id(mapping: dict[str, Any], hw: HardwareDB, field: str) -> dict[str, Any]:
    """Re-key a per-accelerator mapping by resolved id; two names for one accelerator is an error."""
    out: dict[str, Any] = {}
    names: dict[str, str] = {}
    for name, value in mapping.items():
        acc_id = hw.get(name).id  # unknown names fail with a did-you-mean
        if acc_id in out:
            raise PlannerError(f"{field}: {names[acc_id]!r} and {name!r} both name {acc_id}; give it once")
        out[acc_id], names[acc_id] = value, name
    return out


def accelerators_of(sc: Scenario, hw: HardwareDB) -> list[Accelerator]:
    """Candidate accelerators, each once (aliases of one accelerator collapse), with price overrides."""
    from planner.pricing import tiers_of

    prices = _by_id(sc.prices, hw, "prices")
    entries = _by_id(sc.pricing.entries, hw, "prices")
    accs: dict[str, Accelerator] = {}
    for n in sc.accelerators or hw.ids():
        a = hw.get(n)
        if not sc.accelerators and a.price_basis == "purchase" and a.id not in entries and a.id not in prices:
            continue  # an amortised purchase price is not comparable with rental prices: named, or priced, only
        if sc.pricing.currency != "USD" and a.id not in entries and a.id not in prices:
            raise InputError("pricing.currency", f"prices in {sc.pricing.currency} for every candidate accelerator "
                             f"(the shipped prices are US dollars): give {a.id}'s in prices: or pricing.file, or "
                             "name only the accelerators you price", sc.pricing.currency)
        if a.id in entries:  # price tiers (planner.pricing): owned hardware's cost, else on-demand
            t = tiers_of(a, entries[a.id], sc.pricing, sc.target_utilisation)
            a = a.with_price(t.plan_price, t.source or "scenario override")
        elif a.id in prices:
            a = a.with_price(prices[a.id], "scenario override")
        accs.setdefault(a.id, a)
    return list(accs.values())


def coerce(sc: Scenario | str | dict) -> Scenario:
    """A ``Scenario`` from a scenario, a path to a scenario file, or a dict of scenario fields."""
    if isinstance(sc, dict):
        from planner.scenario import parse_scenario

        return parse_scenario(sc)
    if isinstance(sc, str | Path):
        from planner.scenario import load_scenario

        return load_scenario(sc)
    if not isinstance(sc, Scenario):
        raise InputError("scenario", "a Scenario, a path to a scenario file or a dict of scenario fields", sc)
    return sc


def prepare(sc: Scenario | str | dict, hw: HardwareDB | None = None, progress=None) -> Prepared:
    """Buckets and the capacity table for a scenario."""
    sc = coerce(sc)
    hw = hw or default_hardware()
    model = get_model(sc.model)
    profile = load_profile(sc.engine)
    accs = accelerators_of(sc, hw)
    prec: Precision = precision_for(sc.precision, sc.kv_dtype or sc.engine_settings.kv_dtype, profile.engine)
    raw = bucketize(sc.workload, sc.n_isl, sc.n_osl, percentile=sc.slo.percentile)
    buckets, notes = _fit_context(raw, model.max_context)
    table = build_table(model, accs, prec, profile, list(buckets), sc.slo, sc.workload.arrival_cv,
                        sc.target_utilisation, sc.tp_options, sc.pp_options, ROLE_SETS[sc.disaggregation],
                        settings=sc.engine_settings,
                        pools=(sc.queue_pool,) if sc.queue_pool else POOL_TIERS, progress=progress)
    limits = Limits(objective=sc.objective, availability=_by_id(sc.availability, hw, "availability"),
                    budget_per_hour=sc.budget_per_hour, spare_instances=sc.spare_instances,
                    time_limit_s=sc.time_limit_s, gap_rel=sc.gap_rel, cross_vendor_kv=sc.cross_vendor_kv,
                    idle_fraction=sc.pricing.idle_fraction)
    return Prepared(sc, model.id, buckets, tuple(b.rate_rps for b in buckets), table, limits, tuple(notes),
                    tuple(a.id for a in accs if a.price_basis == "purchase"))


def _fit_context(buckets: Buckets, max_context: int) -> tuple[Buckets, list[str]]:
    """Requests longer than the model's context cannot be served as they are: plan them as truncated
    to the context (prompt cut to leave room for the answer) and say how many there are."""
    if not max_context:
        return buckets, []
    out, over = [], 0.0
    for b in buckets:
        if b.isl_hi + b.osl_hi <= max_context:
            out.append(b)
            continue
        over += b.share
        room = max(max_context - int(b.osl_mean), 1)
        out.append(replace(b, isl_hi=min(b.isl_hi, room), isl_lo=min(b.isl_lo, room), isl_mean=min(b.isl_mean, room),
                           isl_p90=min(b.isl_p90, room), isl_tail=min(b.isl_tail, room)))
    if not over:
        return buckets, []
    note = (f"{100 * over:.1f}% of requests fall in buckets reaching past the model's {max_context:,}-token context; "
            f"they are planned as truncated to it")
    return replace(buckets, buckets=tuple(out)), [note]


def cost_at(prep: Prepared, rate_scale: float = 1.0, allow=None) -> float | None:
    """$/hour of the optimum at ``rate_scale`` × the scenario's rate (None when infeasible)."""
    sol = solve(prep.table, [r * rate_scale for r in prep.rates], prep.limits, allow=allow)
    return cost_of(prep.table, sol)[0] if sol.ok else None


def plan(sc: Scenario | str | dict, hw: HardwareDB | None = None, progress=None, alternatives: bool = True,
         prepared: Prepared | None = None) -> Plan:
    """Solve a scenario; raises ``InfeasibleError`` with the reason and the smallest fix when nothing meets
    it, ``SolverLimitError`` when the solver found no plan within its time limit."""
    prep = prepared or prepare(sc, hw, progress)
    sc, table, rates, limits = prep.scenario, prep.table, list(prep.rates), prep.limits
    if sc.rate_profile is not None:  # one rate would be the profile's peak, silently: a day has its own plan
        raise PlannerError("workload.rate_profile: this scenario is a day of rates; plan it with planner.plan_day "
                           "(planner plan on the command line), or remove the profile to plan one rate")
    if not any(table.useful(i) for i in range(len(table.candidates))):
        raise InfeasibleError(_no_candidates(sc, table, rates))
    _check_scale(sc, table, rates)
    from concurrent.futures import ThreadPoolExecutor

    jobs = _alternative_jobs(table) if alternatives else []
    with ThreadPoolExecutor(max_workers=2) as pool:  # HiGHS releases the GIL for most of its run
        main_f = pool.submit(solve, table, rates, limits)
        alt_fs = [(name, pool.submit(solve, table, rates, limits, allow=allow)) for name, allow in jobs]
        sol = main_f.result()
        alt_sols = [(name, f.result()) for name, f in alt_fs]
    if not sol.ok:
        better = [s for _, s in alt_sols if s.ok]
        if sol.status == "time limit" and not better:
            raise SolverLimitError(f"solver: no plan found within the {limits.time_limit_s:g} s time limit; the "
                                   f"problem is not shown infeasible: raise solver.time_limit_s")
        if not better:
            raise InfeasibleError(_explain(sc, table, rates, limits))
    # never recommend worse than an alternative already found (time-limited solves may stop early)
    for _, alt in alt_sols:
        if alt.ok and (not sol.ok or alt.objective < sol.objective - 1e-9):
            sol = replace(alt, status="feasible")
    return assemble(prep, sol, alt_sols if alternatives else None)


def assemble(prep: Prepared, sol: Solution, alt_sols: list[tuple[str, Solution]] | None = None) -> Plan:
    """The ``Plan`` for a solution of ``prep``'s table (``alt_sols``: the alternatives solved beside it,
    None for none); ``planner.multi_planning`` builds each model's section with it."""
    sc, table, rates, limits = prep.scenario, prep.table, list(prep.rates), prep.limits
    alternatives, alt_sols = alt_sols is not None, alt_sols or []
    groups = groups_of(table, sol, limits.spare_instances)
    cost = sum(g.cost_per_hour for g in groups)
    out_tps = sum(b.rate_rps * b.osl_mean for b in prep.buckets)
    total_tps = sum(b.rate_rps * (b.isl_mean + b.osl_mean) for b in prep.buckets)
    reports = bucket_reports(table, sol, rates)
    alts = _alternatives(table, alt_sols, cost, sol) if alternatives else []
    notes = list(prep.notes) + _notes(sc, sol, limits, groups, binding_of(table, sol, limits.availability,
                                                                          limits.budget_per_hour),
                                      prep.purchase_priced)
    slo = {k: v for k, v in asdict(sc.slo).items() if v is not None}
    first = table.candidates[0]
    return Plan(
        scenario=sc.name, model=prep.model_id, engine=first.engine, precision=first.precision,
        kv_dtype=first.kv_dtype, status=sol.status, objective=sc.objective, objective_value=sol.objective,
        cost_per_hour=cost, cost_per_million_output_tokens=per_million(cost, out_tps),
        cost_per_million_total_tokens=per_million(cost, total_tps), total_gpus=sum(g.gpus for g in groups),
        watts=sum(g.watts for g in groups), groups=tuple(groups), buckets=tuple(reports),
        routing=tuple(routing_of(table, sol)),
        predicted={"ttft_s": max((r.ttft_s for r in reports), default=0.0),
                   "tpot_s": max((r.tpot_s for r in reports), default=0.0), "percentile": sc.slo.percentile},
        slo=slo, rate_rps=sc.workload.rate_rps, output_tokens_per_s=out_tps,
        binding=tuple(binding_of(table, sol, limits.availability, limits.budget_per_hour)),
        alternatives=tuple(alts), rejected=table.rejected, solve_s=sol.solve_s, gap=sol.gap,
        candidates=sum(table.useful(i) for i in range(len(table.candidates))),
        balancer=("least-outstanding-requests balancer per group; each group's TTFT queueing is one G/G/N queue "
                  + (f"with N = {sc.queue_pool} (queueing.pool)" if sc.queue_pool else
                     "with N = the group's fleet tier (pool), at most its instance count")),
        notes=tuple(notes), scenario_file=sc.source or None,
        energy=plan_energy([(g.gpus, g.watts / g.gpus, g.utilisation) for g in groups if g.gpus], out_tps,
                           sc.pricing.idle_fraction, sc.pricing.pue),
        currency=sc.pricing.currency)


def _check_scale(sc: Scenario, table: CapacityTable, rates: list[float]) -> None:
    """Refuse rates that would need more than a million instances before handing them to the solver."""
    floor = 0.0
    for b, r in enumerate(rates):
        top = max((table.capacity_rps[i, b] for i, c in enumerate(table.candidates) if c.role != "decode"),
                  default=0.0)
        if r > 0 and top > 0:
            floor += r / top
    if floor > 1e6:
        best = sum(rates) / floor * 1e6
        raise InfeasibleError(f"rate: {sc.workload.rate_rps:.3g} req/s would need more than a million instances; "
                              f"plan for at most about {best:.3g} req/s, or split the traffic across scenarios")


def _notes(sc: Scenario, sol: Solution, limits: Limits, groups, binding: list[str],
           purchase_priced: tuple[str, ...] = ()) -> list[str]:
    notes = []
    if sol.status == "feasible":
        notes.append(f"solver stopped at its {limits.time_limit_s:g} s limit: best plan found, not proven optimal"
                     + (f" (gap {100 * sol.gap:.1f}%)" if sol.gap is not None else ""))
    for acc_id in sorted({g.accelerator for g in groups} & set(purchase_priced)):
        notes.append(f"{acc_id} is priced at its purchase price spread over years of use, hardware only (no "
                     "power, hosting or margin), not a rental price: its cost is indicative; give prices: "
                     f"{{{acc_id}: ...}} or pricing: for a comparable figure")
    if limits.spare_instances:
        notes.append(f"each group keeps {limits.spare_instances} spare instance(s) (N+{limits.spare_instances})")
    else:
        notes.append("no spare instances (redundancy.spare_instances: 0): losing one instance of a group "
                     "overloads the rest until it is replaced")
    if sc.queue_pool == 1 and "per-instance limit: TTFT SLO" in binding and len(groups) > 0:
        total = sum(g.instances for g in groups)
        notes.append(f"TTFT binds and the queueing assumes each instance queues alone (queueing.pool: 1); with "
                     f"{total} instances behind a least-outstanding balancer, leave queueing.pool unset to "
                     f"size by fleet tiers")
    return notes


def _alternative_jobs(table: CapacityTable) -> list[tuple[str, Any]]:
    """Restrictions to solve beside the recommendation: roles, then each accelerator alone."""
    accs = sorted({c.accelerator for i, c in enumerate(table.candidates) if table.useful(i)})
    jobs: list[tuple[str, Any]] = [("colocated only", lambda c: c.role == "colocated"),
                                   ("disaggregated only", lambda c: c.role != "colocated")]
    return jobs + [(f"only {a}", lambda c, a=a: c.accelerator == a) for a in accs]


def _alternatives(table: CapacityTable, solved: list[tuple[str, Solution]], best: float,
                  main: Solution) -> list[Alternative]:
    def describe(name: str, s: Solution) -> Alternative:
        if not s.ok:
            why = ("no plan found within the solver's time limit" if s.status == "time limit"
                   else "no plan meets the SLO within the limits")
            return Alternative(name, s.status, None, None, None, why)
        cost, gpus = cost_of(table, s)
        delta = 100.0 * (cost - best) / best if best else 0.0
        return Alternative(name, s.status, cost, delta, gpus, f"{delta:+.1f}% vs the recommendation")

    results = [describe(name, s) for name, s in solved]
    out, singles = results[:2], results[2:]
    used = {table.candidate(k).accelerator for k in main.counts}
    feasible = [a for a in singles if a.cost_per_hour is not None]
    if feasible:
        b = min(feasible, key=lambda a: a.cost_per_hour)
        out.insert(0, Alternative("best single accelerator: " + b.name.removeprefix("only "), b.status,
                                  b.cost_per_hour, b.delta_pct, b.total_gpus, b.detail))
    for a in singles:
        acc_id = a.name.removeprefix("only ")
        if acc_id in used:
            continue
        detail = a.detail if a.cost_per_hour is not None else "cannot meet the SLO on its own within the limits"
        out.append(Alternative(f"not chosen: {acc_id}", a.status, a.cost_per_hour, a.delta_pct, a.total_gpus, detail))
    for r in table.rejected:
        out.append(Alternative(f"not chosen: {r.accelerator}", "excluded", None, None, None, r.reason))
    return out


def _no_candidates(sc: Scenario, table: CapacityTable, rates: list[float]) -> str:
    if table.candidates:
        return _explain(sc, table, rates, Limits())
    rejected = table.rejected
    fits = [r for r in rejected if not r.reason.startswith("does not fit")]
    if not rejected:
        return "no candidate accelerator; list at least one under accelerators"
    if not fits:
        return (f"{sc.model} does not fit on any candidate accelerator at TP up to the scale-up domain "
                f"(e.g. {rejected[0].accelerator}: {rejected[0].reason}); add larger accelerators, allow more TP/PP, "
                f"or use a smaller weight/KV dtype")
    return (f"no candidate accelerator can serve: {fits[0].accelerator} {fits[0].reason}; loosen the SLO, change the "
            f"engine, or add accelerators")


def _covered(table: CapacityTable, b: int) -> bool:
    def any_role(role: str) -> bool:
        return any(table.capacity_rps[i, b] > 0 for i, c in enumerate(table.candidates) if c.role == role)

    return any_role("colocated") or (any_role("prefill") and any_role("decode"))


def _explain(sc: Scenario, table: CapacityTable, rates: list[float], limits: Limits) -> str:
    """Which constraint blocks the plan, and the smallest change that lifts it."""
    uncovered = [b for b in range(len(rates)) if rates[b] > 0 and not _covered(table, b)]
    if uncovered:
        b = uncovered[0]
        bk = table.buckets[b]
        roles = [c.role for c in table.candidates]
        need_ttft = min((table.ttft_floor_s[i, b] for i, r in enumerate(roles) if r != "decode"), default=math.inf)
        need_tpot = min((table.tpot_floor_s[i, b] for i, r in enumerate(roles) if r != "prefill"), default=math.inf)
        return (f"slo: no candidate serves requests of {bk.isl_lo}-{bk.isl_hi} input / {bk.osl_lo}-{bk.osl_hi} output "
                f"tokens within TTFT {sc.slo.ttft_s} s and TPOT {sc.slo.tpot_s} s at p{sc.slo.percentile:g}; "
                f"the fastest candidate needs TTFT >= {need_ttft:.3g} s and TPOT >= {need_tpot:.3g} s even idle: "
                f"loosen the SLO to at least that, or add faster accelerators")
    if limits.availability:
        free = solve(table, rates, replace(limits, availability={}))
        if free.ok:
            need: dict[str, int] = {}
            for k, n in free.counts.items():
                c = table.candidate(k)
                need[c.accelerator] = need.get(c.accelerator, 0) + n * c.gpus
            short = [f"{g} GPUs of {a} (have {limits.availability.get(a, 'unlimited')})" for a, g in need.items()
                     if a in limits.availability and g > limits.availability[a]]
            rate = _max_rate(table, rates, limits)
            lower = f"lower the rate to at most {rate:.3g} req/s" if rate > 0 else "no rate fits these limits"
            return (f"availability: the cheapest plan needs {', '.join(short) or 'more GPUs than available'}; "
                    f"raise the availability to that, or {lower}")
    if limits.budget_per_hour is not None:
        free = solve(table, rates, replace(limits, budget_per_hour=None))
        if free.ok:
            cost = cost_of(table, free)[0]
            rate = _max_rate(table, rates, limits)
            lower = f"lower the rate to at most {rate:.3g} req/s" if rate > 0 else "no rate fits this budget"
            return (f"budget: the cheapest plan costs ${cost:,.2f}/h, above the ${limits.budget_per_hour:,.2f}/h "
                    f"budget; raise the budget to ${cost:,.2f}/h, or {lower}")
    if not limits.cross_vendor_kv:
        return ("no plan satisfies the constraints; prefill and decode pools pair only within one vendor "
                "(cross_vendor_kv: false); relax availability, budget or the SLO")
    return "no plan satisfies the constraints; relax availability, budget or the SLO"


def _max_rate(table: CapacityTable, rates: list[float], limits: Limits) -> float:
    """Largest scale of the workload's rate that the limits allow (bisection over ILP solves)."""
    lo, hi = 0.0, 1.0
    for _ in range(12):
        mid = (lo + hi) / 2
        if solve(table, [r * mid for r in rates], limits).ok:
            lo = mid
        else:
            hi = mid
    return lo * sum(rates)


def allow_accelerator(acc_id: str):
    """Predicate for ``cost_at``/``solve``: candidates on one accelerator type."""
    def allow(c: CandidateInfo) -> bool:
        return c.accelerator == acc_id

    return allow


__all__ = ["Plan", "Prepared", "Rejection", "allow_accelerator", "cost_at", "plan", "prepare"]


def cost_vs_rate(prep: Prepared, scales: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
                 ) -> dict[str, list[tuple[float, float | None]]]:
    """Cost of the recommended mix and of each accelerator alone at ``scales`` × the scenario's rate."""
    base = prep.scenario.workload.rate_rps
    series = {"recommended (mix)": [(s * base, cost_at(prep, s)) for s in scales]}
    for acc_id in sorted({c.accelerator for c in prep.table.candidates}):
        series[acc_id] = [(s * base, cost_at(prep, s, allow=allow_accelerator(acc_id))) for s in scales]
    return series


def cost_vs_slo(sc: Scenario, hw: HardwareDB | None = None, factors: tuple[float, ...] = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
                ) -> tuple[str, list[tuple[float, float | None]]]:
    """(the SLO field swept, [(limit, cost)]) for the TTFT limit (or TPOT when no TTFT is set) at ``factors``."""
    field_ = "ttft_s" if sc.slo.ttft_s is not None else "tpot_s"
    limit = getattr(sc.slo, field_)
    return field_, [(limit * f, cost_at(prepare(sc.with_slo(**{field_: limit * f}), hw))) for f in factors]
