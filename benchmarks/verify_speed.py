"""Wall time of ``planner plan --verify`` on every one-model example scenario: the plan, then the whole-plan replay
(baseline and the search for the smallest instance counts), with what the replay found. Not a test.

    python benchmarks/verify_speed.py [--requests 2000] [--seed 0] [--max-replays 24] [--cli]

``--cli`` also times the installed console script (``planner plan EXAMPLE --verify --json``) end to end.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from planner.multi_scenario import MultiScenario, load_any
from planner.planning import plan
from planner.verify import verify_plan

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-replays", type=int, default=24)
    ap.add_argument("--cli", action="store_true", help="also time the console script end to end")
    args = ap.parse_args()
    head = (f"{'example':<34} {'plan s':>7} {'verify s':>8} {'replays':>7} {'meets':>5} {'attain.':>7} "
            f"{'worst bucket':>12} {'GPUs':>5} {'enough':>6} {'ratio':>6}")
    if args.cli:
        head += f" {'CLI s':>6}"
    print(f"{args.requests} requests per replay, seed {args.seed}, at most {args.max_replays} search replays")
    print(head)
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        sc = load_any(path)
        if isinstance(sc, MultiScenario):  # --verify replays one model's plan; fleets of models refuse it
            print(f"{path.name:<34} (several models: --verify is one-model only)", flush=True)
            continue
        name = path.name
        if sc.rate_profile is not None:  # a day: its peak-sized plan is what --verify could replay
            sc, name = replace(sc, rate_profile=None), f"{path.name} (peak)"
        t0 = time.perf_counter()
        p = plan(sc)
        t1 = time.perf_counter()
        v = verify_plan(p, sc, n_requests=args.requests, seed=args.seed, max_replays=args.max_replays)
        t2 = time.perf_counter()
        worst = min((b.attainment for b in v.buckets if b.requests), default=float("nan"))
        ratio = f"{v.overprovision_ratio:.2f}" if v.overprovision_ratio is not None else "-"
        line = (f"{name:<34} {t1 - t0:>7.2f} {t2 - t1:>8.2f} {v.replays:>7} {str(v.meets):>5} "
                f"{100 * v.attainment:>6.1f}% {100 * worst:>11.1f}% {v.planned_gpus:>5} "
                f"{v.sufficient_gpus if v.sufficient_gpus is not None else '-':>6} {ratio:>6}")
        if args.cli and name == path.name:
            exe = str(Path(sys.executable).with_name("planner"))
            t3 = time.perf_counter()
            subprocess.run([exe, "plan", str(path), "--verify", "--verify-requests", str(args.requests), "--json"],
                           check=True, capture_output=True)
            line += f" {time.perf_counter() - t3:>6.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
