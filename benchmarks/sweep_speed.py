"""Speed-up of ``planner sweep`` with 2 workers: one 200-point sweep (10 rates x 2 accelerators x
5 TPOT limits x 2 TTFT limits on a tiny base: llama-3.2-1b, one bucket, TP1, colocated) planned
serially in this process, on 2 local processes and on a 2-worker Dask LocalCluster (when dask is
installed); checks the three tables are identical and prints wall times and speed-ups.

    python benchmarks/sweep_speed.py [--runs 3] [--points-per-rate 20]

Times include starting the worker processes (the pool's and the cluster's first tasks import the
planner); the cluster itself is started before the clock. On a machine with fewer than 2 free cores
the speed-up cannot reach 2.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from planner.batch import cpu_count
from planner.sweep import load_sweep, run_sweep

BASE = {"model": "llama-3.2-1b", "workload": {"rate_rps": 2, "input": 512, "output": 128},
        "buckets": {"isl": 1, "osl": 1}, "slo": {"ttft_s": 1.0, "tpot_s": 0.05}, "accelerators": ["H100-SXM"],
        "parallelism": {"tp": [1], "pp": [1]}, "disaggregation": "off", "queueing": {"pool": 1}}
AXES = {"workload.rate_rps": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512], "accelerators": [["H100-SXM"], ["A100-SXM-80GB"]],
        "slo.tpot_s": [0.01, 0.02, 0.03, 0.05, 0.1], "slo.ttft_s": [0.02, 1.0]}


def timed(fn, runs: int) -> tuple[float, list]:
    times, rows = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        rows = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sweep.yaml"
        path.write_text(yaml.safe_dump({"base": BASE, "axes": AXES}, sort_keys=False))
        sw = load_sweep(path)
        run_sweep(sw, workers=1)  # warm this process's caches, as a worker's would be after its first point
        cpu = time.process_time()
        serial_s, serial = timed(lambda: run_sweep(sw, workers=1), args.runs)
        serial_cpu = (time.process_time() - cpu) / args.runs
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"{sw.size} points, {cpu_count()} CPU cores visible, 1-min load average {load:.2f} before the runs "
              f"(other processes' load lowers the speed-up); median of {args.runs} runs")
        print(f"serial (1 process):          {serial_s:6.2f} s  {1e3 * serial_s / sw.size:5.1f} ms/point")
        pool_s, pool = timed(lambda: run_sweep(sw, workers=2), args.runs)
        print(f"local pool, 2 workers:       {pool_s:6.2f} s  speed-up {serial_s / pool_s:4.2f}x  "
              f"identical: {pool == serial}")
        try:
            from distributed import LocalCluster
        except ImportError:
            print("Dask LocalCluster: not run (pip install 'llm-capacity-planner[dask]')")
            return
        from distributed import Client

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as lc, \
                Client(lc.scheduler_address) as client:
            first_s, first = timed(lambda: run_sweep(sw, scheduler=lc.scheduler_address), 1)
            cpu0 = client.run(time.process_time)
            dask_s, dask = timed(lambda: run_sweep(sw, scheduler=lc.scheduler_address), args.runs)
            cpu1 = client.run(time.process_time)
        print(f"Dask LocalCluster, 2 workers: {dask_s:6.2f} s  speed-up {serial_s / dask_s:4.2f}x  "
              f"identical: {dask == serial and first == serial}  (first run, cold workers: {first_s:.2f} s)")
        busiest = max(cpu1[w] - cpu0[w] for w in cpu1) / args.runs
        print(f"CPU per run: serial {serial_cpu:.2f} s; busiest Dask worker {busiest:.2f} s: the speed-up with "
              f"2 free cores is at most {serial_cpu / busiest:.2f}x")


if __name__ == "__main__":
    main()
