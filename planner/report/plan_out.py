"""Writers for a Plan: rich tables, CSV and XLSX (sheets: plan, alternatives, buckets, assumptions)."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from rich.table import Table

from planner.errors import PlannerError
from planner.files import write_atomic
from planner.plan_result import Plan
from planner.report.fmt import seconds, summary_table


def unit(currency: str) -> str:
    """The currency as a column label writes it: ``$`` for US dollars, else the code."""
    return "$" if currency == "USD" else currency


def money(value: float, currency: str, digits: int = 2) -> str:
    """``$27.51`` in US dollars, ``27.51 EUR`` in any other currency."""
    return f"${value:,.{digits}f}" if currency == "USD" else f"{value:,.{digits}f} {currency}"


def render(plan: Plan, console: Console) -> None:
    limits = " / ".join(f"{name} {seconds(plan.slo[key])}" for name, key in (("TTFT", "ttft_s"), ("TPOT", "tpot_s"))
                        if plan.slo.get(key) is not None)
    head = (f"[bold]{plan.model}[/] at {plan.rate_rps:g} req/s, SLO p{plan.slo['percentile']:g} {limits} — "
            f"{plan.status} ({plan.engine}, {plan.precision} weights, {plan.kv_dtype} KV)")
    console.print(head)
    cur = unit(plan.currency)
    t = Table(title="recommended deployment")
    for col in ("accelerator", "role", "TP", "PP", "EP", "tokens/step", "instances", "GPUs", f"{cur}/hour",
                "utilisation", "buckets"):
        t.add_column(col, justify="left" if col in ("accelerator", "role", "buckets") else "right")
    for g in plan.groups:
        t.add_row(g.accelerator, g.role, f"{g.tp}{' DPA' if g.dp_attn else ''}", str(g.pp), str(g.ep),
                  f"{g.token_budget:,}" if g.role != "decode" else "-", str(g.instances),
                  str(g.gpus),
                  f"{g.cost_per_hour:,.2f}", f"{100 * g.utilisation:.0f}%",
                  ", ".join(f"{b}:{100 * s:.0f}%" for b, s in g.bucket_shares.items()))
    console.print(t)
    s = summary_table("summary")
    c = plan.currency
    s.add_row("cost", f"{money(plan.cost_per_hour, c)}/hour ({money(24 * plan.cost_per_hour, c)}/day)")
    s.add_row("per million output tokens", money(plan.cost_per_million_output_tokens, c, 3))
    s.add_row("per million total tokens", money(plan.cost_per_million_total_tokens, c, 3))
    s.add_row("GPUs / power", f"{plan.total_gpus} / {plan.watts / 1e3:,.1f} kW")
    if plan.energy:
        jpt = plan.energy.get("joules_per_output_token")
        s.add_row("energy at the planned load", f"{plan.energy['kwh_per_day']:,.1f} kWh/day, "
                  + ("-" if jpt is None else f"{jpt:.3g} J/token"))
    s.add_row(f"predicted p{plan.predicted['percentile']:g} TTFT (worst bucket)", seconds(plan.predicted["ttft_s"]))
    s.add_row(f"predicted p{plan.predicted['percentile']:g} TPOT (worst bucket)", seconds(plan.predicted["tpot_s"]))
    s.add_row("output tokens/s", f"{plan.output_tokens_per_s:,.0f}")
    s.add_row("binding", "; ".join(plan.binding) or "-")
    s.add_row("solver", f"{plan.status}, {plan.solve_s:.2f} s, {plan.candidates} candidates"
              + (f", gap {100 * plan.gap:.2f}%" if plan.gap is not None else ""))
    console.print(s)
    b = Table(title="per bucket")
    for col in ("#", "input tokens", "output tokens", "req/s", f"TTFT p{plan.predicted['percentile']:g}",
                f"TPOT p{plan.predicted['percentile']:g}", "served by"):
        b.add_column(col, justify="left" if col == "served by" else "right")
    for r in plan.buckets:
        b.add_row(str(r.index), r.isl, r.osl, f"{r.rate_rps:.3g}", seconds(r.ttft_s), seconds(r.tpot_s), r.served_by)
    console.print(b)
    r = Table(title="routing (by prompt length)")
    r.add_column("input tokens")
    r.add_column("share per group")
    for route in plan.routing:
        r.add_row(route.isl, "; ".join(f"{k} {100 * v:.0f}%" for k, v in route.shares.items()))
    console.print(r)
    a = Table(title="alternatives")
    for col in ("alternative", "status", f"{cur}/hour", "vs plan", "GPUs", "why"):
        a.add_column(col, justify="right" if col in (f"{cur}/hour", "vs plan", "GPUs") else "left")
    for alt in plan.alternatives:
        a.add_row(alt.name, alt.status, "-" if alt.cost_per_hour is None else f"{alt.cost_per_hour:,.2f}",
                  "-" if alt.delta_pct is None else f"{alt.delta_pct:+.1f}%",
                  "-" if alt.total_gpus is None else str(alt.total_gpus), alt.detail)
    console.print(a)
    for n in plan.notes:
        console.print(f"[yellow]note:[/] {n}")


def write_csv(plan: Plan, path: Path) -> None:
    buf = io.StringIO()
    frame = plan.to_frame()
    frame.insert(0, "model", plan.model)
    frame["plan_cost_per_hour"] = plan.cost_per_hour
    frame["plan_status"] = plan.status
    frame["plan_slo_percentile"] = plan.slo.get("percentile")
    frame.to_csv(buf, index=False)
    write_atomic(Path(path), buf.getvalue().encode())


def write_xlsx(plan: Plan, path: Path) -> None:
    try:
        import openpyxl  # noqa: F401
    except ImportError:
        raise PlannerError("--xlsx needs openpyxl: pip install 'llm-capacity-planner[xlsx]'") from None
    import pandas as pd

    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as xw:
        plan.to_frame().to_excel(xw, sheet_name="plan", index=False)
        plan.alternatives_frame().to_excel(xw, sheet_name="alternatives", index=False)
        plan.buckets_frame().to_excel(xw, sheet_name="buckets", index=False)
        plan.assumptions().to_excel(xw, sheet_name="assumptions", index=False)
    write_atomic(Path(path), buf.getvalue())
