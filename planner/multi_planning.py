"""``plan`` for several models in one fleet: one capacity table per model, one joint ILP.

Flow: ``MultiScenario`` → ``planning.prepare`` per model (buckets and capacity table, as for one
model) → ``optimise.multi.solve_joint`` (the models share the availability quota per accelerator
type and the budget) → one ``Plan`` section per model (``planning.assemble``) → ``MultiPlan``.

Beside the joint solve each model is also planned alone with the whole quota and budget: that is its
section's floor (``Section.alone_cost_per_hour``; the joint plan's section can cost more when the
shared limits bind), and it tells an infeasible fleet which model cannot be served even alone.
When every model fits alone but not all together, the models are added in the listed order and the
first whose addition breaks the limits is named, with what the fleet would need.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from planner.errors import InfeasibleError, InputError, PlannerError, SolverLimitError
from planner.hardware import HardwareDB
from planner.multi_result import MultiPlan, Section, fleet_totals, shared_binding
from planner.multi_scenario import MultiScenario, load_any, parse_multi
from planner.optimise.ilp import Limits, Solution, solve
from planner.optimise.multi import JointSolution, solve_joint
from planner.plan_result import Alternative, cost_of
from planner.planning import Prepared, _check_scale, _explain, _no_candidates, assemble, prepare
from planner.scenario import Scenario, parse_scenario


def coerce_multi(ms: MultiScenario | Scenario | str | Path | dict) -> MultiScenario:
    """A ``MultiScenario`` from one, a ``models:`` dict, or a scenario file; a one-model scenario
    becomes a fleet of one."""
    if isinstance(ms, dict):
        ms = parse_multi(ms) if "models" in ms else parse_scenario(ms)
    elif isinstance(ms, (str, Path)):
        ms = load_any(ms)
    if isinstance(ms, Scenario):
        return MultiScenario((replace(ms, name=ms.name or ms.model),), name=ms.name, source=ms.source)
    if not isinstance(ms, MultiScenario):
        raise InputError("scenario", "a MultiScenario or Scenario, a path to a scenario file or a dict of fields", ms)
    return ms


def prepare_all(ms: MultiScenario | Scenario | str | Path | dict, hw: HardwareDB | None = None,
                progress=None) -> list[Prepared]:
    """One ``Prepared`` (buckets, capacity table, limits) per model, in order; an error names the entry."""
    out = []
    for j, sc in enumerate(coerce_multi(ms).models):
        try:
            out.append(prepare(sc, hw, progress))
        except PlannerError as exc:
            cls = InfeasibleError if isinstance(exc, InfeasibleError) else PlannerError
            raise cls(f"models[{j}] {sc.name!r}: {exc}") from None
    return out


def _problems(preps: list[Prepared]) -> list[tuple]:
    return [(p.table, list(p.rates)) for p in preps]


def _check_each(preps: list[Prepared]) -> None:
    """A model no candidate can serve, or at a rate past a million instances, fails before the solve."""
    for j, p in enumerate(preps):
        sc, table, rates = p.scenario, p.table, list(p.rates)
        if sc.rate_profile is not None:  # a fleet is planned at one rate per model; a day has its own plan
            raise PlannerError(f"models[{j}] workload.rate_profile: a day of rates is planned with planner.plan_day "
                               "(one model), not in a fleet plan; remove the profile to plan one rate")
        try:
            if not any(table.useful(i) for i in range(len(table.candidates))):
                raise InfeasibleError(_no_candidates(sc, table, rates))
            _check_scale(sc, table, rates)
        except InfeasibleError as exc:
            raise InfeasibleError(f"models[{j}] {sc.name!r} ({p.model_id}) cannot be served: {exc}") from None


def plan_multi(ms: MultiScenario | Scenario | str | Path | dict, hw: HardwareDB | None = None, progress=None,
               prepared: list[Prepared] | None = None) -> MultiPlan:
    """The cheapest fleet serving every model within its SLO and the shared limits; raises
    ``InfeasibleError`` naming the model that cannot be served and why, ``SolverLimitError`` when the
    solver found no plan within its time limit."""
    ms = coerce_multi(ms)
    preps = prepared or prepare_all(ms, hw, progress)
    _check_each(preps)
    limits = preps[0].limits  # shared keys are the same in every entry (multi_scenario)
    with ThreadPoolExecutor(max_workers=2) as pool:  # HiGHS releases the GIL for most of its run
        joint_f = pool.submit(solve_joint, _problems(preps), limits)
        alone = list(pool.map(lambda p: solve(p.table, list(p.rates), limits), preps))
        joint = joint_f.result()
    if not joint.ok:
        if joint.status == "time limit":
            raise SolverLimitError(f"solver: no fleet plan found within the {limits.time_limit_s:g} s time limit; "
                                   f"the problem is not shown infeasible: raise solver.time_limit_s")
        raise InfeasibleError(explain(preps, alone, limits))
    sections = [_section(p, sol, a, limits) for p, sol, a in zip(preps, joint.parts, alone)]
    totals = fleet_totals(sections)
    binding = shared_binding(totals["gpus_by_accelerator"], limits.availability, totals["cost_per_hour"],
                             limits.budget_per_hour)
    return MultiPlan(
        scenario=ms.name, status=joint.status, objective=limits.objective, objective_value=joint.objective,
        **totals, availability=dict(limits.availability), budget_per_hour=limits.budget_per_hour,
        binding=tuple(binding), models=tuple(sections), solve_s=joint.solve_s, gap=joint.gap,
        notes=tuple(_notes(joint, sections, limits)), scenario_file=ms.source or None)


def _section(prep: Prepared, sol: Solution, alone: Solution, limits: Limits) -> Section:
    """A model's ``Plan`` from its part of the joint solution. Its binding lists its per-instance limits
    only (the shared ones are the fleet's); its one alternative is the model planned alone."""
    own = replace(prep, limits=replace(limits, availability={}, budget_per_hour=None))
    plan = assemble(own, sol, None)
    alone_cost = cost_of(prep.table, alone)[0] if alone.ok else None
    if alone_cost is None:
        alt = Alternative("planned alone", alone.status, None, None, None, "no plan on its own within the limits")
    else:
        delta = 100.0 * (alone_cost - plan.cost_per_hour) / plan.cost_per_hour if plan.cost_per_hour else 0.0
        alt = Alternative("planned alone (whole quota and budget)", alone.status, alone_cost, delta,
                          cost_of(prep.table, alone)[1], f"{delta:+.1f}% vs its section of the fleet plan")
    return Section(prep.scenario.name, replace(plan, scenario=prep.scenario.name, alternatives=(alt,)), alone_cost)


def _notes(joint: JointSolution, sections: list[Section], limits: Limits) -> list[str]:
    notes = []
    if joint.status == "feasible":
        notes.append(f"solver stopped at its {limits.time_limit_s:g} s limit: best fleet plan found, not proven "
                     f"optimal" + (f" (gap {100 * joint.gap:.1f}%)" if joint.gap is not None else ""))
    extra = [(s.name, s.plan.cost_per_hour - s.alone_cost_per_hour) for s in sections
             if limits.objective == "cost" and s.alone_cost_per_hour is not None
             and s.plan.cost_per_hour > s.alone_cost_per_hour + 1e-6]
    for name, dollars in extra:
        notes.append(f"{name}: ${dollars:,.2f}/h more than planned alone, because the models share the quota "
                     f"or budget")
    notes.append("instances are not shared between models: each group serves one model's weights")
    return notes


def explain(preps: list[Prepared], alone: list[Solution], limits: Limits) -> str:
    """Which model cannot be served and why: one that has no plan even alone (its own reason), else
    the first, in the listed order, that the shared quota and budget cannot fit beside those before it."""
    for j, (p, a) in enumerate(zip(preps, alone)):
        if not a.ok:
            why = _explain(p.scenario, p.table, list(p.rates), limits)
            return f"models[{j}] {p.scenario.name!r} cannot be served even alone: {why}"
    for k in range(2, len(preps) + 1):
        if solve_joint(_problems(preps[:k]), limits).ok:
            continue
        before = ", ".join(repr(p.scenario.name) for p in preps[:k - 1])
        name = preps[k - 1].scenario.name
        return (f"models[{k - 1}] {name!r} cannot be served beside {before}: each fits alone but not together "
                f"within the shared limits; {_need(preps[:k], limits)}")
    raise PlannerError("models: no fleet plan found, yet every prefix of the models has one; "
                       "raise solver.time_limit_s")  # pragma: no cover - the solver disagreeing with itself


def _need(preps: list[Prepared], limits: Limits) -> str:
    """What the cheapest joint plan without the shared limits uses, against those limits."""
    free = solve_joint(_problems(preps), replace(limits, availability={}, budget_per_hour=None))
    if not free.ok:
        return "relax the availability, the budget or an SLO"
    gpus: dict[str, int] = {}
    cost = 0.0
    for p, sol in zip(preps, free.parts):
        cost += cost_of(p.table, sol)[0]
        for key, n in sol.counts.items():
            c = p.table.candidate(key)
            gpus[c.accelerator] = gpus.get(c.accelerator, 0) + n * c.gpus
    parts = [f"{g} GPUs of {a} (availability {limits.availability[a]})" for a, g in sorted(gpus.items())
             if a in limits.availability and g > limits.availability[a]]
    if limits.budget_per_hour is not None and cost > limits.budget_per_hour:
        parts.append(f"${cost:,.2f}/h (budget ${limits.budget_per_hour:,.2f}/h)")
    need = ", ".join(parts) or "a mix the shared limits rule out"
    return f"together their cheapest plan needs {need}: raise those limits, or lower a rate"
