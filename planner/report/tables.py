"""Rich tables for every command except ``plan`` (``plan_out.py``): plain data in, a printed table out."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from planner.report.fmt import gib, seconds, si


def _table(title: str, cols: tuple[str, ...], left: tuple[str, ...] = ()) -> Table:
    t = Table(title=title)
    for col in cols:
        t.add_column(col, justify="left" if col in left else "right", overflow="fold")
    return t


def hardware_list(db, console: Console) -> None:
    t = _table(f"{len(db)} accelerators", ("id", "vendor", "memory", "HBM BW", "bf16", "fp8", "fp4", "scale-up",
                                            "domain", "TDP", "$/h"), ("id", "vendor", "scale-up"))
    for a in sorted(db, key=lambda x: (x.vendor, x.id)):
        pk = a.peak_flops
        t.add_row(a.id, a.vendor, gib(a.memory_bytes), si(a.mem_bw_bytes_per_s, "B/s"),
                  si(pk.get("bf16", pk.get("fp16", 0)), "FLOP/s"), si(pk["fp8"], "FLOP/s") if "fp8" in pk else "-",
                  si(pk["fp4"], "FLOP/s") if "fp4" in pk else "-", si(a.scaleup_bw_bytes_per_s, "B/s"),
                  str(a.scaleup_domain), f"{a.tdp_w:.0f} W", f"{a.price_per_hour:.2f}")
    console.print(t)


def hardware_show(a, console: Console) -> None:
    t = _table(f"{a.name} ({a.id})", ("field", "value", "source"), ("field", "source"))
    src = a.sources
    t.add_row("memory", gib(a.memory_bytes), src.get("memory_gib", ""))
    t.add_row("HBM bandwidth", si(a.mem_bw_bytes_per_s, "B/s"), src.get("mem_bw_tb_per_s", ""))
    for dtype, val in a.peak_flops.items():
        t.add_row(f"dense {dtype}", si(val, "FLOP/s"), src.get("peak_tflops_dense", ""))
    t.add_row("scale-up", f"{a.scaleup_link}, {si(a.scaleup_bw_bytes_per_s, 'B/s')}/dir, {a.scaleup_domain} GPUs",
              src.get("scaleup", ""))
    t.add_row("scale-out", si(a.scaleout_bw_bytes_per_s, "B/s"), src.get("scaleout_bw_gb_per_s", ""))
    t.add_row("TDP", f"{a.tdp_w:.0f} W", src.get("tdp_w", ""))
    t.add_row("price", f"${a.price_per_hour:.2f}/GPU-h ({a.price_date})", a.price_source)
    console.print(t)
    if a.notes:
        console.print(f"[dim]{a.notes}[/]")


def models_list(db, console: Console) -> None:
    t = _table(f"{len(db)} models", ("id", "params", "active", "attention", "MoE", "layers", "KV/token (bf16)",
                                      "context"), ("id", "attention"))
    for m in sorted(db, key=lambda x: x.id):
        t.add_row(m.id, f"{m.params / 1e9:.1f} B", f"{m.active_params / 1e9:.1f} B", m.attention,
                  f"{m.n_experts}x top-{m.top_k}" if m.is_moe else "-", str(m.n_layers),
                  f"{m.kv_bytes_per_token(2.0) / 1024:.0f} KiB", f"{m.max_context:,}")
    console.print(t)


def key_values(title: str, data: dict[str, Any], console: Console) -> None:
    """Two columns, field and value (``models show``)."""
    t = _table(title, ("field", "value"), ("field", "value"))
    for k, v in data.items():
        if isinstance(v, float) and k.endswith("params"):
            v = f"{v / 1e9:.2f} B"
        t.add_row(k, str(v))
    console.print(t)


def memory_plan(mp, console: Console) -> None:
    t = _table(f"memory per GPU ({mp.gpus} GPUs)", ("item", "value"), ("item",))
    for name, val in (("HBM", gib(mp.memory_bytes_per_gpu)), ("usable", gib(mp.usable_bytes_per_gpu)),
                      ("weights", gib(mp.weights_bytes_per_gpu)),
                      ("weights (whole model)", gib(mp.weights_bytes_total)),
                      ("activations", gib(mp.activation_bytes_per_gpu)),
                      ("runtime overhead", gib(mp.overhead_bytes_per_gpu)), ("KV room", gib(mp.kv_room_bytes_per_gpu)),
                      ("KV bytes/token (model)", f"{mp.kv_bytes_per_token:,.0f} B"),
                      ("KV bytes/token (per GPU)", f"{mp.kv_bytes_per_token_per_gpu:,.0f} B"),
                      ("max KV tokens", f"{mp.max_kv_tokens:,}"),
                      ("running-sequence cap", _seq_cap(mp)),
                      ("fits", "[green]yes[/]" if mp.fits else "[red]no[/]")):
        t.add_row(name, val)
    console.print(t)
    console.print(mp.reason)


def _seq_cap(mp) -> str:
    """The instance's running-sequence cap, as ranks × per-rank cap under data-parallel attention."""
    if mp.attention_ranks > 1:
        return f"{mp.seq_cap:,} ({mp.attention_ranks} DP-attention ranks x {mp.max_seqs_per_rank:,})"
    return f"{mp.seq_cap:,}"


def roofline(rows: list[dict[str, Any]], summary: dict[str, Any], pp: int, console: Console) -> None:
    t = _table(f"{summary['phase']} step: batch {summary['batch']}, context {summary['context']} (one stage, per GPU)",
               ("op", "dtype", "FLOPs", "bytes", "FLOP/B", "bound", "time", "share"), ("op", "dtype", "bound"))
    total = summary["stage_s"] or 1.0
    for r in rows:
        inten = r["intensity"]
        t.add_row(r["op"], r["dtype"], si(r["flops"], "FLOP"), si(r["bytes"] or r["comm_bytes"], "B"),
                  "-" if inten is None else f"{inten:,.1f}", r["bound"], seconds(r["time_s"]),
                  f"{100 * r['time_s'] / total:.1f}%")
    console.print(t)
    console.print(f"stage {seconds(summary['stage_s'])}, step {seconds(summary['step_s'])} (incl. engine overhead, "
                  f"{pp} stage(s)); bound: {summary['bound']}; {summary['tokens_per_s']:,.0f} tokens/s")


def estimate(est, console: Console) -> None:
    t = _table(f"{est.model} on {est.gpus}x {est.accelerator} ({est.parallel}, {est.engine}, {est.role}, {est.mode})",
               ("metric", "value"), ("metric",))
    t.add_row("request size", f"{est.isl:,.0f} in / {est.osl:,.0f} out tokens (mean)")
    t.add_row("concurrency", f"{est.concurrency:,.1f}")
    t.add_row("requests/s", f"{est.requests_per_s:,.3g}")
    t.add_row("output tokens/s", f"{est.output_tokens_per_s:,.0f} ({est.output_tokens_per_s_per_gpu:,.0f}/GPU)")
    t.add_row("total tokens/s", f"{est.total_tokens_per_s:,.0f}")
    for name, vals in (("TTFT", est.ttft_s), ("TPOT", est.tpot_s)):
        if vals:
            t.add_row(name, "  ".join(f"{k} {seconds(v)}" for k, v in vals.items()))
    if est.max_rps is not None:
        t.add_row("max rate (no SLO)", f"{est.max_rps:,.3g} req/s")
    if est.max_goodput_rps is not None:
        t.add_row("max goodput (SLO)", f"{est.max_goodput_rps:,.3g} req/s")
    t.add_row("bound", est.bound)
    t.add_row("KV capacity", f"{est.memory['max_kv_tokens']:,} tokens")
    console.print(t)
    for note in est.notes:
        console.print(f"[yellow]note:[/] {note}")


def simulation(res, title: str, console: Console) -> None:
    t = _table(title, ("metric", "value"), ("metric",))
    for name, vals in (("TTFT", res.ttft_s), ("TPOT", res.tpot_s), ("end-to-end", res.e2e_s)):
        t.add_row(name, "  ".join(f"{k} {seconds(v)}" for k, v in vals.items()))
    t.add_row("output tokens/s", f"{res.output_tokens_per_s:,.0f}")
    t.add_row("requests/s", f"{res.requests_per_s:,.3g}")
    t.add_row("mean decode batch", f"{res.mean_decode_batch:,.1f}")
    t.add_row("preemptions", str(res.preemptions))
    console.print(t)


def sheet(df, output: str, console: Console) -> None:
    cols = [c for c in ("name", "status", "cost_per_hour", "total_gpus", "groups") if c in df.columns]
    t = _table(f"{len(df)} scenarios -> {output}", tuple(cols), tuple(cols))
    for r in df.to_dict("records"):
        t.add_row(*[str(r.get(c, "")) if r.get(c) == r.get(c) else "" for c in cols])
    console.print(t)


def validation(val, console: Console, err: Console, rows: bool, fails: list[str], n_rows: int) -> None:
    if rows and not val.rows.empty:
        t = _table("rows", ("line", "model", "accelerator", "engine", "metric", "measured", "predicted", "ape"),
                   ("model", "accelerator", "engine", "metric"))
        for r in val.rows.to_dict("records"):
            t.add_row(str(r["line"]), r["model"], r["accelerator"], r["engine"], r["metric"], f"{r['measured']:.4g}",
                      f"{r['predicted']:.4g}", f"{100 * r['ape']:.1f}%")
        console.print(t)
    t = _table(f"predicted vs measured: {len(val.rows)} comparisons, {len(val.skipped)} rows skipped",
               ("accelerator", "engine", "model_family", "metric", "n", "MdAPE", "p90 APE", "bias"),
               ("accelerator", "engine", "model_family", "metric"))
    for r in val.summary.to_dict("records"):
        t.add_row(r["accelerator"], r["engine"], r["model_family"], r["metric"], str(r["n"]),
                  f"{100 * r['mdape']:.1f}%", f"{100 * r['p90_ape']:.1f}%", f"{100 * r['bias']:+.1f}%")
    console.print(t)
    t = _table("per accelerator family", ("family", "metric", "n", "MdAPE", "p90 APE", "bias"), ("family", "metric"))
    for r in val.families.to_dict("records"):
        t.add_row(r["family"], r["metric"], str(r["n"]), f"{100 * r['mdape']:.1f}%", f"{100 * r['p90_ape']:.1f}%",
                  f"{100 * r['bias']:+.1f}%")
    console.print(t)
    for line, reason in val.skipped[:20]:
        err.print(f"skipped line {line}: {reason}", highlight=False, soft_wrap=True)
    if len(val.skipped) > 20:
        err.print(f"... and {len(val.skipped) - 20} more skipped rows")
    err.print(f"{len(val.skipped)} of {n_rows} rows skipped", highlight=False)
    for f in fails:
        err.print(f"[red]FAIL[/] {f}", highlight=False)


def calibration(report: list[dict[str, Any]], title: str, console: Console) -> None:
    t = _table(title, ("accelerators", "family", "train rows", "train MdAPE", "hold-out MdAPE"),
               ("accelerators", "family"))
    for r in report:
        t.add_row(", ".join(r["accelerators"]), r["family"], str(r["train_rows"]), f"{100 * r['train_mdape']:.1f}%",
                  "-" if r["holdout_mdape"] is None else f"{100 * r['holdout_mdape']:.1f}%")
    console.print(t)


def capacity(df, percentile: float, console: Console) -> None:
    """The capacity table, one row per (candidate, bucket) that meets the SLO."""
    pct = f"p{percentile:g}"
    t = _table(f"capacity per instance at the SLO ({pct}); {len(df)} rows", (
        "accelerator", "parallel", "role", "tokens/step", "pool", "bucket", "input", "output", "req/s", "binds",
        f"TTFT {pct}", f"TPOT {pct}", "$/h"), ("accelerator", "parallel", "role", "binds"))
    for r in df.to_dict("records"):
        par = f"TP{r['tp']}" + (f" PP{r['pp']}" if r["pp"] > 1 else "") + (f" EP{r['ep']}" if r["ep"] > 1 else "") \
            + (" DPA" if r["dp_attn"] else "")
        ttft, tpot = r.get(f"ttft_{pct}_s"), r.get(f"tpot_{pct}_s")
        t.add_row(r["accelerator"], par, r["role"], f"{int(r['token_budget']):,}" if r["role"] != "decode" else "-",
                  f">= {int(r['pool'])}" if int(r["pool"]) > 1 else "1", str(r["bucket"]), r["isl"], r["osl"],
                  f"{r['capacity_rps']:.3g}",
                  r["binds"], "-" if ttft is None or ttft != ttft else seconds(ttft),
                  "-" if tpot is None or tpot != tpot else seconds(tpot), f"{r['price_per_hour']:.2f}")
    console.print(t)


def pareto(front: list[dict[str, Any]], best: Any, tpot_limit_s: float | None, console: Console) -> None:
    """The Pareto front, most interactive first, and the best point under the TPOT limit."""
    t = _table("Pareto front: output tokens/s per GPU against tokens/s per user",
               ("mode", "decode", "prefill", "concurrency", "TPOT", "tok/s/user", "tok/s/GPU", "GPUs"),
               ("mode", "decode", "prefill"))
    for r in sorted(front, key=lambda r: -r["tokens_per_s_per_user"]):
        t.add_row(r["mode"], r["decode"], r["prefill"] or "-", f"{r['concurrency']:.1f}", seconds(r["tpot_s"]),
                  f"{r['tokens_per_s_per_user']:.1f}", f"{r['tokens_per_s_per_gpu']:.1f}", f"{r['gpus']:.2f}")
    console.print(t)
    if tpot_limit_s is not None:
        if best is None:
            console.print(f"no point meets TPOT <= {seconds(tpot_limit_s)}")
        else:
            console.print(f"best under TPOT <= {seconds(tpot_limit_s)}: {best.mode} {best.decode}"
                          f"{' + prefill ' + best.prefill if best.prefill else ''} at concurrency "
                          f"{best.concurrency:.0f}: {best.tokens_per_s_per_gpu:.1f} tok/s/GPU, "
                          f"{best.tokens_per_s_per_user:.1f} tok/s/user", highlight=False)
