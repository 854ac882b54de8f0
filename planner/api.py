"""Library entry points that take names or objects and return plain values.

The CLI is a thin layer over these; notebooks and spreadsheets call them directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from planner.dtypes import Precision, default_kv_dtype
from planner.hardware import Accelerator, HardwareDB, get_accelerator
from planner.models import ModelArch, ModelDB, get_model
from planner.parallel import Parallel, check_parallel
from planner.perf.memory import MemoryPlan, memory_plan
from planner.perf.shape import phase_shape
from planner.perf.step import StepTime, step_time
from planner.profile import Efficiency, Profile, load_profile


@dataclass(frozen=True)
class Deployment:
    """A model on one instance shape: accelerator, parallelism, precision and engine profile."""

    model: ModelArch
    acc: Accelerator
    par: Parallel
    prec: Precision
    profile: Profile

    @property
    def eff(self) -> Efficiency:
        return self.profile.for_accelerator(self.acc.id, self.acc.family)


def deployment(model: str | ModelArch, gpu: str | Accelerator, tp: int = 1, pp: int = 1, ep: int = 1,
               precision: str = "bf16", kv_dtype: str | None = None, engine: str | Profile = "vllm",
               hardware_db: HardwareDB | None = None, model_db: ModelDB | None = None,
               dp_attn: bool = False) -> Deployment:
    """Resolve names and check that the model can be split this way on this accelerator."""
    m = get_model(model, model_db)
    acc = get_accelerator(gpu, hardware_db)
    par = Parallel(tp=tp, pp=pp, ep=ep, dp_attn=dp_attn)
    precision = precision.strip().lower() if isinstance(precision, str) else precision
    kv_dtype = kv_dtype.strip().lower() if isinstance(kv_dtype, str) else kv_dtype
    check_parallel(par, m.n_heads, m.n_kv_heads, m.n_layers, m.n_experts)
    if tp > acc.scaleup_domain:
        from planner.errors import PlannerError

        raise PlannerError(f"tp: {tp} exceeds the {acc.scaleup_domain}-GPU scale-up domain of {acc.id}; "
                           f"use tp <= {acc.scaleup_domain} and pipeline parallelism across domains")
    # KV dtype defaults to the 16-bit activation dtype, as vLLM's kv_cache_dtype=auto does.
    prec = Precision(weights=precision, kv=kv_dtype or default_kv_dtype(getattr(engine, "engine", engine), precision),
                     activations="fp16" if precision == "fp16" else "bf16")
    prec.gemm_dtype(set(acc.peak_flops))
    prof = engine if isinstance(engine, Profile) else load_profile(engine)
    if prof.engine == "trtllm" and acc.vendor != "NVIDIA":
        from planner.errors import PlannerError

        raise PlannerError(f"engine: TensorRT-LLM runs on NVIDIA GPUs only, not on {acc.id}; use vllm or sglang")
    return Deployment(m, acc, par, prec, prof)


def memory(model: str | ModelArch, gpu: str | Accelerator, tp: int = 1, pp: int = 1, ep: int = 1,
           precision: str = "bf16", kv_dtype: str | None = None, engine: str | Profile = "vllm",
           min_kv_tokens: int = 2048, dp_attn: bool = False, **db: Any) -> MemoryPlan:
    """Per-GPU memory plan: weights, KV bytes per token, KV capacity, and whether it fits."""
    d = deployment(model, gpu, tp, pp, ep, precision, kv_dtype, engine, dp_attn=dp_attn, **db)
    return memory_plan(d.model, d.acc, d.par, d.prec, d.eff, min_kv_tokens=min_kv_tokens, engine=d.profile.engine)


def roofline(model: str | ModelArch, gpu: str | Accelerator, phase: str = "decode", batch: int = 1,
             context: int = 1024, tp: int = 1, pp: int = 1, ep: int = 1, precision: str = "bf16",
             kv_dtype: str | None = None, engine: str | Profile = "vllm", chunk: int | None = None,
             dp_attn: bool = False, **db: Any) -> StepTime:
    """Per-operator roofline of one step of ``phase`` (prefill of ``context`` tokens, or decode at it)."""
    d = deployment(model, gpu, tp, pp, ep, precision, kv_dtype, engine, dp_attn=dp_attn, **db)
    if d.model.max_context and context > d.model.max_context:
        from planner.errors import InputError

        raise InputError("context", f"at most the model's {d.model.max_context:,}-token context", context)
    shape = phase_shape(phase, batch, context, chunk)
    return step_time(d.model, d.acc, d.par, d.prec, shape, d.eff)
