"""Rich tables for a plan replayed in simulation (``planner plan --verify``, ``planner simulate --plan``)."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from planner.report.fmt import seconds, summary_table
from planner.verify_result import Verification


def _pct(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def render(v: Verification, console: Console) -> None:
    """Headline, per-bucket attainment, per-group throughput and utilisation, over-provisioning, rules."""
    slo = v.slo
    limits = " / ".join(f"{name} {seconds(slo[key])}" for name, key in (("TTFT", "ttft_s"), ("TPOT", "tpot_s"))
                        if slo.get(key) is not None)
    verdict = "[bold green]meets the SLO[/]" if v.meets else "[bold red]misses the SLO[/]"
    console.print(f"[bold]simulated replay[/] of {v.model} ({v.scenario or 'plan'}): {v.n_requests} requests, "
                  f"seed {v.seed}, first {100 * v.warmup_share:.0f}% as warm-up; SLO p{slo.get('percentile', 99):g} "
                  f"{limits}: {verdict}, {_pct(v.attainment)} of {v.measured_requests} measured requests within it",
                  highlight=False)
    p = f"p{slo.get('percentile', 99):g}"
    b = Table(title="attainment per bucket (simulated)")
    for col in ("#", "input tokens", "output tokens", "requests", "beyond tail", "TTFT ok", "TPOT ok", "both",
                "needed", f"TTFT {p}", f"TPOT {p}", "meets"):
        b.add_column(col, justify="right")
    for r in v.buckets:
        need = f">= {100 * (r.required - r.tolerance):.1f}%" if r.requests else "-"
        mark = "-" if not r.requests else ("[green]yes[/]" if r.meets else "[red]no[/]")
        b.add_row(str(r.index), r.isl, r.osl, str(r.requests), str(r.beyond_tail), _pct(r.ttft_ok), _pct(r.tpot_ok),
                  _pct(r.attainment), need, seconds(r.ttft_s), seconds(r.tpot_s), mark)
    console.print(b)
    g = Table(title="groups (simulated)")
    for col in ("group", "instances", "smallest", "requests", "req/s", "tokens/s", "busy", "planned util.",
                "preemptions"):
        g.add_column(col, justify="left" if col == "group" else "right")
    for r in v.groups:
        small = "-" if r.smallest_instances is None else f"{r.smallest_instances}{'' if r.searched else ' (cap)'}"
        g.add_row(r.label, str(r.instances), small, str(r.requests), f"{r.requests_per_s:,.2f}",
                  f"{r.tokens_per_s:,.0f}", _pct(r.utilisation), _pct(r.planned_utilisation), str(r.preemptions))
    console.print(g)
    s = summary_table("over-provisioning")
    s.add_row("planned GPUs", str(v.planned_gpus))
    s.add_row("smallest GPUs meeting the SLO in simulation",
              "-" if v.sufficient_gpus is None else str(v.sufficient_gpus))
    s.add_row("planned / sufficient", "-" if v.overprovision_ratio is None else f"{v.overprovision_ratio:.2f}x")
    s.add_row("replays in the search", str(v.replays))
    s.add_row("requests clipped to bucket bounds / not run / unfinished",
              f"{v.clipped} / {v.rejected} / {v.unfinished}")
    s.add_row("time", f"{v.elapsed_s:.1f} s")
    console.print(s)
    for rule in v.rules:
        console.print(f"[dim]rule:[/] {rule}", highlight=False)
    for note in v.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
