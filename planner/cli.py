"""The ``planner`` command: parse flags, call the library, render. No modelling here."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from planner.errors import PlannerError, shorten
from planner.report.fmt import gib, seconds, si

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Capacity planner and cost optimiser for LLM inference serving.")
hardware_app = typer.Typer(no_args_is_help=True, help="Accelerators in the hardware database.")
models_app = typer.Typer(no_args_is_help=True, help="Models in the model database.")
app.add_typer(hardware_app, name="hardware")
app.add_typer(models_app, name="models")

# Not a terminal (pipes, CI logs): rich would wrap at 80 columns; give tables room instead.
out = Console() if sys.stdout.isatty() else Console(width=160)
err = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=1000)
_STATE: dict[str, Any] = {"hardware_paths": []}


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(_clean(data), indent=2, default=_jsonable) + "\n")


def check_output(path: Path | None, flag: str, suffixes: tuple[str, ...]) -> None:
    """Fail before any work when an output path cannot be written (wrong type, folder, missing folder)."""
    if path is None:
        return
    if path.suffix.lower() not in suffixes:
        fail(f"{flag}: expected a file name ending in {' or '.join(suffixes)} (got {path})")
    if path.is_dir():
        fail(f"{flag}: {path} is a folder; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        fail(f"{flag}: folder {parent} does not exist")


def refuse_inputs(path: Path | None, flag: str, *inputs: Path | str | None) -> None:
    """Fail before any work when an output path is one of the command's inputs (or a --hardware-path file)."""
    from planner.outputs import refuse_overwrite

    refuse_overwrite(path, *inputs, flag=flag, extra_inputs=_STATE["hardware_paths"])


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def guarded(fn: F) -> F:
    """Turn library errors into one line on stderr and exit code 2; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except PlannerError as exc:
            fail(str(exc))
        except (OSError, ValueError) as exc:
            fail(f"{exc.__class__.__name__}: {shorten(' '.join(str(exc).split()), 300)}")
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except Exception as exc:  # noqa: BLE001 - last line of defence: one line, no traceback
            fail(f"internal error ({exc.__class__.__name__}: {' '.join(str(exc).split())}); "
                 "please report it with the command you ran", 3)

    return wrapper  # type: ignore[return-value]


def _hw():
    """The hardware database with the user's extra paths, loaded once per command."""
    from planner.hardware import load_hardware

    if _STATE.get("hw") is None:
        _STATE["hw"] = load_hardware(_STATE["hardware_paths"])
    return _STATE["hw"]


@app.callback()
def _main(
    hardware_path: list[Path] = typer.Option(
        [], "--hardware-path", help="Extra accelerator YAML file or folder (repeatable); same id replaces."
    ),
) -> None:
    _STATE["hardware_paths"] = list(hardware_path)
    _STATE["hw"] = None


# --------------------------------------------------------------------------------------
# hardware
# --------------------------------------------------------------------------------------
@hardware_app.command("list")
@guarded
def hardware_list(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List accelerators with memory, bandwidth, peaks, links and price."""
    db = _hw()
    if as_json:
        print_json([a.to_dict() for a in db])
        return
    table = Table(title=f"{len(db)} accelerators", show_lines=False)
    for col in ("id", "vendor", "memory", "HBM BW", "bf16", "fp8", "fp4", "scale-up", "domain", "TDP", "$/h"):
        table.add_column(col, justify="left" if col in ("id", "vendor", "scale-up") else "right")
    for a in sorted(db, key=lambda x: (x.vendor, x.id)):
        pk = a.peak_flops
        table.add_row(
            a.id, a.vendor, gib(a.memory_bytes), si(a.mem_bw_bytes_per_s, "B/s"),
            si(pk.get("bf16", pk.get("fp16", 0)), "FLOP/s"),
            si(pk["fp8"], "FLOP/s") if "fp8" in pk else "-",
            si(pk["fp4"], "FLOP/s") if "fp4" in pk else "-",
            si(a.scaleup_bw_bytes_per_s, "B/s"), str(a.scaleup_domain), f"{a.tdp_w:.0f} W",
            f"{a.price_per_hour:.2f}",
        )
    out.print(table)


@hardware_app.command("show")
@guarded
def hardware_show(gpu: str = typer.Argument(..., help="Accelerator id or alias."),
                  as_json: bool = typer.Option(False, "--json")) -> None:
    """Every figure of one accelerator, with its source."""
    a = _hw().get(gpu)
    if as_json:
        print_json(a.to_dict())
        return
    table = Table(title=f"{a.name} ({a.id})", show_header=True)
    table.add_column("field")
    table.add_column("value", justify="right")
    table.add_column("source", overflow="fold")
    src = a.sources
    table.add_row("memory", gib(a.memory_bytes), src.get("memory_gib", ""))
    table.add_row("HBM bandwidth", si(a.mem_bw_bytes_per_s, "B/s"), src.get("mem_bw_tb_per_s", ""))
    for dtype, val in a.peak_flops.items():
        table.add_row(f"dense {dtype}", si(val, "FLOP/s"), src.get("peak_tflops_dense", ""))
    table.add_row("scale-up", f"{a.scaleup_link}, {si(a.scaleup_bw_bytes_per_s, 'B/s')}/dir, "
                  f"{a.scaleup_domain} GPUs", src.get("scaleup", ""))
    table.add_row("scale-out", si(a.scaleout_bw_bytes_per_s, "B/s"), src.get("scaleout_bw_gb_per_s", ""))
    table.add_row("TDP", f"{a.tdp_w:.0f} W", src.get("tdp_w", ""))
    table.add_row("price", f"${a.price_per_hour:.2f}/GPU-h ({a.price_date})", a.price_source)
    out.print(table)
    if a.notes:
        out.print(f"[dim]{a.notes}[/]")


# --------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------
@models_app.command("list")
@guarded
def models_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """List models with derived parameter counts and attention kind."""
    from planner.models import default_models

    db = default_models()
    if as_json:
        print_json([{k: v for k, v in m.to_dict().items()
                     if k in ("id", "name", "aliases", "hf_repo", "params", "active_params", "attention", "moe",
                              "layers", "kv_bytes_per_token_bf16", "max_context")} for m in db])
        return
    table = Table(title=f"{len(db)} models")
    for col in ("id", "params", "active", "attention", "MoE", "layers", "KV/token (bf16)", "context"):
        table.add_column(col, justify="left" if col in ("id", "attention") else "right")
    for m in sorted(db, key=lambda x: x.id):
        table.add_row(m.id, f"{m.params / 1e9:.1f} B", f"{m.active_params / 1e9:.1f} B", m.attention,
                      f"{m.n_experts}x top-{m.top_k}" if m.is_moe else "-", str(m.n_layers),
                      f"{m.kv_bytes_per_token(2.0) / 1024:.0f} KiB", f"{m.max_context:,}")
    out.print(table)


@models_app.command("show")
@guarded
def models_show(model: str = typer.Argument(..., help="Model id, alias, HF repo id or path to config.json."),
                as_json: bool = typer.Option(False, "--json")) -> None:
    """Architecture, derived parameter counts and KV bytes of one model."""
    from planner.models import get_model

    m = get_model(model)
    data = m.to_dict()
    if as_json:
        print_json(data)
        return
    table = Table(title=f"{m.name} ({m.id})")
    table.add_column("field")
    table.add_column("value", overflow="fold")
    for k, v in data.items():
        if isinstance(v, float) and k.endswith("params"):
            v = f"{v / 1e9:.2f} B"
        table.add_row(k, str(v))
    out.print(table)


# --------------------------------------------------------------------------------------
# memory and roofline
# --------------------------------------------------------------------------------------
_MODEL = typer.Option(..., "--model", "-m", help="Model id, alias, HF repo id or config.json path.")
_GPU = typer.Option(..., "--gpu", "-g", help="Accelerator id or alias.")
_TP = typer.Option(1, "--tp", min=1, help="Tensor-parallel degree.")
_PP = typer.Option(1, "--pp", min=1, help="Pipeline-parallel degree.")
_EP = typer.Option(1, "--ep", min=1, help="Expert-parallel degree (divides TP).")
_DPA = typer.Option(False, "--dp-attn", help="Data-parallel attention across the TP GPUs (MoE models).")
_PREC = typer.Option("bf16", "--precision", "-p", help="Weight dtype: bf16 fp16 fp8 int8 int4 fp4.")
_KV = typer.Option(None, "--kv-dtype", help="KV-cache dtype: bf16 fp16 fp8 int8 fp4 (default: 16-bit).")
_ENGINE = typer.Option("vllm", "--engine", "-e", help="Engine profile (vllm, sglang, trtllm, ideal) or YAML.")
_JSON = typer.Option(False, "--json", help="Machine-readable output.")
_PLOT = typer.Option(None, "--plot", help="Write a picture here (.png or .svg).")


@app.command("memory")
@guarded
def memory_cmd(model: str = _MODEL, gpu: str = _GPU, tp: int = _TP, pp: int = _PP, ep: int = _EP, dp_attn: bool = _DPA,
               precision: str = _PREC, kv_dtype: str | None = _KV, engine: str = _ENGINE,
               min_kv_tokens: int = typer.Option(2048, "--min-kv-tokens", min=1,
                                                 help="KV tokens that must fit for 'fits'."),
               as_json: bool = _JSON) -> None:
    """Weights, KV bytes per token and KV capacity per GPU; whether the model fits."""
    from planner.api import memory

    mp = memory(model, gpu, tp=tp, pp=pp, ep=ep, precision=precision, kv_dtype=kv_dtype, engine=engine,
                min_kv_tokens=min_kv_tokens, dp_attn=dp_attn, hardware_db=_hw())
    if as_json:
        print_json(mp.to_dict())
        return
    table = Table(title=f"memory per GPU ({mp.gpus} GPUs)")
    table.add_column("item")
    table.add_column("value", justify="right")
    table.add_row("HBM", gib(mp.memory_bytes_per_gpu))
    table.add_row("usable", gib(mp.usable_bytes_per_gpu))
    table.add_row("weights", gib(mp.weights_bytes_per_gpu))
    table.add_row("weights (whole model)", gib(mp.weights_bytes_total))
    table.add_row("activations", gib(mp.activation_bytes_per_gpu))
    table.add_row("runtime overhead", gib(mp.overhead_bytes_per_gpu))
    table.add_row("KV room", gib(mp.kv_room_bytes_per_gpu))
    table.add_row("KV bytes/token (model)", f"{mp.kv_bytes_per_token:,.0f} B")
    table.add_row("KV bytes/token (per GPU)", f"{mp.kv_bytes_per_token_per_gpu:,.0f} B")
    table.add_row("max KV tokens", f"{mp.max_kv_tokens:,}")
    table.add_row("fits", "[green]yes[/]" if mp.fits else "[red]no[/]")
    out.print(table)
    out.print(mp.reason)


@app.command("roofline")
@guarded
def roofline_cmd(model: str = _MODEL, gpu: str = _GPU, tp: int = _TP, pp: int = _PP, ep: int = _EP,
                 dp_attn: bool = _DPA,
                 precision: str = _PREC, kv_dtype: str | None = _KV, engine: str = _ENGINE,
                 phase: str = typer.Option("decode", "--phase", help="prefill or decode."),
                 batch: int = typer.Option(1, "--batch", "-b", min=1, help="Sequences in the step."),
                 context: int = typer.Option(1024, "--context", "-c", min=1,
                                             help="Prefill length, or cached tokens per sequence in decode."),
                 chunk: int | None = typer.Option(None, "--chunk", min=1, help="Prefill chunk (last chunk)."),
                 plot: Path | None = _PLOT, as_json: bool = _JSON) -> None:
    """Per-operator roofline of one step: FLOPs, bytes, intensity, bound, time."""
    from planner.api import roofline

    st = roofline(model, gpu, phase=phase, batch=batch, context=context, tp=tp, pp=pp, ep=ep,
                  precision=precision, kv_dtype=kv_dtype, engine=engine, chunk=chunk, dp_attn=dp_attn,
                  hardware_db=_hw())
    rows = [{
        "op": t.op.name, "kind": t.op.kind, "dtype": t.op.dtype, "flops": t.op.flops, "bytes": t.op.bytes,
        "comm_bytes": t.op.comm_bytes * t.op.launches, "intensity": t.op.intensity if t.op.bytes else None,
        "bound": t.bound, "time_s": t.time_s,
    } for t in st.ops]
    if plot is not None:
        from planner.report.plots import roofline_plot

        roofline_plot(st, _hw().get(gpu), plot, title=f"{model} {phase}, batch {batch}, context {context} "
                      f"on {gpu} TP{tp} ({engine})")
    summary = {"phase": phase, "batch": batch, "context": context, "gemm_dtype": st.gemm_dtype,
               "attention_dtype": st.attn_dtype, "stage_s": st.stage_s, "step_s": st.step_s,
               "micro_batches": st.micro_batches, "bound": st.bound,
               "tokens_per_s": (batch * (min(chunk or context, context) if phase == "prefill" else 1)) / st.step_s}
    if as_json:
        print_json({"ops": rows, **summary})
        return
    table = Table(title=f"{phase} step: batch {batch}, context {context} (one stage, per GPU)")
    for col in ("op", "dtype", "FLOPs", "bytes", "FLOP/B", "bound", "time", "share"):
        table.add_column(col, justify="left" if col in ("op", "dtype", "bound") else "right")
    total = st.stage_s or 1.0
    for r in rows:
        inten = r["intensity"]
        table.add_row(r["op"], r["dtype"], si(r["flops"], "FLOP"), si(r["bytes"] or r["comm_bytes"], "B"),
                      "-" if inten is None else f"{inten:,.1f}", r["bound"], seconds(r["time_s"]),
                      f"{100 * r['time_s'] / total:.1f}%")
    out.print(table)
    out.print(f"stage {seconds(st.stage_s)}, step {seconds(st.step_s)} (incl. engine overhead, "
              f"{pp} stage(s)); bound: {st.bound}; {summary['tokens_per_s']:,.0f} tokens/s")


def _slo(ttft: float | None, tpot: float | None, e2e: float | None, percentile: str):
    from planner.workload import SLO

    if e2e is not None:
        fail("--e2e: end-to-end limits are not planned for yet; give --ttft and --tpot")
    if ttft is None and tpot is None:
        SLO.parse_percentile(percentile)  # still reject a malformed percentile
        return None
    return SLO(ttft_s=ttft, tpot_s=tpot, percentile=SLO.parse_percentile(percentile))


_ISL = typer.Option(None, "--isl", min=1, help="Input tokens per request (fixed).")
_OSL = typer.Option(None, "--osl", min=1, help="Output tokens per request (fixed).")
_WORKLOAD = typer.Option(None, "--workload", "-w", help="Trace CSV (BurstGPT, Azure, plain) or workload YAML.")
_TTFT = typer.Option(None, "--ttft", help="TTFT limit in seconds at the SLO percentile.")
_TPOT = typer.Option(None, "--tpot", help="TPOT limit in seconds at the SLO percentile.")
_E2E = typer.Option(None, "--e2e", help="End-to-end latency limit in seconds.")
_PCT = typer.Option("p99", "--percentile", help="SLO percentile: p50, p90, p95, p99 or a number.")


@app.command("estimate")
@guarded
def estimate_cmd(model: str = _MODEL, gpu: str = _GPU, tp: int = _TP, pp: int = _PP, ep: int = _EP,
                 dp_attn: bool = _DPA,
                 precision: str = _PREC, kv_dtype: str | None = _KV, engine: str = _ENGINE,
                 isl: int | None = _ISL, osl: int | None = _OSL, workload: Path | None = _WORKLOAD,
                 concurrency: int | None = typer.Option(None, "--concurrency", help="Closed-loop clients."),
                 rate: float | None = typer.Option(None, "--rate", help="Arrival rate, requests/s."),
                 role: str = typer.Option("colocated", "--role", help="colocated, prefill or decode."),
                 ttft: float | None = _TTFT, tpot: float | None = _TPOT, e2e: float | None = _E2E,
                 percentile: str = _PCT, plot: Path | None = _PLOT, as_json: bool = _JSON) -> None:
    """Throughput and TTFT/TPOT of one instance: offline maximum, at a concurrency, or at a rate."""
    from planner.api import deployment
    from planner.serving.estimate import estimate, latency_sweep

    dep = deployment(model, gpu, tp, pp, ep, precision, kv_dtype, engine, hardware_db=_hw(), dp_attn=dp_attn)
    slo = _slo(ttft, tpot, e2e, percentile)
    est = estimate(model, gpu, isl=isl, osl=osl, workload=workload, concurrency=concurrency, rate_rps=rate,
                   slo=slo, role=role, dep=dep)
    if plot is not None:
        from planner.report.plots import latency_plot

        pcts = tuple(sorted({50.0, 90.0, 99.0, slo.percentile if slo else 99.0}))
        rows = latency_sweep(dep, est.isl, est.osl, percentiles=pcts)
        latency_plot(rows, plot, f"{est.model} on {est.gpus}x {est.gpu} ({est.parallel}, {est.engine}), "
                     f"{est.isl:,.0f} in / {est.osl:,.0f} out", tuple(f"p{p:g}" for p in pcts))
    if as_json:
        print_json(est.to_dict())
        return
    table = Table(title=f"{est.model} on {est.gpus}x {est.gpu} ({est.parallel}, {est.engine}, {est.role}, "
                  f"{est.mode})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("request size", f"{est.isl:,.0f} in / {est.osl:,.0f} out tokens (mean)")
    table.add_row("concurrency", f"{est.concurrency:,.1f}")
    table.add_row("requests/s", f"{est.requests_per_s:,.3g}")
    table.add_row("output tokens/s", f"{est.output_tokens_per_s:,.0f} ({est.output_tokens_per_s_per_gpu:,.0f}/GPU)")
    table.add_row("total tokens/s", f"{est.total_tokens_per_s:,.0f}")
    for name, vals in (("TTFT", est.ttft_s), ("TPOT", est.tpot_s)):
        if vals:
            table.add_row(name, "  ".join(f"{k} {seconds(v)}" for k, v in vals.items()))
    if est.max_rps is not None:
        table.add_row("max rate (no SLO)", f"{est.max_rps:,.3g} req/s")
    if est.max_goodput_rps is not None:
        table.add_row("max goodput (SLO)", f"{est.max_goodput_rps:,.3g} req/s")
    table.add_row("bound", est.bound)
    table.add_row("KV capacity", f"{est.memory['max_kv_tokens']:,} tokens")
    out.print(table)
    for note in est.notes:
        out.print(f"[yellow]note:[/] {note}")


@app.command("simulate")
@guarded
def simulate_cmd(model: str = _MODEL, gpu: str = _GPU, tp: int = _TP, pp: int = _PP, ep: int = _EP,
                 dp_attn: bool = _DPA,
                 precision: str = _PREC, kv_dtype: str | None = _KV, engine: str = _ENGINE,
                 isl: int | None = _ISL, osl: int | None = _OSL, workload: Path | None = _WORKLOAD,
                 rate: float | None = typer.Option(None, "--rate", help="Poisson arrival rate, requests/s."),
                 concurrency: int | None = typer.Option(None, "--concurrency", help="Closed-loop clients."),
                 requests: int = typer.Option(2000, "--requests", min=1, max=1_000_000, help="Requests to simulate."),
                 prefill_instances: int = typer.Option(0, "--prefill-instances", min=0, max=4096,
                                                       help="Disaggregated: prefill instances (0 = colocated)."),
                 decode_instances: int = typer.Option(1, "--decode-instances", min=1, max=4096,
                                                      help="Disaggregated: decode instances."),
                 seed: int = typer.Option(0, "--seed", min=0), as_json: bool = _JSON,
                 quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress spinner.")) -> None:
    """Discrete-event simulation of one instance (or a prefill pool plus a decode pool)."""
    import numpy as np

    from planner.api import deployment
    from planner.serving import simulate as sim
    from planner.serving.estimate import load_workload
    from planner.workload import Workload

    dep = deployment(model, gpu, tp, pp, ep, precision, kv_dtype, engine, hardware_db=_hw(), dp_attn=dp_attn)
    if rate is not None and not (rate > 0 and math.isfinite(rate)):
        fail(f"--rate: expected a positive number of requests/s (got {rate})")
    if workload is not None and (isl is not None or osl is not None):
        fail("--workload: give either --workload or --isl/--osl, not both")
    if concurrency is not None and prefill_instances:
        fail("--prefill-instances: disaggregated simulation takes --rate, not --concurrency")
    if workload is not None:
        wl = load_workload(workload, rate)
    elif isl is not None and osl is not None:
        wl = Workload.fixed(rate if rate is not None else 1.0, isl, osl)
    else:
        fail("isl/osl: expected both --isl and --osl, or --workload FILE")
    if (rate is None) == (concurrency is None) and workload is None:
        fail("rate/concurrency: expected exactly one of --rate or --concurrency")
    rng = np.random.default_rng(seed)
    isl_arr, osl_arr = wl.sample_requests(requests, rng)
    spinner = err.status(f"simulating {requests} requests") if not quiet and not as_json and sys.stderr.isatty() \
        else contextlib.nullcontext()
    with spinner:
        res = _simulate(sim, dep, wl, rate, concurrency, prefill_instances, decode_instances, isl_arr, osl_arr,
                        requests, rng)
    if as_json:
        print_json(res.to_dict())
        return
    _render_sim(res, dep)


def _simulate(sim, dep, wl, rate, concurrency, prefill_instances, decode_instances, isl_arr, osl_arr, requests, rng):
    if concurrency is not None:
        return sim.simulate_closed_loop(dep, concurrency, isl_arr, osl_arr, requests)
    arrivals = sim.poisson_arrivals(rate if rate is not None else wl.rate_rps, requests, rng, cv=wl.arrival_cv)
    if prefill_instances:
        link = dep.acc.scaleout_bw_bytes_per_s * dep.par.gpus
        return sim.simulate_disaggregated(dep, dep, prefill_instances, decode_instances, arrivals, isl_arr,
                                          osl_arr, kv_link_bytes_per_s=link)
    return sim.simulate_colocated(dep, arrivals, isl_arr, osl_arr)


def _render_sim(res, dep) -> None:
    t = Table(title=f"simulated {res.n_requests} requests of {dep.model.id} on {dep.par.gpus}x {dep.acc.id}")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for name, vals in (("TTFT", res.ttft_s), ("TPOT", res.tpot_s), ("end-to-end", res.e2e_s)):
        t.add_row(name, "  ".join(f"{k} {seconds(v)}" for k, v in vals.items()))
    t.add_row("output tokens/s", f"{res.output_tokens_per_s:,.0f}")
    t.add_row("requests/s", f"{res.requests_per_s:,.3g}")
    t.add_row("mean decode batch", f"{res.mean_decode_batch:,.1f}")
    t.add_row("preemptions", str(res.preemptions))
    out.print(t)


@app.command("plan")
@guarded
def plan_cmd(scenario: Path | None = typer.Argument(None, help="Scenario YAML/TOML (flags below override it)."),
             model: str | None = typer.Option(None, "--model", "-m", help="Model (without a scenario file)."),
             precision: str | None = typer.Option(None, "--precision", "-p"),
             kv_dtype: str | None = typer.Option(None, "--kv-dtype"),
             engine: str | None = typer.Option(None, "--engine", "-e"),
             rate: float | None = typer.Option(None, "--rate", help="Request rate, requests/s."),
             isl: str | None = typer.Option(None, "--isl", help="Input length: 1024 or lognormal:mean=..,p99=.."),
             osl: str | None = typer.Option(None, "--osl", help="Output length, same forms."),
             ttft: float | None = _TTFT, tpot: float | None = _TPOT, percentile: str | None = typer.Option(None,
                                                                                                 "--percentile"),
             gpus: str | None = typer.Option(None, "--gpus", help="Comma-separated candidate accelerators."),
             budget: float | None = typer.Option(None, "--budget", help="Max $/hour."),
             objective: str | None = typer.Option(None, "--objective", help="cost, gpus or power."),
             disaggregation: str | None = typer.Option(None, "--disaggregation", help="auto, off or only."),
             as_json: bool = _JSON, csv: Path | None = typer.Option(None, "--csv", help="Write groups as CSV."),
             xlsx: Path | None = typer.Option(None, "--xlsx", help="Write an XLSX workbook."),
             plot: Path | None = typer.Option(None, "--plot", help="Cost against request rate (.png/.svg)."),
             plot_slo: Path | None = typer.Option(None, "--plot-slo", help="Cost against the TTFT limit (.png/.svg)."),
             quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar.")) -> None:
    """The cheapest deployment that meets the SLO at the rate: GPUs, parallelism, P/D split, cost."""
    from planner.optimise.plan import plan
    from planner.report.plan_out import render, write_csv, write_xlsx
    from planner.scenario import load_scenario, parse_scenario

    if scenario is not None:
        sc = load_scenario(scenario)
    else:
        if model is None or rate is None or isl is None or osl is None or (ttft is None and tpot is None):
            fail("plan: give a scenario file, or --model, --rate, --isl, --osl and --ttft/--tpot")
        sc = parse_scenario({"model": model, "workload": {"rate_rps": rate, "input": isl, "output": osl},
                             "slo": {"ttft_s": ttft, "tpot_s": tpot}}, "flags")
    from dataclasses import replace

    from planner.workload import SLO, Workload, parse_length

    if model:
        sc = replace(sc, model=model)
    for name, val in (("precision", precision), ("kv_dtype", kv_dtype), ("engine", engine), ("objective", objective),
                      ("disaggregation", disaggregation)):
        if val is not None:
            sc = replace(sc, **{name: val})
    if budget is not None:
        sc = replace(sc, budget_per_hour=budget)
    if gpus is not None:
        names = tuple(g.strip() for g in gpus.split(",") if g.strip())
        if not names:
            fail("--gpus: expected a comma-separated list of accelerator names")
        sc = replace(sc, accelerators=names)
    if scenario is not None and (rate is not None or isl or osl):
        w = sc.workload
        sc = replace(sc, workload=Workload(rate if rate is not None else w.rate_rps,
                                           parse_length(isl) if isl else w.input_len,
                                           parse_length(osl) if osl else w.output_len, w.arrival_cv, w.pairs))
    if scenario is not None and (ttft is not None or tpot is not None or percentile):
        sc = replace(sc, slo=SLO(ttft_s=ttft if ttft is not None else sc.slo.ttft_s,
                                 tpot_s=tpot if tpot is not None else sc.slo.tpot_s,
                                 percentile=SLO.parse_percentile(percentile) if percentile else sc.slo.percentile))
    elif percentile:
        sc = replace(sc, slo=SLO(ttft_s=sc.slo.ttft_s, tpot_s=sc.slo.tpot_s,
                                 percentile=SLO.parse_percentile(percentile)))
    sc = replace(sc)  # re-validate after overrides
    check_output(csv, "--csv", (".csv",))
    check_output(xlsx, "--xlsx", (".xlsx",))
    for path_, flag_ in ((csv, "--csv"), (xlsx, "--xlsx"), (plot, "--plot"), (plot_slo, "--plot-slo")):
        refuse_inputs(path_, flag_, scenario)
    from planner.optimise.plan import prepare
    from planner.report import plots as plots_mod

    for p in (plot, plot_slo):  # fail on a bad plot path before minutes of work
        if p is not None:
            plots_mod._check_path(p)
    show = not quiet and not as_json and sys.stderr.isatty()
    if show:
        from rich.progress import Progress

        with Progress(transient=True, console=err) as prog:
            task = prog.add_task("evaluating candidates", total=None)
            prep = prepare(sc, hw=_hw(), progress=lambda: prog.advance(task))
    else:
        prep = prepare(sc, hw=_hw())
    result = plan(sc, hw=_hw(), prepared=prep)
    if plot is not None:
        from planner.optimise.plan import cost_at

        scales = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0]
        base_rate = sc.workload.rate_rps
        series = {"recommended (mix)": [(s_ * base_rate, cost_at(prep, s_)) for s_ in scales]}
        for acc_id in sorted({c.acc.id for c in prep.candidates}):
            series[acc_id] = [(s_ * base_rate, cost_at(prep, s_, allow=lambda c, a=acc_id: c.acc.id == a))
                              for s_ in scales]
        plots_mod.cost_vs_rate_plot(series, plot, f"{result.model}: cost to meet the SLO against request rate",
                                    marker_rate=base_rate)
    if plot_slo is not None:
        from planner.optimise.plan import cost_at

        limit = sc.slo.ttft_s if sc.slo.ttft_s is not None else sc.slo.tpot_s
        field_ = "ttft_s" if sc.slo.ttft_s is not None else "tpot_s"
        pts = []
        for s_ in (0.5, 0.75, 1.0, 1.5, 2.0, 3.0):
            sc_i = sc.with_slo(**{field_: limit * s_})
            pts.append((limit * s_, cost_at(prepare(sc_i, hw=_hw()))))
        plots_mod.cost_vs_slo_plot(pts, plot_slo, f"{result.model} at {sc.workload.rate_rps:g} req/s: cost against "
                                   f"the p{sc.slo.percentile:g} {field_[:4].upper()} limit",
                                   f"p{sc.slo.percentile:g} {field_[:4].upper()} limit (s)")
    if csv is not None:
        write_csv(result, csv)
    if xlsx is not None:
        write_xlsx(result, xlsx)
    if as_json:
        print_json(result.to_dict())
    else:
        render(result, out)


@app.command("sheet")
@guarded
def sheet_cmd(src: Path = typer.Argument(..., help="Sheet of scenarios (XLSX or CSV), one per row."),
              output: Path = typer.Option(..., "--output", "-o", help="Where to write the plans (XLSX or CSV)."),
              quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar.")) -> None:
    """Plan every row of a capacity spreadsheet and write the plans back as a sheet."""
    from planner.sheet import plan_sheet

    check_output(output, "--output", (".xlsx", ".csv"))
    refuse_inputs(output, "--output", src)
    if not quiet and sys.stderr.isatty():
        from rich.progress import Progress

        with Progress(transient=True, console=err) as prog:
            task = prog.add_task("planning rows", total=None)
            df = plan_sheet(src, output, progress=lambda: prog.advance(task), hw=_hw())
    else:
        df = plan_sheet(src, output, hw=_hw())
    t = Table(title=f"{len(df)} scenarios -> {output}")
    for c in ("name", "status", "cost_per_hour", "total_gpus", "groups"):
        if c in df.columns:
            t.add_column(c)
    for r in df.to_dict("records"):
        t.add_row(*[str(r.get(c, "")) if r.get(c) == r.get(c) else "" for c in ("name", "status", "cost_per_hour",
                                                                                  "total_gpus", "groups")
                    if c in df.columns])
    out.print(t)


def _read_any_measured(path: Path):
    """Our measured schema, or a published format recognised by its header (MLPerf, aiconfigurator)."""
    import pandas as pd

    from planner.calib.measured import from_aiconfigurator_silicon, from_mlperf, read_measured

    try:
        head = pd.read_csv(path, nrows=0).columns
    except Exception:  # noqa: BLE001 - read_measured gives the one-line reason
        return read_measured(path)
    if "silicon_tpot_ms" in head:
        return from_aiconfigurator_silicon(path)
    if "tokens_per_s_per_accel" in head:
        return from_mlperf(path)
    return read_measured(path)


@app.command("validate")
@guarded
def validate_cmd(measured: Path = typer.Argument(..., help="Measured CSV (our schema, MLPerf or aiconfigurator)."),
                 profile: str | None = typer.Option(None, "--profile", help="Profile YAML (default: per-row engine)."),
                 max_mdape: float | None = typer.Option(None, "--max-mdape", help="Gate: max median APE, e.g. 0.15."),
                 max_p90_ape: float | None = typer.Option(None, "--max-p90-ape", help="Gate: max p90 APE."),
                 junit: Path | None = typer.Option(None, "--junit", help="Write JUnit XML here."),
                 as_json: bool = _JSON, rows: bool = typer.Option(False, "--rows", help="Print every row."),
                 quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar.")) -> None:
    """Predicted vs measured per row and per group; exit 1 when a gate fails."""
    from planner.profile import load_profile
    from planner.validate import validate_frame

    for name, val in (("--max-mdape", max_mdape), ("--max-p90-ape", max_p90_ape)):
        if val is not None and not (0 < val <= 1):
            fail(f"{name}: expected a fraction in (0, 1] such as 0.15 for 15% (got {val})")
    check_output(junit, "--junit", (".xml",))
    refuse_inputs(junit, "--junit", measured, profile)
    df = _read_any_measured(measured)
    prof = load_profile(profile) if profile else None
    if not quiet and not as_json and sys.stderr.isatty():
        from rich.progress import Progress

        with Progress(transient=True, console=err) as prog:
            task = prog.add_task("predicting rows", total=len(df))
            val = validate_frame(df, profile=prof, hw=_hw(), progress=lambda i: prog.update(task, completed=i))
    else:
        val = validate_frame(df, profile=prof, hw=_hw())
    fails = val.gate(max_mdape, max_p90_ape)
    if junit is not None:
        from planner.report.junit import write_junit

        write_junit(junit, val, max_mdape, max_p90_ape)
    if as_json:
        print_json({**val.to_dict(), "failures": fails, "passed": not fails})
    else:
        if rows and not val.rows.empty:
            t = Table(title="rows")
            for c in ("line", "model", "accelerator", "engine", "metric", "measured", "predicted", "ape"):
                t.add_column(c, justify="right" if c in ("measured", "predicted", "ape", "line") else "left")
            for r in val.rows.to_dict("records"):
                t.add_row(str(r["line"]), r["model"], r["accelerator"], r["engine"], r["metric"],
                          f"{r['measured']:.4g}", f"{r['predicted']:.4g}", f"{100 * r['ape']:.1f}%")
            out.print(t)
        t = Table(title=f"predicted vs measured: {len(val.rows)} comparisons, {len(val.skipped)} rows skipped")
        for c in ("accelerator", "engine", "family", "metric", "n", "MdAPE", "p90 APE", "bias"):
            t.add_column(c, justify="right" if c in ("n", "MdAPE", "p90 APE", "bias") else "left")
        for r in val.summary.to_dict("records"):
            t.add_row(r["accelerator"], r["engine"], r["family"], r["metric"], str(r["n"]),
                      f"{100 * r['mdape']:.1f}%", f"{100 * r['p90_ape']:.1f}%", f"{100 * r['bias']:+.1f}%")
        out.print(t)
        for line, reason in val.skipped[:20]:
            err.print(f"skipped line {line}: {reason}", highlight=False, soft_wrap=True)
        if len(val.skipped) > 20:
            err.print(f"... and {len(val.skipped) - 20} more skipped rows")
        err.print(f"{len(val.skipped)} of {len(df)} rows skipped", highlight=False)
        for f in fails:
            err.print(f"[red]FAIL[/] {f}", highlight=False)
    if val.rows.empty:
        fail("no row could be evaluated; see the skipped reasons above")
    if fails:
        raise typer.Exit(1)


@app.command("calibrate")
@guarded
def calibrate_cmd(measured: Path = typer.Argument(..., help="Measured CSV (our schema, MLPerf or aiconfigurator)."),
                  output: Path = typer.Option(..., "--output", "-o", help="Profile YAML to write."),
                  engine: str = _ENGINE,
                  holdout: float = typer.Option(0.3, "--holdout", min=0.0, max=0.9,
                                                help="Share of rows kept out of the fit to report error on."),
                  seed: int = typer.Option(0, "--seed"),
                  quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress spinner.")) -> None:
    """Fit an engine profile's serving factors to your measurements, per accelerator family."""
    from planner.calibrate import calibrate

    check_output(output, "--output", (".yaml", ".yml"))
    refuse_inputs(output, "--output", measured, engine)
    df = _read_any_measured(measured)
    if not quiet and sys.stderr.isatty():
        with err.status(f"fitting {engine} factors to {len(df)} rows (robust least squares)"):
            report = calibrate(df, engine=engine, output=output, holdout=holdout, seed=seed, hw=_hw())
    else:
        report = calibrate(df, engine=engine, output=output, holdout=holdout, seed=seed, hw=_hw())
    t = Table(title=f"calibrated {engine} profile -> {output}")
    for c in ("accelerators", "family", "train rows", "train MdAPE", "hold-out MdAPE"):
        t.add_column(c)
    for r in report:
        t.add_row(", ".join(r["accelerators"]), r["family"], str(r["train_rows"]), f"{100 * r['train_mdape']:.1f}%",
                  "-" if r["holdout_mdape"] is None else f"{100 * r['holdout_mdape']:.1f}%")
    out.print(t)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: usage errors (unknown option, bad value, unknown command) as one line on
    stderr with exit code 2, like every other bad input, instead of a framed panel."""
    try:
        rv = app(args=argv, standalone_mode=False)
    except Exception as exc:  # noqa: BLE001 - typer's click layer is vendored; match its errors by shape
        if type(exc).__name__ == "NoArgsIsHelpError":  # help was printed; no command is a usage error
            raise SystemExit(2) from None
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            ctx = getattr(exc, "ctx", None)
            where = f"{ctx.command_path}: " if ctx is not None and getattr(ctx, "command_path", "") else ""
            err.print(f"[bold red]error:[/] {where}{' '.join(str(exc.format_message()).split())}", highlight=False,
                      soft_wrap=True)
            raise SystemExit(exc.exit_code) from None
        if type(exc).__name__ == "Abort":
            raise SystemExit(130) from None
        raise
    raise SystemExit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
