"""Writers for a fleet plan of several models: the fleet's totals and shared quotas as rich tables,
then each model's section as ``plan_out.render`` prints a one-model plan; CSV of every group."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from rich.table import Table

from planner.files import write_atomic
from planner.multi_result import MultiPlan
from planner.report import plan_out
from planner.report.fmt import summary_table


def render(mp: MultiPlan, console: Console) -> None:
    console.print(f"[bold]{len(mp.models)} models in one fleet[/]{f' ({mp.scenario})' if mp.scenario else ''} — "
                  f"{mp.status}, objective {mp.objective}")
    code = mp.models[0].plan.currency if mp.models else "USD"  # pricing is shared by every model
    cur = plan_out.unit(code)
    t = Table(title="models")
    for col in ("name", "model", "req/s", f"{cur}/hour", "GPUs", f"{cur}/M output tokens", f"alone {cur}/hour"):
        t.add_column(col, justify="left" if col in ("name", "model") else "right")
    for s in mp.models:
        p = s.plan
        t.add_row(s.name, p.model, f"{p.rate_rps:g}", f"{p.cost_per_hour:,.2f}", str(p.total_gpus),
                  f"{p.cost_per_million_output_tokens:,.3f}",
                  "-" if s.alone_cost_per_hour is None else f"{s.alone_cost_per_hour:,.2f}")
    console.print(t)
    q = Table(title="shared quota")
    for col in ("accelerator", "GPUs used", "available"):
        q.add_column(col, justify="left" if col == "accelerator" else "right")
    for acc in sorted(set(mp.gpus_by_accelerator) | set(mp.availability)):
        q.add_row(acc, str(mp.gpus_by_accelerator.get(acc, 0)), str(mp.availability.get(acc, "unlimited")))
    console.print(q)
    s = summary_table("fleet")
    s.add_row("cost", f"{plan_out.money(mp.cost_per_hour, code)}/hour"
              + (f" (budget {plan_out.money(mp.budget_per_hour, code)}/hour)" if mp.budget_per_hour is not None
                 else ""))
    s.add_row("per million output tokens", plan_out.money(mp.cost_per_million_output_tokens, code, 3))
    s.add_row("GPUs / power", f"{mp.total_gpus} / {mp.watts / 1e3:,.1f} kW")
    s.add_row("binding (shared)", "; ".join(mp.binding) or "-")
    s.add_row("solver", f"{mp.status}, {mp.solve_s:.2f} s" + (f", gap {100 * mp.gap:.2f}%" if mp.gap is not None
                                                              else ""))
    console.print(s)
    for n in mp.notes:
        console.print(f"[yellow]note:[/] {n}")
    for sec in mp.models:
        console.rule(f"[bold]model {sec.name}")
        plan_out.render(sec.plan, console)


def write_csv(mp: MultiPlan, path: Path) -> None:
    """One row per group of every model, with the fleet's cost and status on each row."""
    buf = io.StringIO()
    frame = mp.to_frame()
    frame["plan_cost_per_hour"] = mp.cost_per_hour
    frame["plan_status"] = mp.status
    frame.to_csv(buf, index=False)
    write_atomic(Path(path), buf.getvalue().encode())
