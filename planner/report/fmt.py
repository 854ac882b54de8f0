"""Human formatting of SI values at the edge (tables); JSON stays SI."""

from __future__ import annotations

import math


def si(value: float, unit: str, digits: int = 3) -> str:
    """``1.23e12, 'FLOP'`` -> ``'1.23 TFLOP'`` (decimal prefixes)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value == 0:
        return f"0 {unit}"
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.{digits}g} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}"


def gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:,.1f} GiB"


def seconds(value: float | None) -> str:
    """Seconds with a readable unit: µs, ms or s."""
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return "-"
    if value < 1e-3:
        return f"{value * 1e6:.1f} µs"
    if value < 1:
        return f"{value * 1e3:.2f} ms"
    return f"{value:.2f} s"


def summary_table(title: str):
    """A headerless two-column table of labels and right-aligned values (plan, day, fleet, replay summaries)."""
    from rich.table import Table

    t = Table(show_header=False, title=title)
    t.add_column("k")
    t.add_column("v", justify="right")
    return t
