"""The sweep table on a terminal: one row per point, its axis values, status, $/hour, GPUs, groups."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

MAX_SHOWN = 200  # rows printed; the file or --json has them all


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def sweep_table(rows: list[dict[str, Any]], paths: tuple[str, ...], title: str, console: Console) -> None:
    t = Table(title=title)
    cols = ("point", *paths, "status", "cost_per_hour", "total_gpus", "groups")
    for c in cols:
        t.add_column(c, justify="right" if c in ("point", "cost_per_hour", "total_gpus") else "left",
                     overflow="fold")
    for r in rows[:MAX_SHOWN]:
        t.add_row(*[_fmt(r.get(c)) if c != "groups" or r.get("feasible") else _fmt(r.get("reason"))[:80]
                    for c in cols])
    console.print(t)
    if len(rows) > MAX_SHOWN:
        console.print(f"... and {len(rows) - MAX_SHOWN} more points (write them all with -o or --json)")


def summary(rows: list[dict[str, Any]]) -> str:
    """``200 points: 180 planned, 20 infeasible``."""
    counts: dict[str, int] = {}
    for r in rows:
        key = "planned" if r.get("feasible") else str(r.get("status"))
        counts[key] = counts.get(key, 0) + 1
    return f"{len(rows)} points: " + ", ".join(f"{n} {k}" for k, n in counts.items())
