"""Error bands on predictions from the out-of-sample error of the shipped calibration.

``planner/data/uncertainty.csv`` (``scripts/gen_uncertainty.py``) holds quantiles of
log(measured / predicted) per (engine, accelerator family, metric) on the hold-out half. A band at
confidence c is point × exp(q_(1−c)/2 … q_(1+c)/2), widened where a group has few rows (the log-span
scaled by 1 + 5/n), and always containing the point. A group with no rows takes the band of all
rows of that metric (row-weighted mean of the groups' quantiles) widened by half, flagged "uncalibrated".
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from planner.errors import PlannerError
from planner.hardware import HardwareDB, default_hardware

TABLE = Path(__file__).resolve().parent / "data" / "uncertainty.csv"
QUANTILES = (0.05, 0.10, 0.25, 0.75, 0.90, 0.95)
LEVELS = (0.5, 0.8, 0.9)
METRICS = ("ttft_s", "tpot_s", "output_tokens_per_s")


@dataclass(frozen=True)
class Band:
    """Multipliers of a point prediction: low ≤ 1 ≤ high; ``n`` rows behind it; ``calibrated``."""

    low: float
    high: float
    n: int
    calibrated: bool


@functools.cache
def _table() -> pd.DataFrame:
    if not TABLE.is_file():
        raise PlannerError(f"{TABLE}: missing; run python scripts/gen_uncertainty.py")
    return pd.read_csv(TABLE, comment="#")


def _cols(confidence: float) -> tuple[str, str]:
    if confidence not in LEVELS:
        raise PlannerError(f"--confidence: expected one of {', '.join(f'{x:g}' for x in LEVELS)} (got {confidence:g})")
    lo, hi = (1 - confidence) / 2, (1 + confidence) / 2
    return f"q{round(100 * lo):02d}", f"q{round(100 * hi):02d}"


def band(engine: str, family: str, metric: str, confidence: float = 0.9) -> Band:
    """The band of one (engine, family, metric) group."""
    lo_c, hi_c = _cols(confidence)
    t = _table()
    g = t[(t["engine"] == engine) & (t["family"] == family) & (t["metric"] == metric)]
    if g.empty:
        allm = t[t["metric"] == metric]
        if allm.empty:
            return Band(0.5, 2.0, 0, False)
        w = allm["n"] / allm["n"].sum()  # pooled over the metric's groups (row-weighted), widened by half
        lo, hi = 1.5 * float((w * allm[lo_c]).sum()), 1.5 * float((w * allm[hi_c]).sum())
        return Band(math.exp(min(lo, 0.0)), math.exp(max(hi, 0.0)), 0, False)
    r = g.iloc[0]
    n = int(r["n"])
    widen = 1 + 5 / n
    lo, hi = float(r[lo_c]), float(r[hi_c])
    mid = (lo + hi) / 2
    lo, hi = mid + (lo - mid) * widen, mid + (hi - mid) * widen
    return Band(math.exp(min(lo, 0.0)), math.exp(max(hi, 0.0)), n, True)


def _worst(bands: list[Band]) -> Band:
    if not bands:  # nothing serves (a plan with no groups): no band to widen by
        return Band(1.0, 1.0, 0, False)
    return Band(min(b.low for b in bands), max(b.high for b in bands), min(b.n for b in bands),
                all(b.calibrated for b in bands))


def upper_factor(engine: str, accelerators: list[str], metric: str, confidence: float,
                 hw: HardwareDB | None = None) -> float:
    """The largest ``high`` multiplier of ``metric`` over the accelerators a plan may use."""
    hw = hw or default_hardware()
    return max(band(engine, hw.get(a).family, metric, confidence).high for a in accelerators)


def with_bands(plan: dict[str, Any], confidence: float = 0.9, hw: HardwareDB | None = None) -> dict[str, Any]:
    """The plan JSON with ``<metric>_low``/``<metric>_high`` beside every predicted TTFT, TPOT and
    throughput (per bucket from the groups serving it, plan-wide from all groups) and the bands used."""
    hw = hw or default_hardware()
    out = dict(plan)
    per_group = []
    for g in plan["groups"]:
        fam = hw.get(g["accelerator"]).family
        per_group.append({m: band(g["engine"], fam, m, confidence) for m in METRICS})
    buckets = []
    for b in plan["buckets"]:
        b = dict(b)
        serving = [i for i, g in enumerate(plan["groups"]) if float(g["bucket_shares"].get(str(b["index"]), 0)) > 0]
        for m, skip in (("ttft_s", "decode"), ("tpot_s", "prefill")):
            bands = [per_group[i][m] for i in serving if plan["groups"][i]["role"] != skip] or \
                [Band(1.0, 1.0, 0, False)]
            w = _worst(bands)
            b[f"{m}_low"], b[f"{m}_high"] = b[m] * w.low, b[m] * w.high
            b[f"{m}_calibrated"] = w.calibrated
        buckets.append(b)
    out["buckets"] = buckets
    pred = dict(plan["predicted"])
    for m in ("ttft_s", "tpot_s"):
        if pred.get(m) is not None and buckets:
            pred[f"{m}_low"] = pred[m] * _worst([pg[m] for pg in per_group]).low
            pred[f"{m}_high"] = max(pred[m], max(b[f"{m}_high"] for b in buckets))
    out["predicted"] = pred
    w = _worst([pg["output_tokens_per_s"] for pg in per_group])
    out["output_tokens_per_s_low"] = plan["output_tokens_per_s"] * w.low
    out["output_tokens_per_s_high"] = plan["output_tokens_per_s"] * w.high
    out["uncertainty"] = {"confidence": confidence, "source": "planner/data/uncertainty.csv (hold-out errors)",
                          "groups": [{"group": i + 1, **{m: {"low": b.low, "high": b.high, "n": b.n,
                                                             "status": "calibrated" if b.calibrated else "uncalibrated"}
                                                         for m, b in pg.items()}} for i, pg in enumerate(per_group)]}
    return out


def confident_scenario(sc: Any, confidence: float, accelerators: list[str], hw: HardwareDB | None = None
                       ) -> tuple[Any, dict[str, float]]:
    """The scenario with its SLO limits divided by the band's upper multiplier (the largest over the
    candidate accelerators), so that the plan meets the SLO at the band's upper end; and the factors."""
    from planner.scenario import with_overrides

    f = {m: upper_factor(sc.engine, accelerators, m, confidence, hw) for m in ("ttft_s", "tpot_s")}
    ttft = sc.slo.ttft_s / f["ttft_s"] if sc.slo.ttft_s is not None else None
    tpot = sc.slo.tpot_s / f["tpot_s"] if sc.slo.tpot_s is not None else None
    return with_overrides(sc, ttft_s=ttft, tpot_s=tpot), f
