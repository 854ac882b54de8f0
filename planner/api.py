"""Library entry points that take names or objects and return plain values.

The public facade: the CLI, notebooks and spreadsheets call these. Nothing below the CLI imports
this module; the layers import ``planner.deployment`` and each other directly.
"""

from __future__ import annotations

from typing import Any

from planner.checks import one_of, whole
from planner.deployment import Deployment, make_deployment
from planner.errors import InputError
from planner.hardware import Accelerator, HardwareDB
from planner.models import ModelArch, ModelDB
from planner.perf.memory import MemoryPlan, memory_plan
from planner.perf.shape import phase_shape
from planner.perf.step import StepTime, step_time
from planner.profile import EngineSettings, Profile

__all__ = ["Deployment", "deployment", "memory", "roofline"]


def deployment(model: str | ModelArch, accelerator: str | Accelerator, tp: int = 1, pp: int = 1, ep: int = 1,
               precision: str = "bf16", kv_dtype: str | None = None, engine: str | Profile = "vllm",
               hardware_db: HardwareDB | None = None, model_db: ModelDB | None = None,
               dp_attn: bool = False, settings: EngineSettings | None = None) -> Deployment:
    """Resolve names and check that the model can be split this way on this accelerator."""
    return make_deployment(model, accelerator, tp, pp, ep, precision, kv_dtype, engine, hardware_db, model_db,
                           dp_attn, settings)


def memory(model: str | ModelArch, accelerator: str | Accelerator, tp: int = 1, pp: int = 1, ep: int = 1,
           precision: str = "bf16", kv_dtype: str | None = None, engine: str | Profile = "vllm",
           min_kv_tokens: int = 2048, dp_attn: bool = False, settings: EngineSettings | None = None,
           **db: Any) -> MemoryPlan:
    """Per-GPU memory plan: weights, KV bytes per token, KV capacity, and whether it fits."""
    min_kv_tokens = whole(min_kv_tokens, "min_kv_tokens", minimum=1)
    d = deployment(model, accelerator, tp, pp, ep, precision, kv_dtype, engine, dp_attn=dp_attn, settings=settings,
                   **db)
    return memory_plan(d.model, d.accelerator, d.parallel, d.precision, d.eff, min_kv_tokens=min_kv_tokens,
                       engine=d.engine)


def roofline(model: str | ModelArch, accelerator: str | Accelerator, phase: str = "decode", batch: int = 1,
             context: int = 1024, tp: int = 1, pp: int = 1, ep: int = 1, precision: str = "bf16",
             kv_dtype: str | None = None, engine: str | Profile = "vllm", chunk: int | None = None,
             dp_attn: bool = False, settings: EngineSettings | None = None, **db: Any) -> StepTime:
    """Per-operator roofline of one step of ``phase`` (prefill of ``context`` tokens, or decode at it)."""
    phase = one_of(phase, "phase", ("prefill", "decode"))
    batch, context = whole(batch, "batch", minimum=1), whole(context, "context", minimum=1)
    chunk = None if chunk is None else whole(chunk, "chunk", minimum=1)
    d = deployment(model, accelerator, tp, pp, ep, precision, kv_dtype, engine, dp_attn=dp_attn, settings=settings,
                   **db)
    if d.model.max_context and context > d.model.max_context:
        raise InputError("context", f"at most the model's {d.model.max_context:,}-token context", context)
    shape = phase_shape(phase, batch, context, chunk)
    return step_time(d.model, d.accelerator, d.parallel, d.precision, shape, d.eff)


def roofline_rows(st: StepTime, phase: str, batch: int, context: int,
                  chunk: int | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-operator rows (FLOPs, bytes, intensity, bound, time) and the step summary, as plain data."""
    rows = [{
        "op": t.op.name, "kind": t.op.kind, "dtype": t.op.dtype, "flops": t.op.flops, "bytes": t.op.bytes,
        "comm_bytes": t.op.comm_bytes * t.op.launches, "intensity": t.op.intensity if t.op.bytes else None,
        "bound": t.bound, "time_s": t.time_s,
    } for t in st.ops]
    tokens = batch * (min(chunk or context, context) if phase == "prefill" else 1)
    summary = {"phase": phase, "batch": batch, "context": context, "gemm_dtype": st.gemm_dtype,
               "attention_dtype": st.attn_dtype, "stage_s": st.stage_s, "step_s": st.step_s,
               "micro_batches": st.micro_batches, "bound": st.bound, "tokens_per_s": tokens / st.step_s}
    return rows, summary
