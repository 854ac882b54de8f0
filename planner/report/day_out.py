"""Rich tables for a DayPlan: the schedule per period, the day's cost, energy and saving, the prices."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from planner.day import DayPlan
from planner.report.fmt import summary_table


def _hour(p: int, period_s: float) -> str:
    start = p * period_s
    return f"{int(start // 3600):02d}:{int(start % 3600 // 60):02d}"


def render_day(day: DayPlan, console: Console) -> None:
    cur = day.currency
    console.print(f"[bold]{day.model}[/] over {len(day.rates_rps)} periods of {day.period_s / 60:g} min, peak "
                  f"{max(day.rates_rps):g} req/s — {day.status} (objective {day.objective})", highlight=False)
    t = Table(title="schedule (instances per type per period: fixed + on-demand + spot)")
    t.add_column("period")
    t.add_column("req/s", justify="right")
    t.add_column("planned", justify="right")
    for row in day.schedule:
        t.add_column(f"{row.label}\n({row.fixed_kind})", justify="right")
    t.add_column("GPUs", justify="right")
    t.add_column(f"{cur}", justify="right")
    t.add_column("kW", justify="right")
    for p, rate in enumerate(day.rates_rps):
        cells = [f"{r.fixed}+{r.on_demand[p]}+{r.spot[p]}" for r in day.schedule]
        t.add_row(_hour(p, day.period_s), f"{rate:.3g}", f"{day.planned_rates_rps[p]:.3g}", *cells,
                  str(day.gpus_per_period[p]), f"{day.cost_per_period[p]:,.2f}", f"{day.power_w[p] / 1e3:,.2f}")
    console.print(t)
    s = summary_table("day")
    s.add_row("cost", f"{day.cost_per_day:,.2f} {cur}/day")
    s.add_row("sized for the peak all day", f"{day.peak_sized_cost_per_day:,.2f} {cur}/day")
    s.add_row("saving", f"{day.saving_per_day:,.2f} {cur}/day ({day.saving_pct:.1f}%)")
    s.add_row("energy", f"{day.kwh_per_day:,.1f} kWh/day")
    s.add_row("per output token", "-" if day.joules_per_output_token is None
              else f"{day.joules_per_output_token:.3g} J/token")
    s.add_row("scale-up lag", f"{day.scale_up_lag_s:g} s")
    s.add_row("solver", f"{day.status}, {day.solve_s:.2f} s")
    console.print(s)
    pt = Table(title=f"prices used ({cur} per GPU-hour)")
    for col in ("accelerator", "on-demand", "fixed", "spot", "interruption", "date", "source"):
        pt.add_column(col, justify="left" if col in ("accelerator", "source", "date") else "right")

    def num(v) -> str:
        return "-" if v is None else f"{v:,.3g}"

    for pr in day.prices:
        pt.add_row(pr["accelerator"], num(pr["on_demand"]), f"{num(pr['fixed'])} ({pr['fixed_kind']})",
                   num(pr["spot"]), num(pr["spot_interruption"]), pr["date"] or "-", pr["source"])
    console.print(pt)
    for n in day.notes:
        console.print(f"[yellow]note:[/] {n}", highlight=False)
