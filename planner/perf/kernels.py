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


def gemm_op(acc: Accelerator, m: int, n: int, k: int, mode: str = "bfloat16") -> Op:
    """An (m×k)·(k×n) GEMM: ``2·m·n·k`` FLOPs; weights ``k·n`` at the weight dtype plus 16-bit
    activations ``m·(k + n)·2`` bytes."""
    wdt, prefs = GEMM_MODES[mode]
    dtype = _dtype_for(acc, prefs)
    nbytes = k * n * BYTES_PER_ELEMENT[wdt] + m * (k + n) * 2.0
    return Op("gemm", "gemm", 2.0 * m * n * k, nbytes, dtype, m=m, k=k)


def context_attention_op(acc: Accelerator, batch: int, isl: int, heads: int, kv_heads: int, head_dim: int,
                         dtype: str = "bfloat16") -> Op:
    """Causal self-attention over a fresh prompt: ``4·b·n_q·d·isl(isl+1)/2`` FLOPs, Q/K/V/O
    ``b·isl·(2·n_q + 2·n_kv)·d·2`` bytes."""
    cdt = _dtype_for(acc, (_ATTN_DTYPES.get(dtype, "bf16"), "bf16"))
    flops = 4.0 * batch * heads * head_dim * isl * (isl + 1) / 2
    nbytes = batch * isl * (2 * heads + 2 * kv_heads) * head_dim * 2.0
    return Op("attn", "attention", flops, nbytes, cdt, m=isl)


def generation_attention_op(acc: Accelerator, batch: int, kv_len: int, heads: int, kv_heads: int, head_dim: int,
                            kv_dtype: str = "bfloat16") -> Op:
    """One decode step of attention: reads ``b·L·2·n_kv·d`` cached elements (1 byte for fp8, else 2)
    plus 16-bit Q and O, ``b·2·n_q·d·2`` bytes; ``4·b·n_q·d·L`` FLOPs."""
    kvb = 1.0 if kv_dtype == "fp8" else 2.0
    flops = 4.0 * batch * heads * head_dim * kv_len
    nbytes = batch * kv_len * 2 * kv_heads * head_dim * kvb + batch * 2 * heads * head_dim * 2.0
    cdt = "fp8" if kv_dtype == "fp8" and acc.supports("fp8") else "bf16"
    return Op("attn", "attention", flops, nbytes, cdt, m=kv_len)


def all_reduce_op(gpus: int, message_bytes: float) -> Op:
    """An all-reduce of ``message_bytes`` over ``gpus`` GPUs."""
    return Op("all_reduce", "comm", 0.0, 0.0, "bf16", comm_bytes=message_bytes, group=gpus, collective="all_reduce")


def gemm_s(acc: Accelerator, eff: Efficiency, m: int, n: int, k: int, mode: str = "bfloat16") -> float:
    """Time of an (m×k)·(k×n) GEMM (``gemm_op``) launched alone."""
    return op_time(gemm_op(acc, m, n, k, mode), acc, eff, isolated=True).time_s


def context_attention_s(acc: Accelerator, eff: Efficiency, batch: int, isl: int, heads: int, kv_heads: int,
                        head_dim: int, dtype: str = "bfloat16") -> float:
    """Time of causal prompt attention (``context_attention_op``) launched alone."""
    op = context_attention_op(acc, batch, isl, heads, kv_heads, head_dim, dtype)
    return op_time(op, acc, eff, isolated=True).time_s


def generation_attention_s(acc: Accelerator, eff: Efficiency, batch: int, kv_len: int, heads: int,
                           kv_heads: int, head_dim: int, kv_dtype: str = "bfloat16") -> float:
    """Time of one decode step of attention (``generation_attention_op``) launched alone."""
    op = generation_attention_op(acc, batch, kv_len, heads, kv_heads, head_dim, kv_dtype)
    return op_time(op, acc, eff, isolated=True).time_s


def all_reduce_s(acc: Accelerator, eff: Efficiency, gpus: int, message_bytes: float) -> float:
    """All-reduce of ``message_bytes`` over ``gpus`` GPUs of one scale-up domain."""
    return op_time(all_reduce_op(gpus, message_bytes), acc, eff, span_gpus=gpus, isolated=True).time_s


def implied_peak_fraction(op: Op, acc: Accelerator, measured_s: float, span_gpus: int = 1) -> float:
    """The largest share of a datasheet peak that a measured time implies for ``op``:

        max(F / (P_dtype · t), B / (BW_HBM · t))                 compute and memory kernels
        2·(n − 1)/n · S / (BW_link · t)                          ring all-reduce (bus bandwidth)

    Above 1 the measurement (or our reading of its arguments) is impossible on that hardware.
    """
    from planner.perf.roofline import link_bw_bytes_per_s

    if op.kind == "comm":
        n = max(op.group, 1)
        if n <= 1:
            return 0.0
        factor = 2.0 * (n - 1) / n if op.collective == "all_reduce" else 1.0
        return factor * op.comm_bytes / (link_bw_bytes_per_s(acc, n, span_gpus, op.collective) * measured_s)
    frac = op.bytes / (acc.mem_bw_bytes_per_s * measured_s) if op.bytes else 0.0
    if op.flops:
        frac = max(frac, op.flops / (acc.peak_flops_for(op.dtype) * measured_s))
    return float(frac)
