"""The ``planner`` command: parse flags, call the library, render. No modelling here."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from planner.errors import InfeasibleError, PlannerError, shorten
from planner.report import tables

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Capacity planner and cost optimiser for LLM inference serving.")
hardware_app = typer.Typer(no_args_is_help=True, help="Accelerators in the hardware database.")
models_app = typer.Typer(no_args_is_help=True, help="Models in the model database.")
app.add_typer(hardware_app, name="hardware")
app.add_typer(models_app, name="models")

# Not a terminal (pipes, CI logs): rich would wrap at 80 columns; give tables room instead.
class _Out(Console):
    """stdout console whose broken pipe is an exit 141 (as SIGPIPE), not rich's exit 1, which here means
    "no plan meets the constraints"."""

    def on_broken_pipe(self) -> None:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(141)


out = _Out() if sys.stdout.isatty() else _Out(width=160)
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
    from planner.outputs import referenced_files, refuse_overwrite

    named = [f for inp in inputs if path and inp is not None and str(inp) != "-" for f in referenced_files(inp)]
    refuse_overwrite(path, *inputs, flag=flag, extra_inputs=[*_STATE["hardware_paths"], *named])


def fail(message: str, code: int = 2) -> None:
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)  # "[dask]" stays text
    raise typer.Exit(code)


def guarded(fn: F) -> F:
    """Turn library errors into one line on stderr and exit code 2; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, BrokenPipeError):
            raise
        except InfeasibleError as exc:  # no plan meets the constraints: exit 1, bad input stays 2
            fail(str(exc), 1)
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
    from planner.hardware import env_hardware_paths
    _STATE["hardware_paths"] = [*hardware_path, *env_hardware_paths()]  # jobs on other machines carry both
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
    tables.hardware_list(db, out)


@hardware_app.command("show")
@guarded
def hardware_show(gpu: str = typer.Argument(..., help="Accelerator id or alias."),
                  as_json: bool = typer.Option(False, "--json")) -> None:
    """Every figure of one accelerator, with its source."""
    a = _hw().get(gpu)
    if as_json:
        print_json(a.to_dict())
        return
    tables.hardware_show(a, out)


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
    tables.models_list(db, out)


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
    tables.key_values(f"{m.name} ({m.id})", data, out)


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
    tables.memory_plan(mp, out)


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
    from planner.api import roofline_rows

    rows, summary = roofline_rows(st, phase, batch, context, chunk)
    if plot is not None:
        from planner.report.plots import roofline_plot

        roofline_plot(st, _hw().get(gpu), plot, title=f"{model} {phase}, batch {batch}, context {context} "
                      f"on {gpu} TP{tp} ({engine})")
    if as_json:
        print_json({"ops": rows, **summary})
        return
    tables.roofline(rows, summary, pp, out)


def _slo(ttft: float | None, tpot: float | None, percentile: str):
    from planner.workload import SLO

    if ttft is None and tpot is None:
        SLO.parse_percentile(percentile)  # still reject a malformed percentile
        return None
    return SLO(ttft_s=ttft, tpot_s=tpot, percentile=SLO.parse_percentile(percentile))


_ISL = typer.Option(None, "--isl", min=1, help="Input tokens per request (fixed).")
_OSL = typer.Option(None, "--osl", min=1, help="Output tokens per request (fixed).")
_WORKLOAD = typer.Option(None, "--workload", "-w", help="Trace CSV (BurstGPT, Azure, plain) or workload YAML.")
_TTFT = typer.Option(None, "--ttft", help="TTFT limit in seconds at the SLO percentile.")
_TPOT = typer.Option(None, "--tpot", help="TPOT limit in seconds at the SLO percentile.")
_PCT = typer.Option("p99", "--percentile", help="SLO percentile: p50, p90, p95, p99 or a number.")
_SPEC = typer.Option(None, "--spec-method", help="Speculative decoding: mtp, eagle or draft.")
_SPEC_K = typer.Option(None, "--spec-tokens", help="Draft tokens per step (with --spec-method).")
_SPEC_A = typer.Option(None, "--spec-acceptance", help="Per-token draft acceptance rate in [0, 1].")
_SPEC_D = typer.Option(None, "--spec-draft-model", help="Draft model (--spec-method draft).")
_HIT = typer.Option(None, "--prefix-hit", help="Prefix-cache hit ratio in [0, 1): share of prompt tokens cached.")


def _features(method: str | None, k: int | None, acc: float | None, draft: str | None, hit: float | None):
    """EngineSettings for the speculative-decoding and prefix-cache flags (planner.speculative)."""
    from planner.profile import EngineSettings
    from planner.speculative import settings_from_flags

    return EngineSettings(**settings_from_flags(method, k, acc, draft, hit))


@app.command("estimate")
@guarded
def estimate_cmd(model: str = _MODEL, gpu: str = _GPU, tp: int = _TP, pp: int = _PP, ep: int = _EP,
                 dp_attn: bool = _DPA,
                 precision: str = _PREC, kv_dtype: str | None = _KV, engine: str = _ENGINE,
                 isl: int | None = _ISL, osl: int | None = _OSL, workload: Path | None = _WORKLOAD,
                 concurrency: int | None = typer.Option(None, "--concurrency", help="Closed-loop clients."),
                 rate: float | None = typer.Option(None, "--rate", help="Arrival rate, requests/s."),
                 role: str = typer.Option("colocated", "--role", help="colocated, prefill or decode."),
                 ttft: float | None = _TTFT, tpot: float | None = _TPOT,
                 percentile: str = _PCT, plot: Path | None = _PLOT, as_json: bool = _JSON,
                 spec_method: str | None = _SPEC, spec_tokens: int | None = _SPEC_K,
                 spec_acceptance: float | None = _SPEC_A, spec_draft_model: str | None = _SPEC_D,
                 prefix_hit: float | None = _HIT) -> None:
    """Throughput and TTFT/TPOT of one instance: offline maximum, at a concurrency, or at a rate."""
    from planner.api import deployment
    from planner.serving.estimate import estimate, latency_sweep

    feats = _features(spec_method, spec_tokens, spec_acceptance, spec_draft_model, prefix_hit)
    dep = deployment(model, gpu, tp, pp, ep, precision, kv_dtype, engine, hardware_db=_hw(), dp_attn=dp_attn,
                     settings=feats)
    slo = _slo(ttft, tpot, percentile)
    est = estimate(isl=isl, osl=osl, workload=workload, concurrency=concurrency, rate_rps=rate,
                   slo=slo, role=role, deployment=dep)
    if plot is not None:
        from planner.report.plots import latency_plot

        pcts = tuple(sorted({50.0, 90.0, 99.0, slo.percentile if slo else 99.0}))
        rows = latency_sweep(dep, est.isl, est.osl, percentiles=pcts)
        latency_plot(rows, plot, f"{est.model} on {est.gpus}x {est.accelerator} ({est.parallel}, {est.engine}), "
                     f"{est.isl:,.0f} in / {est.osl:,.0f} out", tuple(f"p{p:g}" for p in pcts))
    if as_json:
        print_json(est.to_dict())
        return
    tables.estimate(est, out)


@app.command("simulate")
@guarded
def simulate_cmd(model: str | None = typer.Option(None, "--model", "-m", help="Model (not with --plan)."),
                 gpu: str | None = typer.Option(None, "--gpu", "-g", help="Accelerator (not with --plan)."),
                 tp: int = _TP, pp: int = _PP, ep: int = _EP,
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
                 quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress spinner."),
                 plan: Path | None = typer.Option(None, "--plan", help="Replay a whole plan (planner plan --json)."),
                 scenario: Path | None = typer.Option(None, "--scenario", help="With --plan: the scenario "
                                                      "(default: the file the plan names)."),
                 max_replays: int = typer.Option(24, "--max-replays", min=0, max=1000,
                                                 help="With --plan: cap on replays searching the smallest "
                                                 "instance counts (0: no search)."),
                 spec_method: str | None = _SPEC, spec_tokens: int | None = _SPEC_K,
                 spec_acceptance: float | None = _SPEC_A, spec_draft_model: str | None = _SPEC_D,
                 prefix_hit: float | None = _HIT) -> None:
    """Discrete-event simulation of one instance (or a prefill pool plus a decode pool), or of a whole plan."""
    from planner.api import deployment
    from planner.serving.simulate import run_simulation

    if plan is not None:
        if model is not None or gpu is not None or workload is not None or isl is not None or osl is not None:
            fail("simulate --plan: the plan gives the deployments and its scenario the workload; drop --model, "
                 "--gpu, --workload, --isl and --osl")
        from planner.cli_plan import simulate_plan

        if spec_method or spec_tokens or spec_acceptance is not None or spec_draft_model or prefix_hit is not None:
            fail("simulate --plan: speculative decoding and prefix caching come from the plan's scenario "
                 "(speculative:, workload.prefix_cache_hit); drop the --spec-* and --prefix-hit flags")
        simulate_plan(plan, scenario, requests, seed, max_replays, as_json, quiet)
        return
    if scenario is not None:
        fail("simulate: --scenario goes with --plan PLAN.json")
    if model is None or gpu is None:
        fail("simulate: give --model and --gpu (one instance or P/D pair), or --plan PLAN.json (a whole plan)")
    dep = deployment(model, gpu, tp, pp, ep, precision, kv_dtype, engine, hardware_db=_hw(), dp_attn=dp_attn,
                     settings=_features(spec_method, spec_tokens, spec_acceptance, spec_draft_model, prefix_hit))
    spinner = err.status(f"simulating {requests} requests") if not quiet and not as_json and sys.stderr.isatty() \
        else contextlib.nullcontext()
    with spinner:
        res = run_simulation(dep, isl=isl, osl=osl, workload=workload, rate_rps=rate, concurrency=concurrency,
                             n_requests=requests, prefill_instances=prefill_instances,
                             decode_instances=decode_instances, seed=seed)
    if as_json:
        print_json(res.to_dict())
        return
    tables.simulation(res, f"simulated {res.n_requests} requests of {dep.model.id} on {dep.parallel.gpus}x "
                      f"{dep.accelerator.id}", out)


@app.command("example")
@guarded
def example_cmd(name: str | None = typer.Argument(None, help="Example name (chat, budget, deepseek, long ...); "
                                                       "none lists them.")) -> None:
    """Print a shipped example scenario (pipe it to ``planner plan -``), or list them."""
    from planner.paths import data_dir

    folder = data_dir("examples")
    files = sorted(folder.glob("*.yaml"))
    if name is None:
        for f in files:
            first = f.read_text().splitlines()[0].lstrip("# ") if f.stat().st_size else ""
            out.print(f"{f.stem:36s} {first}", highlight=False, soft_wrap=True)
        return
    key = name.strip().lower().removesuffix(".yaml")
    hits = [f for f in files if f.stem == key] or [f for f in files if f.stem.startswith(key)]
    if len(hits) != 1:
        fail(f"example: expected one of {', '.join(f.stem for f in files)} (got {shorten(name, 80)!r})")
    sys.stdout.write(hits[0].read_text())


def _register() -> None:
    """The planning commands live in ``cli_plan`` (kept apart to keep each module small)."""
    import planner.cli_fleet  # noqa: F401
    import planner.cli_plan  # noqa: F401
    import planner.cli_sweep  # noqa: F401


_register()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: usage errors (unknown option, bad value, unknown command) as one line on
    stderr with exit code 2, like every other bad input, instead of a framed panel."""
    try:
        rv = app(args=argv, standalone_mode=False)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (`planner plan S | head`): stop quietly, as SIGPIPE would
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(141) from None
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
