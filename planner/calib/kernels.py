"""Measured kernel tables (aiconfigurator, Vidur) against the roofline, and the fit of
kernel-level efficiencies per accelerator family.

Rows are normalised to one frame: ``acc`` (our id), ``kind`` (gemm | ctx_attention |
gen_attention | all_reduce), the kernel's arguments, ``measured_s``, ``source`` and
``peak_fraction``, the largest share of a datasheet peak (FLOP/s, HBM or link bandwidth) the
measured time implies (``planner.perf.kernels.implied_peak_fraction``). Rows above 1 are
impossible as read and are rejected from the fit and the scores (``plausible`` False; counted).
``fit_kernel_factors`` is the regularised (MAP) fit of ``planner.calib.fit`` over the
kernel-level factors of ``Efficiency``, one accelerator family at a time.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from planner.calib.fit import MapFit, map_fit
from planner.errors import PlannerError
from planner.hardware import HardwareDB, default_hardware
from planner.perf.kernels import (
    GEMM_MODES,
    all_reduce_op,
    all_reduce_s,
    context_attention_op,
    context_attention_s,
    gemm_op,
    gemm_s,
    generation_attention_op,
    generation_attention_s,
    implied_peak_fraction,
)
from planner.profile import Efficiency

KERNEL_FACTORS = ("gemm_eff_max", "gemm_m_half", "gemm_k_half", "attn_eff_max", "attn_m_half",
                  "fp8_eff_scale", "fp4_eff_scale", "mem_eff_max",
                  "mem_bytes_half", "launch_s", "comm_eff", "comm_latency_s")
MAX_PEAK_FRACTION = 1.0  # a measured kernel cannot beat the datasheet peak


def load_kernel_rows(calib_dir: str | Path, db: HardwareDB | None = None) -> pd.DataFrame:
    """Read the aiconfigurator kernel samples into one frame (rows on unknown devices are dropped)."""
    db = db or default_hardware()
    root = Path(calib_dir)
    frames = []

    def acc_id(row: pd.Series) -> str | None:
        for key in (row.get("device"), row.get("system")):
            if isinstance(key, str):
                try:
                    return db.get(key).id
                except PlannerError:
                    continue
        return None

    g = pd.read_csv(root / "aiconfigurator_gemm_sample.csv")
    g = g[g["gemm_dtype"].isin(list(GEMM_MODES))]
    frames.append(pd.DataFrame({"kind": "gemm", "device": g["device"], "system": g["system"], "m": g["m"],
                                "n": g["n"], "k": g["k"], "mode": g["gemm_dtype"],
                                "measured_s": g["latency_ms"] / 1e3, "source": g["source"]}))
    c = pd.read_csv(root / "aiconfigurator_ctx_attention_sample.csv")
    frames.append(pd.DataFrame({"kind": "ctx_attention", "device": c["device"], "system": c["system"],
                                "batch": c["batch_size"], "len": c["isl"], "heads": c["num_heads"],
                                "kv_heads": c["num_kv_heads"], "head_dim": c["head_dim"],
                                "mode": c["attn_dtype"], "measured_s": c["latency_ms"] / 1e3,
                                "source": c["source"]}))
    d = pd.read_csv(root / "aiconfigurator_gen_attention_sample.csv")
    frames.append(pd.DataFrame({"kind": "gen_attention", "device": d["device"], "system": d["system"],
                                "batch": d["batch_size"], "len": d["kv_len"], "heads": d["num_heads"],
                                "kv_heads": d["num_kv_heads"], "head_dim": d["head_dim"],
                                "mode": d["kv_cache_dtype"], "measured_s": d["latency_ms"] / 1e3,
                                "source": d["source"]}))
    r = pd.read_csv(root / "aiconfigurator_allreduce_sample.csv")
    frames.append(pd.DataFrame({"kind": "all_reduce", "device": r["device"], "system": r["system"],
                                "gpus": r["num_gpus"], "bytes": r["message_size"] * 2.0,
                                "measured_s": r["latency_ms"] / 1e3, "source": r["source"]}))
    df = pd.concat(frames, ignore_index=True)
    df["acc"] = df.apply(acc_id, axis=1)
    df = df[df["acc"].notna() & (df["measured_s"] > 0)].reset_index(drop=True)
    df["family"] = [db.get(a).family for a in df["acc"]]
    df["peak_fraction"] = [implied_peak_fraction(row_op(r, db), db.get(r["acc"]), r["measured_s"],
                                                 int(r["gpus"]) if r["kind"] == "all_reduce" else 1)
                           for r in df.to_dict("records")]
    df["plausible"] = df["peak_fraction"] <= MAX_PEAK_FRACTION
    return df


def row_op(row: dict, db: HardwareDB):
    """The ``Op`` a kernel row measures."""
    acc = db.get(row["acc"])
    kind = row["kind"]
    if kind == "gemm":
        return gemm_op(acc, int(row["m"]), int(row["n"]), int(row["k"]), row["mode"])
    if kind == "ctx_attention":
        return context_attention_op(acc, int(row["batch"]), int(row["len"]), int(row["heads"]),
                                    int(row["kv_heads"]), int(row["head_dim"]), row["mode"])
    if kind == "gen_attention":
        return generation_attention_op(acc, int(row["batch"]), int(row["len"]), int(row["heads"]),
                                       int(row["kv_heads"]), int(row["head_dim"]), row["mode"])
    if kind == "all_reduce":
        return all_reduce_op(int(row["gpus"]), float(row["bytes"]))
    raise PlannerError(f"unknown kernel kind {kind!r}")


def predict_row(row: dict, eff: Efficiency, db: HardwareDB) -> float:
    acc = db.get(row["acc"])
    kind = row["kind"]
    if kind == "gemm":
        return gemm_s(acc, eff, int(row["m"]), int(row["n"]), int(row["k"]), row["mode"])
    if kind == "ctx_attention":
        return context_attention_s(acc, eff, int(row["batch"]), int(row["len"]), int(row["heads"]),
                                   int(row["kv_heads"]), int(row["head_dim"]), row["mode"])
    if kind == "gen_attention":
        return generation_attention_s(acc, eff, int(row["batch"]), int(row["len"]), int(row["heads"]),
                                      int(row["kv_heads"]), int(row["head_dim"]), row["mode"])
    if kind == "all_reduce":
        return all_reduce_s(acc, eff, int(row["gpus"]), float(row["bytes"]))
    raise PlannerError(f"unknown kernel kind {kind!r}")


def predict(df: pd.DataFrame, eff_for: dict[str, Efficiency], db: HardwareDB | None = None) -> np.ndarray:
    """Predicted seconds for each row, ``eff_for`` keyed by accelerator id."""
    db = db or default_hardware()
    return np.array([predict_row(r, eff_for[r["acc"]], db) for r in df.to_dict("records")])


def ape(pred: np.ndarray, meas: np.ndarray) -> np.ndarray:
    """Absolute percentage error, |pred − meas| / meas."""
    return np.abs(pred - meas) / meas


def fit_kernel_factors(df: pd.DataFrame, base: Efficiency, db: HardwareDB | None = None,
                       factors: tuple[str, ...] = KERNEL_FACTORS) -> tuple[Efficiency, MapFit]:
    """MAP fit of ``factors`` (priors: ``base``'s values and ``planner.calib.fit.PRIORS``) to the
    plausible rows of ``df`` (one family); factors no row reacts to are held at the prior."""
    db = db or default_hardware()
    if "plausible" in df:
        df = df[df["plausible"]]
    records = df.to_dict("records")
    meas = df["measured_s"].to_numpy()

    def make(vals: dict[str, float]) -> Efficiency:
        return replace(base, **vals)

    def resid(vals: dict[str, float]) -> np.ndarray:
        eff = make(vals)
        return np.log(np.array([predict_row(r, eff, db) for r in records]) / meas)

    fit = map_fit(resid, {k: float(getattr(base, k)) for k in factors}, f_scale=0.1, step=1e-3, max_nfev=200)
    return make(fit.values), fit


def fit_kernel_efficiency(df: pd.DataFrame, base: Efficiency, db: HardwareDB | None = None) -> Efficiency:
    """The fitted ``Efficiency`` of ``fit_kernel_factors``."""
    return fit_kernel_factors(df, base, db)[0]


def with_split(df: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The seeded half/half split the shipped fit uses: ``train`` True for the rows it may see."""
    rng = np.random.default_rng(seed)
    return df.assign(train=rng.random(len(df)) < 0.5)


def holdout_errors(calib_dir: str | Path, engine: str = "trtllm", seed: int = 0) -> pd.DataFrame:
    """Plausible hold-out kernel rows with the shipped ``engine`` profile's predictions scored (``ape`` column)."""
    from planner.profile import load_profile

    df = with_split(load_kernel_rows(calib_dir), seed)
    test = df[~df["train"] & df["plausible"]].copy()
    prof = load_profile(engine)
    db = default_hardware()
    effs = {a: prof.for_accelerator(a, db.get(a).family) for a in test["acc"].unique()}
    test["ape"] = ape(predict(test, effs, db), test["measured_s"].to_numpy())
    return test
