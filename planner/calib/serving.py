"""Fit the engine-level factors of a profile to end-to-end measurements.

Only the factors the rows can identify are fitted (``identifiable``); the others keep the
profile's values, and every factor stays within physical bounds.

Kernel-level factors come from kernel tables (``planner.calib.kernels``); what a serving
engine adds on top (per-kernel cost inside a step, per-step host overhead, per-request TTFT
overhead, closed-loop burstiness, and a bandwidth scale) is fitted here per (engine,
accelerator family) with scipy's robust ``least_squares`` (soft-L1 on log(predicted/measured)).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from planner.calib.measured import METRICS
from planner.errors import PlannerError
from planner.hardware import HardwareDB, default_hardware
from planner.profile import Efficiency, Profile
from planner.validate import predict_row

SERVING_FACTORS = ("kernel_overhead_s", "step_overhead_s", "ttft_overhead_s", "closed_loop_burst", "mem_eff_max",
                   "gemm_eff_max")
# Physical floors keep factors the data cannot pin down from collapsing to zero: a kernel inside a
# CUDA graph still costs about a microsecond, an engine step (schedule, sample, detokenise) a few
# hundred microseconds, a request's path to its first token (HTTP, tokenise, queue hops) milliseconds.
# Ceilings: no kernel streams HBM at more than ~95% of its datasheet rate (H100 copy kernels reach
# ~90%), and per-step / per-request overheads beyond a few ms / a quarter second are not engine costs
# but a sign the fit is absorbing something else.
_BOUNDS = {"kernel_overhead_s": (1e-6, 2e-5), "step_overhead_s": (2e-4, 5e-3), "ttft_overhead_s": (2e-3, 0.25),
           "closed_loop_burst": (0.0, 1.0), "mem_eff_max": (0.4, 0.95), "gemm_eff_max": (0.3, 1.0)}
_SCALE = {"kernel_overhead_s": 1e-6, "step_overhead_s": 1e-3, "ttft_overhead_s": 1e-2, "closed_loop_burst": 0.1,
          "mem_eff_max": 1.0, "gemm_eff_max": 1.0}


def identifiable(rows: list[dict]) -> tuple[str, ...]:
    """The factors the rows can pin down: TTFT rows fix the TTFT overhead, closed-loop TTFT rows the
    burst factor, latency rows the per-kernel and per-step overheads; throughput-only rows (MLPerf
    Offline) only the bandwidth and compute efficiencies."""
    has = {m: any(_pos(r.get(m)) for r in rows) for m in METRICS}
    closed = any(_pos(r.get("concurrency")) for r in rows)
    out = ["mem_eff_max"]
    if has["tpot_s"] or has["ttft_s"]:
        out += ["kernel_overhead_s", "step_overhead_s"]
    else:
        out += ["gemm_eff_max"]
    if has["ttft_s"]:
        out += ["ttft_overhead_s"] + (["closed_loop_burst"] if closed else [])
    return tuple(out)


def _profile_with(profile: Profile, acc_ids: list[str], eff: Efficiency) -> Profile:
    for a in acc_ids:
        profile = profile.with_override(a, eff)
    return profile


def fit_serving(rows: pd.DataFrame, profile: Profile, family: str, hw: HardwareDB | None = None,
                factors: tuple[str, ...] | None = None, max_nfev: int = 25) -> tuple[Efficiency, float]:
    """Fit ``factors`` for the accelerators of ``family`` in ``rows``; returns (efficiency, train MdAPE).

    Rows of other families are ignored. Every metric present in a row (throughput, TTFT, TPOT)
    contributes one residual.
    """
    from scipy.optimize import least_squares

    hw = hw or default_hardware()
    recs = [r for r in rows.to_dict("records") if _family(r, hw) == family]
    if not recs:
        raise PlannerError(f"no measured rows for family {family}")
    acc_ids = sorted({hw.get(str(r["accelerator"])).id for r in recs})
    base = profile.for_accelerator(acc_ids[0], family)
    usable = []
    first_error = ""
    for r in recs:  # rows the model cannot evaluate (unknown model, does not fit) carry no signal
        try:
            predict_row(r, profile, hw)
            usable.append(r)
        except PlannerError as exc:
            first_error = first_error or str(exc)
            continue
    if not usable:
        raise PlannerError(f"no evaluable measured rows for family {family} (first reason: {first_error})")
    recs = usable
    factors = factors or identifiable(recs)
    meas = [{m: float(r[m]) for m in METRICS if _pos(r.get(m))} for r in recs]
    x0 = np.array([getattr(base, f) / _SCALE[f] for f in factors])
    lo = np.array([_BOUNDS[f][0] / _SCALE[f] for f in factors])
    hi = np.array([_BOUNDS[f][1] / _SCALE[f] for f in factors])
    x0 = np.clip(x0, lo + 1e-9, hi - 1e-9)

    def make(x: np.ndarray) -> Efficiency:
        return replace(base, **{f: float(v) * _SCALE[f] for f, v in zip(factors, x)})

    def resid(x: np.ndarray) -> np.ndarray:
        prof = _profile_with(profile, acc_ids, make(x))
        out = []
        for r, m in zip(recs, meas):
            try:
                pred = predict_row(r, prof, hw)
            except PlannerError:
                out.extend([2.0] * len(m))
                continue
            for k, v in m.items():
                p = pred.get(k, np.nan)
                out.append(float(np.log(p / v)) if np.isfinite(p) and p > 0 else 2.0)
        return np.array(out)

    res = least_squares(resid, x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.2, diff_step=0.05,
                        max_nfev=max_nfev)
    ape = np.abs(np.exp(res.fun) - 1)
    return make(res.x), float(np.median(ape))


def _pos(v: object) -> bool:
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return np.isfinite(f) and f > 0


def _family(row: dict, hw: HardwareDB) -> str | None:
    try:
        return hw.get(str(row["accelerator"])).family
    except PlannerError:
        return None
