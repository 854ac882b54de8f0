"""Regenerate planner/data/allreduce_curves.csv: measured all-reduce curves per scale-up link kind.

Reads the aiconfigurator all-reduce rows of ../shared/calibration through the kernel loader
(``planner.calib.kernels.load_kernel_rows``: bytes = 2 × bf16 elements, seconds), keeps the
TRAINING half of the seeded split the kernel fit and the hold-out scores use
(``planner.calib.kernels.with_split``, seed 0) and the plausible rows (no row implying more than
the link's datasheet bandwidth), maps each accelerator to its ``scaleup.link_kind``
(hardware_db/*.yaml) and writes, per (link kind, GPU count, bytes), the geometric mean of the
measured times (``measured_s``) with the number of rows and their sources. ``time_s``, what the
planner interpolates, is ``measured_s`` made non-decreasing in bytes per curve by isotonic
regression of ln t (pool adjacent violators, weighted by rows): a few small-message points sit up
to 5% below their smaller neighbour (timing noise at the latency floor) and are pooled with it;
everywhere else ``time_s`` equals ``measured_s``. The hold-out half stays out of the
table, so docs/accuracy.md scores the curves out of sample. Same bytes on every rerun.

Vidur's all-reduce sample (vidur_allreduce_sample.csv) is not used: it times NCCL through
torch.distributed with host-side overheads (2 KB on 2 A100s: 43-50 us against 3.8 us for the
TensorRT-LLM custom all-reduce) and measures another implementation than the engines' in-graph one.

    python scripts/gen_allreduce_curves.py [--calibration ../shared/calibration]
                                           [--out planner/data/allreduce_curves.csv]
"""

from __future__ import annotations

import argparse
import csv
import io
import math
from pathlib import Path

from planner.calib.kernels import load_kernel_rows, with_split
from planner.hardware import default_hardware
from planner.perf.allreduce_curves import COLUMNS, TABLE

ROOT = Path(__file__).resolve().parents[1]


def isotonic(values: list[float], weights: list[float]) -> list[float]:
    """Weighted least-squares non-decreasing fit of ``values`` (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for v, w in zip(values, weights):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return [b[0] for b in blocks for _ in range(int(b[2]))]


def curve_rows(calibration: Path, seed: int = 0) -> list[dict[str, str]]:
    """The table's rows (strings, sorted by link kind, GPU count, bytes)."""
    db = default_hardware()
    df = with_split(load_kernel_rows(calibration, db), seed)
    ar = df[(df["kind"] == "all_reduce") & df["train"] & df["plausible"]].copy()
    ar["link_kind"] = [db.get(a).scaleup_link_kind for a in ar["acc"]]
    ar = ar[ar["link_kind"] != ""]
    out = []
    for (kind, gpus, nbytes), grp in sorted(ar.groupby(["link_kind", "gpus", "bytes"])):
        times = sorted(float(t) for t in grp["measured_s"])
        mean = times[0] if len(times) == 1 else math.exp(sum(math.log(t) for t in times) / len(times))
        out.append({"link_kind": str(kind), "gpus": int(gpus), "bytes": int(nbytes), "measured_s": mean,
                    "rows": len(times), "source": "; ".join(sorted(set(grp["source"])))})
    rows = []
    for key in sorted({(r["link_kind"], r["gpus"]) for r in out}):
        pts = [r for r in out if (r["link_kind"], r["gpus"]) == key]
        if len(pts) < 2:  # one point cannot be interpolated: that count keeps alpha-beta
            continue
        fit = isotonic([math.log(r["measured_s"]) for r in pts], [float(r["rows"]) for r in pts])
        for r, lt in zip(pts, fit):
            t = r["measured_s"] if lt == math.log(r["measured_s"]) else math.exp(lt)
            rows.append({"link_kind": r["link_kind"], "gpus": str(r["gpus"]), "bytes": str(r["bytes"]),
                         "time_s": f"{t:.9g}", "measured_s": f"{r['measured_s']:.9g}", "rows": str(r["rows"]),
                         "source": r["source"]})
    return rows


def render(rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calibration", default=str(ROOT.parent / "shared" / "calibration"))
    ap.add_argument("--out", default=str(TABLE))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = curve_rows(Path(args.calibration), args.seed)
    Path(args.out).write_text(render(rows))
    kinds = sorted({(r["link_kind"], int(r["gpus"])) for r in rows})
    print(f"wrote {args.out}: {len(rows)} points, curves {', '.join(f'{k}/{g}' for k, g in kinds)}")


if __name__ == "__main__":
    main()
