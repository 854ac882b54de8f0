"""Fit the shipped engine profiles from ../shared/calibration (re-runnable by anyone).

Kernel-level factors (GEMM, attention, memory, communication efficiencies and launch
overhead) are fitted per accelerator family on half of the measured kernel rows
(aiconfigurator tables, a seeded random split) and scored on the other half. The engine-
level factors (memory utilisation, token budget, sequence cap) are the engines' documented
defaults, and the per-step overhead is fitted on end-to-end serving rows by
``planner.calib.serving`` when those are available.

    python scripts/fit_profiles.py [--calibration ../shared/calibration] [--out planner/profiles]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from planner.calib.accuracy import serving_rows
from planner.calib.kernels import (
    KERNEL_FACTORS,
    ape,
    fit_kernel_efficiency,
    load_kernel_rows,
    predict,
    with_split,
)
from planner.calib.serving import SERVING_FACTORS, fit_serving
from planner.errors import PlannerError
from planner.hardware import default_hardware
from planner.profile import Efficiency, parse_profile

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
    # TensorRT-LLM: kv_cache_config.free_gpu_memory_fraction 0.9, max_num_tokens 8192, max_batch_size 2048
    # (https://nvidia.github.io/TensorRT-LLM/performance/performance-tuning-guide/)
    "trtllm": {"memory_util": 0.92, "token_budget": 8192, "max_seqs": 2048, "step_overhead_s": 1.0e-3,
               "runtime_overhead_bytes": 1.5e9},
}
# Starting point for families with no kernel data (AMD, Ascend, Ada, Gaudi): conservative
# mid-range factors; they are flagged "uncalibrated" in docs/accuracy.md.
UNCALIBRATED = {"gemm_eff_max": 0.70, "gemm_m_half": 64.0, "attn_eff_max": 0.45, "attn_m_half": 1024.0,
                "fp8_eff_scale": 0.6, "fp4_eff_scale": 0.5, "mem_eff_max": 0.80, "mem_bytes_half": 1.0e6,
                "launch_s": 1.2e-5, "kernel_overhead_s": 3.0e-6, "comm_eff": 0.55, "comm_latency_s": 8.0e-6}


def _round(v: float) -> float:
    return float(f"{v:.4g}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calibration", default=str(Path(__file__).resolve().parents[2] / "shared" / "calibration"))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "planner" / "profiles"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-rows", type=int, default=8, help="fewest training rows to fit a family")
    ap.add_argument("--max-rows", type=int, default=80, help="training rows per (engine, family) serving fit")
    args = ap.parse_args()

    df = load_kernel_rows(args.calibration)
    df = with_split(df, args.seed)
    base = Efficiency(**UNCALIBRATED)
    fitted: dict[str, dict[str, float]] = {}
    for fam, sub in df.groupby("family"):
        eff = fit_kernel_efficiency(sub[sub["train"]], base)
        fitted[fam] = {k: _round(getattr(eff, k)) for k in KERNEL_FACTORS}
        test = sub[~sub["train"]]
        err = ape(predict(test, {a: eff for a in test["acc"].unique()}), test["measured_s"].to_numpy())
        test = test.assign(ape=err)
        for (acc, kind), grp in test.groupby(["acc", "kind"]):
            print(f"{fam:10s} {acc:14s} {kind:14s} n={len(grp):4d} hold-out MdAPE {100 * grp.ape.median():5.1f}%")

    measured = serving_rows(Path(args.calibration), args.seed)
    hw = default_hardware()
    measured["family"] = [hw.get(a).family for a in measured["accelerator"]]
    for engine, eng in ENGINES.items():
        doc = {
            "engine": engine,
            "description": (f"{engine} profile. Kernel factors fitted per family by scripts/fit_profiles.py on "
                            "aiconfigurator kernel tables (hold-out errors in docs/accuracy.md); families without "
                            "kernel data use conservative defaults. Engine factors mirror the engine's defaults."),
            "defaults": {**{k: _round(v) for k, v in UNCALIBRATED.items()}, **eng},
            "families": {fam: vals for fam, vals in sorted(fitted.items())},
        }
        prof = parse_profile(doc, f"{engine} (fitting)")
        for fam, grp in measured[measured["engine"] == engine].groupby("family"):
            train = grp[grp["train"]].sample(frac=1.0, random_state=args.seed).head(args.max_rows)
            if len(train) < args.min_rows:
                print(f"{engine:7s} {fam:10s} skipped: {len(train)} training rows < {args.min_rows}")
                continue
            try:
                eff, err = fit_serving(train, prof, fam)
            except PlannerError as exc:
                print(f"{engine:7s} {fam:10s} skipped: {exc}")
                continue
            block = doc["families"].setdefault(fam, {})
            block.update({k: _round(getattr(eff, k)) for k in SERVING_FACTORS
                          if getattr(eff, k) != getattr(prof.for_accelerator("", fam), k)})
            print(f"{engine:7s} {fam:10s} serving fit on {len(train)} rows, train MdAPE {100 * err:.1f}%")
        path = Path(args.out) / f"{engine}.yaml"
        header = "# Written by scripts/fit_profiles.py; edit the script or re-run it rather than this file.\n"
        path.write_text(header + yaml.safe_dump(doc, sort_keys=False))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
