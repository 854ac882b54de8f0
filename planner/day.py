"""A fleet over a day: the schedule (instances per type per period), its cost, energy and saving.

Flow: scenario with ``workload.rate_profile`` → ``planning.prepare`` at the peak (the capacity
table is built once, at the peak's request mix; capacities do not depend on the rate) → price
tiers per accelerator (``planner.pricing``) → ``optimise.schedule.solve_day`` over all periods at
the lag-adjusted rates → ``DayPlan``. The saving is against the same program with every period at
the peak (a static fleet sized for the peak, with the same reserved/spot options), so it is ≥ 0.

Energy per period p (``planner.energy``): P_p = Σ_g gpus_g·P_idle,g·(instances bought) +
Σ_rows gpus·(TDP − P_idle)·ρ·load_{c,p}; kWh/day = Σ_p P_p·T_p·PUE / 3.6e6 scaled to 24 h;
J/token = Σ_p P_p·T_p·PUE / Σ_p (R_p·T_p·mean output tokens).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from planner.energy import IDLE_SOURCE, J_PER_KWH
from planner.errors import InfeasibleError, SolverLimitError
from planner.hardware import HardwareDB, default_hardware
from planner.optimise.schedule import DaySolution, TierPrice, solve_day
from planner.planning import Prepared, _by_id, coerce, prepare
from planner.pricing import Tiers, owned_note, tiers_of
from planner.scenario import Scenario


@dataclass(frozen=True)
class TypeSchedule:
    """One instance type over the day: fixed (reserved/owned) count, on-demand and spot per period."""

    label: str
    accelerator: str
    gpus_per_instance: int
    fixed_kind: str
    fixed: int
    on_demand: tuple[int, ...]
    spot: tuple[int, ...]


@dataclass(frozen=True)
class DayPlan:
    """The day's plan; money in ``currency``, SI otherwise; ``to_dict`` is the JSON schema."""

    scenario: str
    model: str
    status: str
    objective: str
    currency: str
    period_s: float
    rates_rps: tuple[float, ...]
    planned_rates_rps: tuple[float, ...]
    scale_up_lag_s: float
    schedule: tuple[TypeSchedule, ...]
    cost_per_period: tuple[float, ...]
    cost_per_day: float
    peak_sized_cost_per_day: float
    saving_per_day: float
    saving_pct: float
    power_w: tuple[float, ...]
    kwh_per_day: float
    joules_per_output_token: float | None
    gpus_per_period: tuple[int, ...]
    prices: tuple[dict[str, Any], ...]
    solve_s: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["notes"] = list(self.notes)
        return d


def _prices(prep: Prepared, hw: HardwareDB) -> dict[str, Tiers]:
    sc = prep.scenario
    entries = _by_id(sc.pricing.entries, hw, "prices")
    legacy = _by_id(sc.prices, hw, "prices")
    out = {}
    for acc_id in sorted({c.accelerator for c in prep.table.candidates}):
        acc = hw.get(acc_id)
        entry = entries.get(acc_id)
        if entry is None and acc_id in legacy:
            acc = acc.with_price(legacy[acc_id], "scenario override")
        out[acc_id] = tiers_of(acc, entry, sc.pricing, sc.target_utilisation)
    return out


def plan_day(sc: Scenario | str | dict, hw: HardwareDB | None = None, progress=None,
             prepared: Prepared | None = None) -> DayPlan:
    """Solve a scenario with a rate profile (module docstring); ``InfeasibleError`` when no schedule
    meets it, ``SolverLimitError`` when the solver stopped without one."""
    hw = hw or default_hardware()
    sc = coerce(sc)
    if sc.rate_profile is None:
        raise InfeasibleError("workload.rate_profile: a day plan needs per-period rates")
    prep = prepared or prepare(sc, hw, progress)
    prof = sc.rate_profile
    tiers = _prices(prep, hw)
    tp = {a: TierPrice(t.on_demand, t.fixed, t.spot, t.spot_interruption or 0.0) for a, t in tiers.items()}
    total = sum(prep.rates)
    mix = [r / total for r in prep.rates]
    period_h = prof.period_s / 3600.0
    planned = list(prof.planned_rates())
    idle = sc.pricing.idle_fraction
    sol = solve_day(prep.table, mix, planned, period_h, tp, prep.limits, idle_fraction=idle)
    if not sol.ok:
        if sol.status == "time limit":
            raise SolverLimitError(f"solver: no day schedule within the {sc.time_limit_s:g} s time limit; "
                                   "raise solver.time_limit_s or use fewer periods")
        raise InfeasibleError("no schedule meets the SLO in every period within the limits (availability, "
                              "budget, prices offered); plan the peak alone with the profile removed to see why")
    peak = solve_day(prep.table, mix, [prof.peak_rps] * len(planned), period_h, tp, prep.limits, idle_fraction=idle)
    return _day_plan(sc, prep, tiers, sol, peak, planned, period_h)


def _day_plan(sc: Scenario, prep: Prepared, tiers: dict[str, Tiers], sol: DaySolution, peak: DaySolution,
              planned: list[float], period_h: float) -> DayPlan:
    table, prof, pr = prep.table, sc.rate_profile, sc.pricing
    n = len(planned)
    rows = []
    for g in sorted(set(sol.fixed) | set(sol.on_demand) | set(sol.spot)):
        c = table.candidate(g) if g in {x.key for x in table.candidates} else next(
            x for x in table.candidates if x.base == g)
        rows.append(TypeSchedule(c.label, c.accelerator, c.gpus,
                                 tiers[c.accelerator].fixed_kind, sol.fixed.get(g, 0),
                                 sol.on_demand.get(g, (0,) * n), sol.spot.get(g, (0,) * n)))
    per_gpu = {a: t for a, t in tiers.items()}
    cost_p, power_p, gpus_p = [], [], []
    for p in range(n):
        cost = watts = 0.0
        gpus = 0
        for row in rows:
            t = per_gpu[row.accelerator]
            bought = row.fixed + row.on_demand[p] + row.spot[p]
            cost += row.gpus_per_instance * ((t.fixed or 0) * row.fixed + (t.on_demand or 0) * row.on_demand[p]
                                             + (t.spot or 0) * row.spot[p]) * period_h
            tdp = next(c.watts / c.gpus for c in table.candidates if c.accelerator == row.accelerator)
            watts += bought * row.gpus_per_instance * pr.idle_fraction * tdp
            gpus += bought * row.gpus_per_instance
        for (key, pp), busy in sol.load.items():
            if pp == p:
                c = table.candidate(key)
                watts += (1 - pr.idle_fraction) * c.watts * table.target_utilisation * busy
        cost_p.append(cost)
        power_p.append(watts)
        gpus_p.append(gpus)
    span_h = period_h * n
    joules = sum(w * period_h * 3600 for w in power_p) * pr.pue
    osl = sum(b.rate_rps * b.osl_mean for b in prep.buckets) / sum(b.rate_rps for b in prep.buckets)
    tokens = sum(r * prof.period_s * osl for r in prof.rates_rps)
    day = sum(cost_p) * 24.0 / span_h
    peak_day = peak.cost * 24.0 / span_h if peak.ok else day
    notes = [f"capacity table built once at the peak ({prof.peak_rps:g} req/s) request mix; every period has "
             "the same mix", "spot instances count at their expected surviving share (1 - interruption rate)",
             f"scale-up lag {prof.scale_up_lag_s:g} s: each period meets the highest rate of the next "
             f"{prof.lead_periods} period(s) (the day wraps)" if prof.lead_periods else "no scale-up lag",
             IDLE_SOURCE, "peak-sized: the same program with every period at the peak (a static fleet)"]
    if any(t.owned for t in tiers.values()):
        notes.append(owned_note(pr))
    if span_h != 24.0:
        notes.append(f"the profile spans {span_h:g} h; per-day figures are scaled to 24 h")
    if sol.status == "feasible":
        notes.append("solver stopped at its time limit: best schedule found, not proven optimal")
    prices = tuple({"accelerator": a, "on_demand": t.on_demand, "fixed": t.fixed, "fixed_kind": t.fixed_kind,
                    "spot": t.spot, "spot_interruption": t.spot_interruption, "owned": t.owned,
                    "source": t.source, "date": t.date} for a, t in sorted(tiers.items())
                   if any(r.accelerator == a for r in rows))
    return DayPlan(
        scenario=sc.name, model=prep.model_id, status=sol.status, objective=sc.objective, currency=pr.currency,
        period_s=prof.period_s, rates_rps=prof.rates_rps, planned_rates_rps=tuple(planned),
        scale_up_lag_s=prof.scale_up_lag_s, schedule=tuple(rows), cost_per_period=tuple(cost_p), cost_per_day=day,
        peak_sized_cost_per_day=peak_day, saving_per_day=peak_day - day,
        saving_pct=100.0 * (peak_day - day) / peak_day if peak_day else 0.0, power_w=tuple(power_p),
        kwh_per_day=joules / J_PER_KWH * 24.0 / span_h, joules_per_output_token=joules / tokens if tokens else None,
        gpus_per_period=tuple(gpus_p), prices=prices, solve_s=sol.solve_s + peak.solve_s, notes=tuple(notes))
