"""Seeded property check of the planner against its referee: plan N random scenarios, replay each plan
in the discrete-event simulator (``planner.verify.verify_plan``) and report how many replays reach the
SLO percentile less 2 points, and the over-provisioning ratio (planned GPUs / the fewest GPUs whose
replay still meets the SLO).

    python benchmarks/replay_property.py [--scenarios 100] [--requests 2500] [--seed 1000]

Scenarios: Llama-3.1-8B, Qwen2.5-7B or Llama-3.1-70B on one accelerator type, 0.5-30 req/s,
lognormal lengths (mean input 256-2048, output 64-512), arrival CV 1 or 1.5, 1-2 buckets per axis,
TTFT 0.5-4 s, TPOT 30-100 ms at p90/p95/p99, colocated. Prints one line per scenario and a summary;
exits 1 when a replay misses by more than 2 points or the median ratio exceeds 1.25 (the targets of
issue 10), so it can gate a nightly job. Takes about 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from planner.errors import PlannerError
from planner.planning import plan
from planner.scenario import parse_scenario
from planner.verify import verify_plan

MODELS = [("llama-3.1-8b", ["H100-SXM", "A100-SXM-80GB", "L40S"]), ("qwen2.5-7b", ["H100-SXM", "L40S"]),
          ("llama-3.1-70b", ["H100-SXM", "H200-SXM"])]


def scenario(i: int, seed: int) -> dict:
    r = np.random.default_rng(seed + i)
    model, accs = MODELS[r.integers(len(MODELS))]
    isl, osl = int(r.choice([256, 512, 1024, 2048])), int(r.choice([64, 128, 256, 512]))
    return {"name": f"property-{i}", "model": model,
            "workload": {"rate_rps": float(np.round(r.uniform(0.5, 30), 2)),
                         "input": f"lognormal:mean={isl},p99={isl * 4}",
                         "output": f"lognormal:mean={osl},p99={osl * 3}",
                         "arrival_cv": float(r.choice([1.0, 1.0, 1.5]))},
            "buckets": {"isl": int(r.choice([1, 2])), "osl": int(r.choice([1, 2]))},
            "slo": {"ttft_s": float(r.choice([0.5, 1.0, 2.0, 4.0])), "tpot_s": float(r.choice([0.03, 0.05, 0.1])),
                    "percentile": float(r.choice([90, 95, 99]))},
            "accelerators": [accs[r.integers(len(accs))]], "parallelism": {"tp": [1, 2, 4, 8], "pp": [1]},
            "disaggregation": "off"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", type=int, default=100)
    ap.add_argument("--requests", type=int, default=2500)
    ap.add_argument("--seed", type=int, default=1000)
    args = ap.parse_args()
    short, ratios, planned = [], [], 0
    t0 = time.perf_counter()
    for i in range(args.scenarios):
        raw = scenario(i, args.seed)
        try:
            sc = parse_scenario(raw)
            p = plan(sc, alternatives=False)
        except PlannerError as exc:
            print(f"{i:3d} no plan: {exc}")
            continue
        planned += 1
        v = verify_plan(p, sc, n_requests=args.requests, seed=0)
        need = raw["slo"]["percentile"] / 100.0 - 0.02
        if v.attainment < need:
            short.append(i)
        if v.overprovision_ratio is not None:
            ratios.append(v.overprovision_ratio)
        ratio = "-" if v.overprovision_ratio is None else f"{v.overprovision_ratio:.2f}"
        print(f"{i:3d} {raw['model']:14s} {raw['accelerators'][0]:14s} {raw['workload']['rate_rps']:6.2f} req/s "
              f"p{raw['slo']['percentile']:g} attainment {100 * v.attainment:5.1f}% (need {100 * need:.0f}%) "
              f"GPUs {v.planned_gpus} ratio {ratio}{'  SHORT' if i in short else ''}")
    med = float(np.median(ratios)) if ratios else float("nan")
    print(f"\n{planned} plans replayed in {time.perf_counter() - t0:.0f} s; {planned - len(short)} reach the "
          f"percentile less 2 points (short: {short}); over-provisioning median {med:.2f}, "
          f"mean {np.mean(ratios):.2f}, max {max(ratios):.2f} over {len(ratios)} plans with a sufficient count")
    return 1 if short or not med <= 1.25 else 0


if __name__ == "__main__":
    sys.exit(main())
