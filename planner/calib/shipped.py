"""The fit behind the shipped engine profiles (``scripts/fit_profiles.py`` is its command line).

Two levels, both regularised (MAP) fits of ``planner.calib.fit``:

1. **Kernel factors per accelerator family**, physical and shared by every engine: GEMM, attention,
   HBM and collective efficiencies and launch cost, fitted on the seeded training half of the
   aiconfigurator kernel tables (``planner.calib.kernels``; rows implying more than 100% of a
   datasheet peak are rejected and counted). Families without kernel tables (AMD CDNA3, Ascend) get
   their bandwidth and compute efficiencies from the end-to-end training rows of every engine (each
   row predicted with its own engine's profile; speculative rows with ``planner.speculative`` at their
   stated accept length), and those values are shared by every engine too.
2. **Serving overheads per (engine, family)** on the training half of the end-to-end rows
   (aiconfigurator silicon, MLPerf Offline, the published AMD/Ascend rows): per-kernel and per-step
   overhead, per-request TTFT overhead, the closed-loop benchmark's prompts per client (``planner.calib.serving``).

Every input is read in a fixed order and every fit is deterministic, so re-running gives the same
bytes (tests/test_fit_hygiene.py re-fits a subset and compares).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from planner.calib.accuracy import serving_rows
from planner.calib.fit import MapFit
from planner.calib.kernels import KERNEL_FACTORS, fit_kernel_factors, load_kernel_rows, with_split
from planner.calib.serving import OVERHEAD_FACTORS, fit_serving_map, identifiable
from planner.calib.software import fit_round_speeds, speed_table
from planner.errors import PlannerError
from planner.hardware import default_hardware
from planner.perf.power import BETA_PRIOR, POWER_REFERENCE
from planner.profile import Efficiency, parse_profile
from planner.validate import predict_row

# Engine defaults with their sources (the flags these mirror):
ENGINES: dict[str, dict[str, float]] = {
    # vLLM: --gpu-memory-utilization 0.9, --max-num-batched-tokens 8192, --max-num-seqs 1024 (V1 on
    # data-centre GPUs; https://docs.vllm.ai/en/latest/configuration/engine_args.html)
    "vllm": {"memory_util": 0.90, "token_budget": 8192, "max_seqs": 1024, "step_overhead_s": 2.0e-3,
             "runtime_overhead_bytes": 2.0e9},
    # SGLang: --mem-fraction-static ~0.88 on 80 GB parts, --chunked-prefill-size 8192
    # (https://docs.sglang.ai/advanced_features/server_arguments.html)
    "sglang": {"memory_util": 0.88, "token_budget": 8192, "max_seqs": 1024, "step_overhead_s": 1.5e-3,
               "runtime_overhead_bytes": 2.0e9},
    # TensorRT-LLM: kv_cache_config.free_gpu_memory_fraction 0.9 of the memory free after weights
    # (planner.perf.memory applies it that way), max_num_tokens 8192, max_batch_size 2048
    # (https://nvidia.github.io/TensorRT-LLM/performance/performance-tuning-guide/)
    "trtllm": {"memory_util": 0.90, "token_budget": 8192, "max_seqs": 2048, "step_overhead_s": 1.0e-3,
               "runtime_overhead_bytes": 1.5e9},
}
# Prior means of the kernel factors, and the factors of families with no data at all (Ada, Gaudi,
# CDNA4; Ascend and CDNA3 keep them for everything but the serving-fitted HBM/GEMM efficiencies):
# conservative mid-range values; flagged "uncalibrated" in docs/accuracy.md.
UNCALIBRATED = {"gemm_eff_max": 0.70, "gemm_m_half": 64.0, "gemm_k_half": 256.0, "attn_eff_max": 0.45,
                "attn_m_half": 1024.0, "fp8_eff_scale": 0.6, "fp4_eff_scale": 0.5, "mem_eff_max": 0.80,
                "mem_bytes_half": 1.0e6, "launch_s": 1.2e-5, "kernel_overhead_s": 3.0e-6, "seq_overhead_s": 5.0e-6,
                "comm_eff": 0.55, "comm_latency_s": 8.0e-6, "ttft_overhead_s": 5.0e-3, "bench_waves": 5.0}
SERVING_KERNEL_FACTORS = ("mem_eff_max", "gemm_eff_max")  # fitted from serving rows where no kernel tables
POWER_FIT_FAMILY = "cdna3"  # MI300X (750 W) and MI325X (1000 W): one die and peak at two board powers
HEADER = "# Written by scripts/fit_profiles.py; edit the script or re-run it rather than this file.\n"
DESCRIPTION = ("{engine} profile. Kernel factors fitted per family by scripts/fit_profiles.py on aiconfigurator "
               "kernel tables (MAP fit, shared by every engine; hold-out errors, priors and standard errors in "
               "docs/accuracy.md); serving overheads fitted per engine and family on end-to-end rows; families "
               "without data use conservative defaults. Engine factors mirror the engine's defaults.")


def rounded(v: float) -> float:
    """4 significant digits: what the YAML keeps (and what the byte-for-byte test compares)."""
    return float(f"{v:.4g}")


def fit_report(fit: MapFit, **extra: Any) -> dict[str, Any]:
    """A JSON-able fit report with rounded numbers."""
    def r(v: Any) -> Any:
        return rounded(v) if isinstance(v, float) else v

    return {**extra, "rows": fit.n_rows, "condition_number": r(fit.condition_number),
            "factors": [{k: r(v) for k, v in f.to_dict().items()} for f in fit.factors]}


def kernel_fits(calibration: Path, seed: int = 0, families: tuple[str, ...] | None = None
                ) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """Kernel factors per family (rounded) and their fit reports."""
    df = with_split(load_kernel_rows(calibration), seed)
    base = Efficiency(**UNCALIBRATED)
    values: dict[str, dict[str, float]] = {}
    reports: dict[str, Any] = {}
    for fam, sub in df.groupby("family", sort=True):
        if families is not None and fam not in families:
            continue
        train = sub[sub["train"]]
        rejected = sub[~sub["plausible"]]
        eff, fit = fit_kernel_factors(train, base)
        values[str(fam)] = {k: rounded(getattr(eff, k)) for k in KERNEL_FACTORS}
        reports[str(fam)] = fit_report(
            fit, source="aiconfigurator kernel tables (training half)",
            rejected_rows={f"{a} {k}": int(n) for (a, k), n in rejected.groupby(["acc", "kind"]).size().items()},
            max_peak_fraction=rounded(float(sub["peak_fraction"].max())))
    return values, reports


def power_blocks(beta: float = BETA_PRIOR, hw: Any = None) -> dict[str, dict[str, float]]:
    """Per family with a reference part (``planner.perf.power``): its board power per dense BF16 TFLOP/s
    (from hardware_db) and the clock exponent β."""
    hw = hw or default_hardware()
    return {fam: {"power_ref_w_per_tflop": rounded(hw.get(ref).watts_per_tflop), "power_beta": rounded(beta)}
            for fam, ref in sorted(POWER_REFERENCE.items())}


def _doc(engine: str, families: dict[str, dict[str, float]],
         power: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    power = power_blocks() if power is None else power
    names = sorted(set(families) | set(power))
    return {"engine": engine, "description": DESCRIPTION.format(engine=engine),
            "defaults": {**{k: rounded(v) for k, v in UNCALIBRATED.items()}, **ENGINES[engine]},
            "families": {fam: {**families.get(fam, {}), **power.get(fam, {})} for fam in names}}


def serving_fits(calibration: Path, kernel_values: dict[str, dict[str, float]], seed: int = 0,
                 min_rows: int = 8, max_rows: int = 80, engines: tuple[str, ...] | None = None,
                 families: tuple[str, ...] | None = None, log=print, min_kernel_rows: int = 5
                 ) -> tuple[dict[str, dict], dict[str, Any]]:
    """Profile documents per engine and the serving fit reports. ``kernel_values`` is not modified.

    Families without kernel tables get ``SERVING_KERNEL_FACTORS`` from the training rows of every
    engine (at least ``min_kernel_rows`` the model can evaluate); overheads per (engine, family) need
    ``min_rows``."""
    kernel_values = copy.deepcopy(kernel_values)
    measured = serving_rows(Path(calibration), seed)
    hw = default_hardware()
    measured["family"] = [hw.get(a).family for a in measured["accelerator"]]
    engines = tuple(e for e in ENGINES if engines is None or e in engines)
    reports: dict[str, Any] = {"kernel_from_serving": {}, "overheads": {e: {} for e in engines}}

    def train_rows(engine: str, fam: str) -> pd.DataFrame:
        # MLPerf Server rows (open loop at a rate) are scored, not fitted: run near saturation, their
        # latency mostly tests the capacity model, and would drag the overheads with its error
        grp = measured[(measured["engine"] == engine) & (measured["family"] == fam) & measured["rate_rps"].isna()
                       & measured["plausible"]]
        return grp[grp["train"]].sample(frac=1.0, random_state=seed).head(max_rows)

    def kernel_rows(fam: str) -> pd.DataFrame:
        # every engine's rows: the factors are physical, and each row is predicted with its own profile
        grp = measured[(measured["family"] == fam) & measured["rate_rps"].isna() & measured["train"]
                       & measured["plausible"]]
        return grp.sample(frac=1.0, random_state=seed).head(max_rows)

    fams = sorted(f for f in measured["family"].unique() if families is None or f in families)
    power = power_blocks(hw=hw)
    # 1b. families without kernel tables: bandwidth/compute efficiencies from the end-to-end rows; the
    # power-limited clock exponent with them where the family has a reference part (planner.perf.power)
    for fam in sorted(fams, key=lambda f: f != POWER_FIT_FAMILY):  # the exponent's family first: others use it
        if fam in kernel_values:
            continue
        rows = kernel_rows(fam)
        profs = {e: parse_profile(_doc(e, kernel_values, power), f"{e} (fitting)")
                 for e in sorted(set(rows["engine"]))}
        rows = rows[[_evaluable(r, profs, hw) for r in rows.to_dict("records")]]
        if len(rows) < min_kernel_rows:
            log(f"{fam:10s} kernel factors from serving rows skipped: {len(rows)} evaluable training rows "
                f"< {min_kernel_rows}")
            continue
        used = sorted(set(rows["engine"]))
        profs = {e: profs[e] for e in used}
        factors = SERVING_KERNEL_FACTORS + (("power_beta",) if fam == POWER_FIT_FAMILY else ())
        try:
            eff, fit = fit_serving_map(rows, profs, fam, hw, factors=factors)
        except PlannerError as exc:
            log(f"{fam:10s} kernel factors from serving rows skipped: {exc}")
            continue
        kernel_values[fam] = {k: rounded(getattr(eff, k)) for k in SERVING_KERNEL_FACTORS}
        if fam == POWER_FIT_FAMILY:  # one physical exponent: every family with a reference part uses it
            power = power_blocks(eff.power_beta, hw)
        per_engine = {e: int((rows["engine"] == e).sum()) for e in used}
        reports["kernel_from_serving"][fam] = fit_report(
            fit, source=f"{', '.join(used)} end-to-end rows (training half)", rows_per_engine=per_engine)
        log(f"{fam:10s} kernel factors from {len(rows)} serving rows ({per_engine})")
    docs = {}
    for engine in engines:
        doc = _doc(engine, kernel_values, power)
        prof = parse_profile(doc, f"{engine} (fitting)")
        for fam in fams:
            rows = train_rows(engine, fam)
            if len(rows) < min_rows:
                log(f"{engine:7s} {fam:10s} skipped: {len(rows)} training rows < {min_rows}")
                continue
            recs = rows.to_dict("records")
            factors = tuple(f for f in identifiable(recs, kernel_factors_known=True) if f in OVERHEAD_FACTORS)
            try:
                eff, fit = fit_serving_map(rows, prof, fam, hw, factors=factors)
            except PlannerError as exc:
                log(f"{engine:7s} {fam:10s} skipped: {exc}")
                continue
            block = doc["families"].setdefault(fam, {})
            block.update({f.name: rounded(f.value) for f in fit.factors if f.status != "held"})
            err = float(np.median(np.abs(np.exp(fit.residuals) - 1)))
            reports["overheads"][engine][fam] = fit_report(fit, source="end-to-end rows (training half)",
                                                           train_mdape=rounded(err))
            log(f"{engine:7s} {fam:10s} serving fit on {len(rows)} rows, train MdAPE {100 * err:.1f}%")
        docs[engine] = doc
    return docs, reports


def round_speed_fits(calibration: Path, docs: dict[str, dict], seed: int = 0) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The software speed of each (engine, MLPerf round) on the training MLPerf Offline rows, predicted with
    the fitted profile documents ``docs`` (``planner.calib.software``): the shipped table and its reports."""
    measured = serving_rows(Path(calibration), seed)  # without speeds: the fit never reads its own output
    rows = measured[(measured["origin"] == "mlperf") & measured["train"] & measured["plausible"]
                    & measured["engine"].isin(sorted(docs))].reset_index(drop=True)
    profs = {e: parse_profile(doc, f"{e} (fitted)") for e, doc in docs.items()}
    hw = default_hardware()
    pred = []
    for r in rows.to_dict("records"):
        try:
            pred.append(predict_row(r, profs[r["engine"]], hw).get("output_tokens_per_s", np.nan))
        except PlannerError:
            pred.append(np.nan)
    fits = fit_round_speeds(rows, np.array(pred, dtype=float))
    reports = {f"{e} {rnd}": fit_report(fit, source="MLPerf Offline rows of the round (training half)")
               for (e, rnd), fit in sorted(fits.items())}
    return speed_table(fits), reports


def _evaluable(row: dict, profiles: dict[str, Any], hw: Any) -> bool:
    """Whether the model can predict ``row`` with its engine's profile (known model, fits the memory)."""
    try:
        predict_row(row, profiles[row["engine"]], hw)
    except PlannerError:
        return False
    return True


def render(doc: dict[str, Any]) -> str:
    """The YAML text of one profile document."""
    return HEADER + yaml.safe_dump(doc, sort_keys=False)


def render_report(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=1, sort_keys=True) + "\n"
