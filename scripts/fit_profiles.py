"""Fit the shipped engine profiles from ../shared/calibration (re-runnable by anyone, same bytes).

Kernel factors are fitted per accelerator family on the seeded training half of the kernel
tables and shared by every engine; serving overheads per (engine, family) on the training half
of the end-to-end rows (``planner.calib.shipped``). Writes planner/profiles/{vllm,sglang,trtllm}.yaml
planner/data/mlperf_software.csv (the software speed of each MLPerf round, planner.calib.software)
and docs/fit_report.json (priors, bounds, standard errors, held factors, rejected rows), which
scripts/accuracy_report.py turns into docs/accuracy.md.

    python scripts/fit_profiles.py [--calibration ../shared/calibration] [--out planner/profiles]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from planner.calib.kernels import ape, load_kernel_rows, predict, with_split
from planner.calib.shipped import kernel_fits, render, render_report, round_speed_fits, serving_fits
from planner.profile import Efficiency

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calibration", default=str(ROOT.parent / "shared" / "calibration"))
    ap.add_argument("--out", default=str(ROOT / "planner" / "profiles"))
    ap.add_argument("--report", default=str(ROOT / "docs" / "fit_report.json"))
    ap.add_argument("--software", default=str(ROOT / "planner" / "data" / "mlperf_software.csv"),
                    help="where the software speed of each MLPerf round goes (planner.calib.software)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-rows", type=int, default=8, help="fewest training rows to fit a family")
    ap.add_argument("--min-kernel-rows", type=int, default=5,
                    help="fewest training rows (all engines) to fit a family's kernel factors from serving rows")
    ap.add_argument("--max-rows", type=int, default=80, help="training rows per (engine, family) serving fit")
    args = ap.parse_args()
    cal = Path(args.calibration)

    kvals, kreports = kernel_fits(cal, args.seed)
    df = with_split(load_kernel_rows(cal), args.seed)
    test = df[~df["train"] & df["plausible"]]
    for fam, sub in test.groupby("family"):
        eff = Efficiency(**kvals[fam])
        err = ape(predict(sub, {a: eff for a in sub["acc"].unique()}), sub["measured_s"].to_numpy())
        for (acc, kind), grp in sub.assign(ape=err).groupby(["acc", "kind"]):
            print(f"{fam:10s} {acc:14s} {kind:14s} n={len(grp):4d} hold-out MdAPE {100 * grp.ape.median():5.1f}%")
        rej = kreports[fam]["rejected_rows"]
        if rej:
            print(f"{fam:10s} rejected (imply > 100% of a peak): {rej}")

    docs, sreports = serving_fits(cal, kvals, args.seed, args.min_rows, args.max_rows,
                                   min_kernel_rows=args.min_kernel_rows)
    for engine, doc in docs.items():
        path = Path(args.out) / f"{engine}.yaml"
        path.write_text(render(doc))
        print(f"wrote {path}")
    speeds, rreports = round_speed_fits(cal, docs, args.seed)
    Path(args.software).write_text(speeds.to_csv(index=False, lineterminator="\n"))
    print(f"wrote {args.software}")
    report = {"seed": args.seed, "kernel": kreports, **sreports, "software_rounds": rreports}
    Path(args.report).write_text(render_report(report))
    print(f"wrote {args.report}")


if __name__ == "__main__":
    main()
