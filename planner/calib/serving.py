"""Fit the engine-level factors of a profile to end-to-end measurements.

Only the factors the rows can identify are fitted (``identifiable``); the others keep the
profile's values, and every factor stays within physical bounds.

Two levels: kernel-level factors come from kernel tables (``planner.calib.kernels``), physical and
shared by every engine; what a serving engine adds on top (per-kernel cost inside a step, per-step
host overhead, per-request TTFT overhead, the closed-loop benchmark's prompts per client) is fitted here per (engine,
accelerator family) with the regularised (MAP) fit of ``planner.calib.fit`` (soft-L1 on
ln(predicted/measured), priors at the profile's values, physical bounds, standard errors).
Families without kernel tables (AMD, for instance) also get their bandwidth and compute
efficiencies from these rows (``identifiable(rows, kernel_factors_known=False)``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from planner.calib.fit import PRIORS, MapFit, Prior, map_fit
from planner.calib.measured import METRICS
from planner.errors import PlannerError
from planner.hardware import HardwareDB, default_hardware
from planner.profile import Efficiency, Profile
from planner.validate import measured_values, predict_row

SERVING_FACTORS = ("kernel_overhead_s", "step_overhead_s", "seq_overhead_s", "ttft_overhead_s", "bench_waves",
                   "moe_eff", "mem_eff_max", "gemm_eff_max")
# Physical floors keep factors the data cannot pin down from collapsing to zero: a kernel inside a
# CUDA graph still costs about a microsecond, an engine step (schedule, sample, detokenise) a few
# hundred microseconds, a request's path to its first token (HTTP, tokenise, queue hops) milliseconds.
# Ceilings: no kernel streams HBM at more than ~95% of its datasheet rate (H100 copy kernels reach
# ~90%), and per-step / per-request overheads beyond a few ms / a quarter second are not engine costs
# but a sign the fit is absorbing something else.
# The bounds live in planner.calib.fit.PRIORS (with their reasons); the two bandwidth/compute factors
# fitted here for families without kernel tables keep a tighter floor than the kernel fit's.
SERVING_PRIORS: dict[str, Prior] = {**PRIORS,
                                    "mem_eff_max": replace(PRIORS["mem_eff_max"], lo=0.4),
                                    "gemm_eff_max": replace(PRIORS["gemm_eff_max"], lo=0.3)}
OVERHEAD_FACTORS = ("kernel_overhead_s", "step_overhead_s", "seq_overhead_s", "ttft_overhead_s", "bench_waves",
                    "moe_eff")


def identifiable(rows: list[dict], kernel_factors_known: bool = False) -> tuple[str, ...]:
    """The factors the rows can pin down: TTFT rows fix the TTFT overhead, closed-loop TTFT rows the
    benchmark's prompts per client (its idle-start wave),
    latency rows the per-kernel and per-step overheads; throughput-only rows (MLPerf
    Offline) the per-step overhead when kernel factors are known, else only the bandwidth and compute
    efficiencies. With ``kernel_factors_known`` (a family fitted on kernel tables) the bandwidth
    efficiency is not refitted: it is physical, one value for every engine."""
    has = {m: any(_pos(r.get(m)) for r in rows) for m in METRICS}
    closed = any(_pos(r.get("concurrency")) for r in rows)
    out = [] if kernel_factors_known else ["mem_eff_max"]
    if has["tpot_s"] or has["ttft_s"]:
        out += ["kernel_overhead_s", "step_overhead_s"]
        if closed and len({r.get("concurrency") for r in rows if _pos(r.get("concurrency"))}) >= 3:
            out += ["seq_overhead_s"]  # separable from the per-step part only across batch sizes
    elif kernel_factors_known:
        out += ["step_overhead_s"]
    else:
        out += ["gemm_eff_max"]
    if has["ttft_s"]:
        out += ["ttft_overhead_s"] + (["bench_waves"] if closed else [])
    if has["tpot_s"] and any(_pos(r.get("tpot_s")) and _moe(r.get("model")) for r in rows):
        out += ["moe_eff"]  # the engine's MoE kernels, against the overheads dense rows share
    return tuple(out)


def _moe(model: object) -> bool:
    from planner.models import get_model

    try:
        return bool(get_model(str(model)).is_moe)
    except PlannerError:
        return False


def _profile_with(profile: Profile, acc_ids: list[str], eff: Efficiency) -> Profile:
    for a in acc_ids:
        profile = profile.with_override(a, eff)
    return profile


def fit_serving(rows: pd.DataFrame, profile: Profile, family: str, hw: HardwareDB | None = None,
                factors: tuple[str, ...] | None = None, max_nfev: int = 25) -> tuple[Efficiency, float]:
    """Fit ``factors`` for the accelerators of ``family`` in ``rows``; returns (efficiency, train MdAPE).

    Rows of other families are ignored. Every metric present in a row (throughput, TTFT, TPOT)
    contributes one residual. See ``fit_serving_map`` for the priors and standard errors.
    """
    eff, fit = fit_serving_map(rows, profile, family, hw, factors, max_nfev)
    return eff, float(np.median(np.abs(np.exp(fit.residuals) - 1)))


def fit_serving_map(rows: pd.DataFrame, profile: Profile | dict[str, Profile], family: str,
                    hw: HardwareDB | None = None, factors: tuple[str, ...] | None = None,
                    max_nfev: int = 25) -> tuple[Efficiency, MapFit]:
    """MAP fit of ``factors`` (default ``identifiable``) for ``family``: priors at the profile's
    values, spreads and bounds from ``SERVING_PRIORS``; returns the efficiency and the fit report.
    A row the model cannot evaluate at some trial point counts as a residual of 2 (a factor e^2 off).

    ``profile`` may map engine names to profiles: each row is then predicted with its own engine's
    profile and the fitted factors are shared by all of them (kernel factors are physical, one value for
    every engine); the priors and the returned efficiency are those of the first engine in name order."""
    hw = hw or default_hardware()
    recs = [r for r in rows.to_dict("records") if _family(r, hw) == family]
    if not recs:
        raise PlannerError(f"no measured rows for family {family}")
    acc_ids = sorted({hw.get(str(r["accelerator"])).id for r in recs})
    by_engine = profile if isinstance(profile, dict) else None

    def profile_of(r: dict) -> Profile:
        if by_engine is None:
            return profile  # type: ignore[return-value]
        engine = str(r.get("engine", "")).strip().lower()
        if engine not in by_engine:
            raise PlannerError(f"engine {engine!r}: no profile among {', '.join(sorted(by_engine))}")
        return by_engine[engine]

    first = by_engine[sorted(by_engine)[0]] if by_engine is not None else profile
    base = first.for_accelerator(acc_ids[0], family)  # type: ignore[union-attr]
    usable = []
    first_error = ""
    for r in recs:  # rows the model cannot evaluate (unknown model, does not fit) carry no signal
        try:
            predict_row(r, profile_of(r), hw)
            usable.append(r)
        except PlannerError as exc:
            first_error = first_error or str(exc)
            continue
    if not usable:
        raise PlannerError(f"no evaluable measured rows for family {family} (first reason: {first_error})")
    recs = usable
    factors = factors or identifiable(recs)
    meas = [{m: float(v) for m, v in measured_values(r).items() if _pos(v)} for r in recs]

    def make(vals: dict[str, float], prof: Profile | None = None) -> Efficiency:
        b = base if prof is None else prof.for_accelerator(acc_ids[0], family)
        return replace(b, **vals)

    def resid(vals: dict[str, float]) -> np.ndarray:
        cache: dict[int, Profile] = {}
        out = []
        for r, m in zip(recs, meas):
            p0 = profile_of(r)
            prof = cache.get(id(p0))
            if prof is None:
                prof = cache[id(p0)] = _profile_with(p0, acc_ids, make(vals, p0))
            try:
                pred = predict_row(r, prof, hw)
            except PlannerError:
                out.extend([2.0] * len(m))
                continue
            for k, v in m.items():
                p = pred.get(k, np.nan)
                out.append(float(np.log(p / v)) if np.isfinite(p) and p > 0 else 2.0)
        return np.array(out)

    fit = map_fit(resid, {f: float(getattr(base, f)) for f in factors}, SERVING_PRIORS, f_scale=0.2, step=0.015,
                  max_nfev=max_nfev)
    return make(fit.values), fit


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
