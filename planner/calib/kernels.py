"""Measured kernel tables (aiconfigurator, Vidur) against the roofline, and the fit of
kernel-level efficiencies per accelerator family.

Rows are normalised to one frame: ``acc`` (our id), ``kind`` (gemm | ctx_attention |
gen_attention | all_reduce), the kernel's arguments, ``measured_s`` and ``source``.
``fit_kernel_efficiency`` minimises the robust (soft-L1) loss of log(predicted/measured)
with scipy's ``least_squares`` over the kernel-level factors of ``Efficiency``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from planner.errors import PlannerError
from planner.hardware import HardwareDB, default_hardware
from planner.perf.kernels import (
    GEMM_MODES,
    all_reduce_s,
    context_attention_s,
    gemm_s,
    generation_attention_s,
)
from planner.profile import Efficiency

KERNEL_FACTORS = ("gemm_eff_max", "gemm_m_half", "attn_eff_max", "attn_m_half", "fp8_eff_scale",
                  "fp4_eff_scale", "mem_eff_max",
                  "mem_bytes_half", "launch_s", "comm_eff", "comm_latency_s")
_BOUNDS = {
    "gemm_eff_max": (0.2, 1.0), "gemm_m_half": (0.0, 4096.0), "attn_eff_max": (0.1, 1.0),
    "attn_m_half": (0.0, 8192.0), "fp8_eff_scale": (0.3, 1.0), "fp4_eff_scale": (0.2, 1.0),
    "mem_eff_max": (0.3, 0.95), "mem_bytes_half": (0.0, 1e9),
    "launch_s": (0.0, 1e-4), "comm_eff": (0.1, 1.0), "comm_latency_s": (0.0, 2e-4),
}
_SCALE = {"gemm_m_half": 100.0, "attn_m_half": 1000.0, "mem_bytes_half": 1e6, "launch_s": 1e-6,
          "comm_latency_s": 1e-6}


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
    return df


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


def fit_kernel_efficiency(df: pd.DataFrame, base: Efficiency, db: HardwareDB | None = None) -> Efficiency:
    """Fit the kernel factors of ``base`` to the rows of ``df`` (one family)."""
    from scipy.optimize import least_squares

    db = db or default_hardware()
    records = df.to_dict("records")
    meas = df["measured_s"].to_numpy()
    x0 = np.array([getattr(base, k) / _SCALE.get(k, 1.0) for k in KERNEL_FACTORS])
    lo = np.array([_BOUNDS[k][0] / _SCALE.get(k, 1.0) for k in KERNEL_FACTORS])
    hi = np.array([_BOUNDS[k][1] / _SCALE.get(k, 1.0) for k in KERNEL_FACTORS])
    x0 = np.clip(x0, lo + 1e-9, hi - 1e-9)

    def make(x: np.ndarray) -> Efficiency:
        return replace(base, **{k: float(v) * _SCALE.get(k, 1.0) for k, v in zip(KERNEL_FACTORS, x)})

    def resid(x: np.ndarray) -> np.ndarray:
        eff = make(x)
        pred = np.array([predict_row(r, eff, db) for r in records])
        return np.log(pred / meas)

    res = least_squares(resid, x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.1, x_scale="jac", max_nfev=400)
    return make(res.x)


def with_split(df: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The seeded half/half split the shipped fit uses: ``train`` True for the rows it may see."""
    rng = np.random.default_rng(seed)
    return df.assign(train=rng.random(len(df)) < 0.5)


def holdout_errors(calib_dir: str | Path, engine: str = "trtllm", seed: int = 0) -> pd.DataFrame:
    """Hold-out kernel rows with the shipped ``engine`` profile's predictions scored (``ape`` column)."""
    from planner.profile import load_profile

    df = with_split(load_kernel_rows(calib_dir), seed)
    test = df[~df["train"]].copy()
    prof = load_profile(engine)
    db = default_hardware()
    effs = {a: prof.for_accelerator(a, db.get(a).family) for a in test["acc"].unique()}
    test["ape"] = ape(predict(test, effs, db), test["measured_s"].to_numpy())
    return test
