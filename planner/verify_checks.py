"""Attainment checks of a replayed plan (``planner.verify``): per request, per bucket and overall.

A request meets the SLO when it finished with TTFT <= ``slo.ttft_s`` and TPOT <= ``slo.tpot_s``. A
bucket meets when its share of such requests is at least the SLO attainment a less two binomial
standard errors; a prompt longer than the whole workload's at the SLO percentile (no bucket's TTFT
tail is planned for it, ``planner.workload.prompt_tail``) may miss TTFT in its bucket. The plan meets
when every bucket does and the attainment over every measured request meets too, with no allowance.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from planner.verify_result import BucketCheck

if TYPE_CHECKING:
    from planner.verify import _Replay

MIN_TOLERANCE = 0.005


def _outcome(rep: _Replay, first: np.ndarray, finish: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                           np.ndarray]:
    """Per request: TTFT, TPOT (inf when not reached), meets TTFT, meets TPOT."""
    ttft = np.where(np.isnan(first), np.inf, first - rep.arrival_s)
    multi = rep.osl > 1
    tpot = np.where(multi, (finish - first) / np.maximum(rep.osl - 1, 1), 0.0)
    tpot = np.where(np.isnan(finish), np.inf, tpot)
    ok_t = np.isfinite(ttft) & (ttft <= (rep.ttft_s if rep.ttft_s is not None else np.inf))
    ok_p = np.isfinite(tpot) & (tpot <= (rep.tpot_s if rep.tpot_s is not None else np.inf))
    return ttft, tpot, ok_t, ok_p


def _check(rep: _Replay, plan_buckets: list[dict[str, Any]], first: np.ndarray, finish: np.ndarray,
           pct: float) -> tuple[list[BucketCheck], bool, float]:
    """(the buckets' checks, whether the plan meets, the attainment over every measured request), from one
    pass over the requests' outcomes. The plan meets when every bucket does and so does that attainment,
    with no allowance for prompts beyond the planned tail."""
    ttft, tpot, ok_t, ok_p = _outcome(rep, first, finish)
    beyond = rep.isl > rep.isl_cap
    ok_tb = ok_t | beyond  # in its bucket, a prompt beyond the planned tail may miss TTFT (BucketCheck)
    a = rep.required
    out = []
    for k, b in enumerate(plan_buckets):
        m = rep.measured & (rep.bucket == k)
        n = int(m.sum())
        tol = _tolerance(a, n)
        att = float((ok_tb[m] & ok_p[m]).mean()) if n else math.nan
        pm = m & (rep.osl > 1)
        out.append(BucketCheck(
            index=k, isl=str(b["isl"]), osl=str(b["osl"]), requests=n, attainment=att,
            ttft_ok=float(ok_tb[m].mean()) if n else math.nan, tpot_ok=float(ok_p[m].mean()) if n else math.nan,
            ttft_s=_nearest_rank(ttft[m], pct), tpot_s=_nearest_rank(tpot[pm], pct),
            required=a, tolerance=tol, meets=bool(n == 0 or att >= a - tol), beyond_tail=int((m & beyond).sum())))
    m = rep.measured
    n = int(m.sum())
    overall = float((ok_t[m] & ok_p[m]).mean()) if n else math.nan
    meets = all(b.meets for b in out) and (n == 0 or overall >= a - _tolerance(a, n))
    return out, meets, overall


def _tolerance(a: float, n: int) -> float:
    """Two binomial standard errors of an attainment over n requests (at least ``MIN_TOLERANCE``)."""
    return max(MIN_TOLERANCE, 2 * math.sqrt(a * (1 - a) / n)) if n else 0.0


def _nearest_rank(x: np.ndarray, pct: float) -> float:
    """Nearest-rank percentile: the ⌈pct/100 · n⌉-th smallest value (inf when it was never reached; NaN if empty)."""
    if not x.size:
        return math.nan
    return float(np.sort(x)[max(math.ceil(pct / 100 * x.size), 1) - 1])
