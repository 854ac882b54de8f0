"""Pictures (matplotlib, headless Agg backend), written atomically as PNG or SVG.

- roofline: the accelerator's memory slope and compute roofs per dtype, each operator of a
  step placed at (FLOP/byte, achieved FLOP/s);
- plan: $/hour against request rate for the recommendation and each single accelerator;
- slo: $/hour against the TTFT (or TPOT) limit — the cost/latency Pareto front;
- latency: TTFT and TPOT percentiles of one instance against load.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from planner.errors import InputError, PlannerError
from planner.files import write_atomic

FORMATS = (".png", ".svg")


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _check_path(path: Path, flag: str = "--plot") -> Path:
    """``path`` when it names a .png or .svg file in an existing folder; else an error naming ``flag``."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise InputError(flag, "a file name ending in .png or .svg", str(path))
    if not path.parent.exists():
        raise PlannerError(f"{flag}: folder {path.parent} does not exist")
    return path


def _save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lower().lstrip("."), dpi=120, bbox_inches="tight")
    write_atomic(path, buf.getvalue())


def _finish(fig, ax, path: Path, xlabel: str, ylabel: str, title: str, plt) -> None:
    """Labels, grid and legend, then an atomic save."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)
    plt.close(fig)


def roofline_plot(step, acc, path: Path, title: str = "") -> None:
    """Roofs of ``acc`` and the ops of ``step`` (a StepTime) at their achieved FLOP/s."""
    path = _check_path(path)
    plt = _figure()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    x = np.logspace(-1, 4.5, 200)
    bw = acc.mem_bw_bytes_per_s
    colours = {"fp4": "#6a3d9a", "fp8": "#1f78b4", "int8": "#a6cee3", "bf16": "#33a02c", "fp16": "#b2df8a",
               "tf32": "#fb9a99", "fp32": "#e31a1c"}
    for dtype, peak in sorted(acc.peak_flops.items(), key=lambda kv: -kv[1]):
        ax.plot(x, np.minimum(peak, bw * x), color=colours.get(dtype, "grey"), lw=1.5,
                label=f"{dtype} roof {peak / 1e12:,.0f} TFLOP/s")
    ax.plot(x, bw * x, color="black", lw=0.8, ls=":", label=f"HBM {bw / 1e12:.2f} TB/s")
    markers = {"compute": "o", "memory": "s", "communication": "^", "overhead": "x"}
    shown = [t for t in step.ops if t.op.kind != "comm" and t.op.bytes and t.op.flops]
    shown.sort(key=lambda t: float(t.op.intensity))
    for i, t in enumerate(shown):
        op = t.op
        achieved = float(op.flops) / float(t.time_s)
        ax.scatter(float(op.intensity), achieved, marker=markers.get(t.bound, "o"), s=40, zorder=3)
        share = 100 * float(t.time_s) / float(step.stage_s)
        ax.annotate(f"{op.name} ({share:.0f}%)", (float(op.intensity), achieved), fontsize=7,
                    xytext=(6, -16 + 11 * (i % 5)), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP / byte of HBM traffic)")
    ax.set_ylabel("FLOP/s (achieved for operators)")
    ax.set_title(title or f"roofline of {acc.id}")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="lower right")
    _save(fig, path)
    plt.close(fig)


def cost_vs_rate_plot(series: dict[str, list[tuple[float, float | None]]], path: Path, title: str,
                      marker_rate: float | None = None) -> None:
    """``series``: name -> [(rate, $/hour or None when infeasible)]."""
    path = _check_path(path)
    plt = _figure()
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, pts in series.items():
        xs = [r for r, c in pts if c is not None]
        ys = [c for r, c in pts if c is not None]
        if xs:
            style = {"lw": 2.5, "color": "black"} if name == "recommended (mix)" else {"lw": 1.2}
            ax.plot(xs, ys, marker="o", ms=3, label=name, **style)
    if marker_rate:
        ax.axvline(marker_rate, color="grey", ls="--", lw=0.8, label="scenario rate")
    _finish(fig, ax, path, "request rate (requests/s)", "cost ($/hour)", title, plt)


def cost_vs_slo_plot(points: list[tuple[float, float | None]], path: Path, title: str, xlabel: str) -> None:
    """Cost against an SLO limit; the Pareto front is the lower-left envelope."""
    path = _check_path(path)
    plt = _figure()
    fig, ax = plt.subplots(figsize=(8, 5))
    xs = [x for x, c in points if c is not None]
    ys = [c for x, c in points if c is not None]
    bad = [x for x, c in points if c is None]
    ax.plot(xs, ys, marker="o", color="#1f78b4", label="cheapest plan meeting the limit (Pareto front)")
    for x in bad:
        ax.axvline(x, color="#e31a1c", alpha=0.3)
    if bad:
        ax.plot([], [], color="#e31a1c", alpha=0.5, label="infeasible")
    _finish(fig, ax, path, xlabel, "cost ($/hour)", title, plt)


def latency_plot(rows: list[dict], path: Path, title: str, percentile_keys: tuple[str, ...]) -> None:
    """``rows``: dicts with rate_rps, ttft_s{...}, tpot_s{...} from ``Instance.latency`` (planner.serving.roles)."""
    path = _check_path(path)
    plt = _figure()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
    rates = [r["rate_rps"] for r in rows]
    for key in percentile_keys:
        a1.plot(rates, [1e3 * r["ttft_s"][key] for r in rows], marker="o", ms=3, label=f"TTFT {key}")
    a2.plot(rates, [1e3 * r["tpot_s"]["mean"] for r in rows], marker="o", ms=3, color="#33a02c", label="TPOT")
    a1.set_yscale("log")
    for ax, lab in ((a1, "TTFT (ms)"), (a2, "TPOT (ms)")):
        ax.set_xlabel("request rate (requests/s)")
        ax.set_ylabel(lab)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    _save(fig, path)
    plt.close(fig)


def pareto_plot(points: list[dict], path: Path, title: str, tpot_limit_s: float | None) -> None:
    """Tokens/s/GPU against tokens/s/user: every operating point faint, the front as a line per mode,
    and the TPOT limit as the vertical line tokens/s/user = 1 / TPOT limit."""
    path = _check_path(path)
    plt = _figure()
    fig, ax = plt.subplots(figsize=(8, 5))
    colours = {"colocated": "#1f78b4", "disaggregated": "#33a02c"}
    for mode, colour in colours.items():
        pts = [p for p in points if p["mode"] == mode]
        if not pts:
            continue
        ax.scatter([p["tokens_per_s_per_user"] for p in pts], [p["tokens_per_s_per_gpu"] for p in pts], s=6,
                   color=colour, alpha=0.25, label=f"{mode} operating points")
    front = sorted((p for p in points if p["on_front"]), key=lambda p: p["tokens_per_s_per_user"])
    ax.plot([p["tokens_per_s_per_user"] for p in front], [p["tokens_per_s_per_gpu"] for p in front], marker="o",
            color="black", label="Pareto front")
    if tpot_limit_s:
        ax.axvline(1.0 / tpot_limit_s, color="#e31a1c", linestyle="--",
                   label=f"TPOT SLO {1e3 * tpot_limit_s:g} ms (1/TPOT = {1.0 / tpot_limit_s:.3g} tok/s/user)")
    _finish(fig, ax, path, "tokens/s per user (1 / TPOT)", "output tokens/s per GPU", title, plt)
