"""Wall time of a full plan: >= 10 accelerator types, every TP/PP(/EP) option, three roles,
16 buckets, alternatives included. Prints the median of several runs.

    python benchmarks/plan_speed.py [--runs 5] [--model llama-3.1-70b]
"""

from __future__ import annotations

import argparse
import statistics
import time

from planner.planning import plan
from planner.scenario import parse_scenario

ACCS = ["A100-SXM-40GB", "A100-SXM-80GB", "H100-SXM", "H100-PCIe", "H200-SXM", "B200", "L40S", "L4", "MI300X",
        "MI325X", "Ascend-910B3", "Ascend-910C"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--model", default="llama-3.1-70b")
    args = ap.parse_args()
    sc = parse_scenario({
        "model": args.model, "precision": "fp8",
        "workload": {"rate_rps": 30, "input": "lognormal:mean=1500,p99=8000", "output": "lognormal:mean=300,p99=1500"},
        "buckets": {"isl": 4, "osl": 4}, "slo": {"ttft_s": 2.0, "tpot_s": 0.05},
        "accelerators": ACCS, "parallelism": {"tp": [1, 2, 4, 8], "pp": [1, 2]},
    })
    times = []
    result = None
    for _ in range(args.runs):
        t0 = time.perf_counter()
        result = plan(sc)
        times.append(time.perf_counter() - t0)
    assert result is not None
    print(f"model {args.model}: {len(ACCS)} accelerator types, {result.candidates} candidates "
          f"(accelerator x TP/PP/EP x role), {len(result.buckets)} buckets, {len(result.alternatives)} alternatives")
    print(f"plan: {result.status}, ${result.cost_per_hour:,.2f}/h, {result.total_gpus} GPUs")
    print(f"wall time over {args.runs} runs: median {statistics.median(times):.2f} s, "
          f"min {min(times):.2f} s, max {max(times):.2f} s")


if __name__ == "__main__":
    main()
