"""Single kernels as the roofline sees them: GEMM, context and generation attention, all-reduce.

These build the same ``Op`` values the step model uses and time them with the same
``op_time``, so comparing them with measured kernel tables (aiconfigurator, Vidur) checks
the code that predicts serving, not a copy of it.
"""

from __future__ import annotations

from planner.dtypes import BYTES_PER_ELEMENT
from planner.hardware import Accelerator
from planner.perf.ops import Op
from planner.perf.roofline import op_time
from planner.profile import Efficiency

# aiconfigurator's gemm_dtype names -> (weight dtype, matrix-unit dtype preference)
GEMM_MODES: dict[str, tuple[str, tuple[str, ...]]] = {
    "bfloat16": ("bf16", ("bf16",)),
    "float16": ("fp16", ("fp16",)),
    "fp8": ("fp8", ("fp8", "bf16")),
    "fp8_block": ("fp8", ("fp8", "bf16")),
    "nvfp4": ("fp4", ("fp4", "fp8", "bf16")),
    "int8_wo": ("int8", ("bf16",)),
    "int4_wo": ("int4", ("bf16",)),
    "sq": ("int8", ("int8", "bf16")),
}
_ATTN_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "fp8": "fp8"}


def _dtype_for(acc: Accelerator, prefs: tuple[str, ...]) -> str:
    for d in prefs:
        if acc.supports(d):
            return d
    return "bf16" if acc.supports("bf16") else "fp16"


def gemm_s(acc: Accelerator, eff: Efficiency, m: int, n: int, k: int, mode: str = "bfloat16") -> float:
    """Time of an (m×k)·(k×n) GEMM: weights k·n at the weight dtype, activations 16-bit."""
    wdt, prefs = GEMM_MODES[mode]
    dtype = _dtype_for(acc, prefs)
    nbytes = k * n * BYTES_PER_ELEMENT[wdt] + m * (k + n) * 2.0
    return op_time(Op("gemm", "gemm", 2.0 * m * n * k, nbytes, dtype, m=m), acc, eff, isolated=True).time_s


def context_attention_s(acc: Accelerator, eff: Efficiency, batch: int, isl: int, heads: int, kv_heads: int,
                        head_dim: int, dtype: str = "bfloat16") -> float:
    """Causal self-attention over a fresh prompt: ``4·b·n_q·d·isl(isl+1)/2`` FLOPs."""
    cdt = _dtype_for(acc, (_ATTN_DTYPES.get(dtype, "bf16"), "bf16"))
    flops = 4.0 * batch * heads * head_dim * isl * (isl + 1) / 2
    nbytes = batch * isl * (2 * heads + 2 * kv_heads) * head_dim * 2.0
    return op_time(Op("attn", "attention", flops, nbytes, cdt, m=isl), acc, eff, isolated=True).time_s


def generation_attention_s(acc: Accelerator, eff: Efficiency, batch: int, kv_len: int, heads: int,
                           kv_heads: int, head_dim: int, kv_dtype: str = "bfloat16") -> float:
    """One decode step of attention: reads ``b·L·2·n_kv·d`` cached elements."""
    kvb = 1.0 if kv_dtype == "fp8" else 2.0
    flops = 4.0 * batch * heads * head_dim * kv_len
    nbytes = batch * kv_len * 2 * kv_heads * head_dim * kvb + batch * 2 * heads * head_dim * 2.0
    cdt = "fp8" if kv_dtype == "fp8" and acc.supports("fp8") else "bf16"
    return op_time(Op("attn", "attention", flops, nbytes, cdt, m=kv_len), acc, eff, isolated=True).time_s


def all_reduce_s(acc: Accelerator, eff: Efficiency, gpus: int, message_bytes: float) -> float:
    """Ring all-reduce of ``message_bytes`` over ``gpus`` GPUs of one scale-up domain."""
    op = Op("all_reduce", "comm", 0.0, 0.0, "bf16", comm_bytes=message_bytes, group=gpus, collective="all_reduce")
    return op_time(op, acc, eff, span_gpus=gpus, isolated=True).time_s
