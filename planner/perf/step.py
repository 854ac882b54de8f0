"""Time of one engine step: the operators of a stage, pipelined over PP stages.

With ``pp`` stages the engine splits the batch into ``m = min(pp, n_seqs)`` micro-batches
(vLLM/TensorRT-LLM keep the pipeline full with as many in-flight micro-batches as stages),
so every sequence advances once per

    step_s = pp · stage_s(shape / m) + step_overhead_s + seq_overhead_s · n_seqs

which is why PP raises throughput (more sequences per step) but not one request's latency. The two
host terms are the engine's work outside the kernels: a fixed part per step (scheduling, launching
the graph) and a part per running sequence (building its input row and block table, sampling,
detokenising, stop checks), which is why real TPOT keeps rising with the batch after the GPU time
has flattened (vLLM V1's redesign and SGLang's overlap scheduler target exactly this host time).
With data-parallel attention every rank runs its own scheduler over its 1/tp of the sequences, so
the per-sequence part is ``seq_overhead_s · n_seqs / tp``.

A speculative verify step (``planner.perf.spec_step``) passes ``decode_queries = k + 1``: its decode
part holds k + 1 queries per sequence, and the attention kernel reads each sequence's cached KV once
for all of them (FlashInfer / FlashMLA multi-query decode), so the decode attention's bytes are
divided by ``decode_queries`` (its FLOPs stay those of every query).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

import numpy as np

from planner.dtypes import Precision
from planner.hardware import Accelerator
from planner.models import ModelArch
from planner.parallel import Parallel
from planner.perf.ops import stage_ops
from planner.perf.roofline import OpTime, op_time
from planner.perf.shape import StepShape
from planner.profile import Efficiency


@dataclass(frozen=True)
class StepTime:
    """One step: per-operator timings (one stage, one micro-batch) and the totals."""

    ops: tuple[OpTime, ...]
    stage_s: float
    step_s: float
    micro_batches: float
    gemm_dtype: str
    attn_dtype: str
    pp: int = 1

    @property
    def bound(self) -> str:
        """What takes most of the step: compute, memory, communication or overhead."""
        by: dict[str, float] = defaultdict(float)
        for ot in self.ops:
            by[ot.bound] += ot.time_s
        # engine overhead per step; pipeline stages waiting on one another are not a bound of their own
        by["overhead"] += max(0.0, self.step_s - self.stage_s * self.pp)
        return max(by, key=lambda k: by[k])

    def breakdown(self) -> dict[str, float]:
        """Seconds per bound category within one stage."""
        by: dict[str, float] = defaultdict(float)
        for ot in self.ops:
            by[ot.bound] += ot.time_s
        return dict(by)


def seq_host_s(eff: Efficiency, par: Parallel, n_seqs):
    """The per-sequence part of the engine's host time in one step (module docstring):
    ``seq_overhead_s`` per running sequence, each data-parallel attention rank scheduling its own."""
    return eff.seq_overhead_s * n_seqs / par.attn_ranks


def step_time(model: ModelArch, acc: Accelerator, par: Parallel, prec: Precision, shape: StepShape,
              eff: Efficiency, decode_queries: float = 1.0) -> StepTime:
    """Time for every sequence of ``shape`` to advance one step on one instance (``decode_queries``:
    queries per decode sequence sharing one read of its KV, module docstring)."""
    supported = set(acc.peak_flops)
    gemm_dtype = prec.gemm_dtype(supported)
    attn_dtype = prec.attention_dtype(supported)
    m = np.clip(shape.n_seqs, 1.0, float(par.pp)) if par.pp > 1 else 1.0
    micro = shape.scaled(m) if par.pp > 1 else shape
    half = prec.activations if prec.activations in supported else ("bf16" if "bf16" in supported else "fp16")
    ops = stage_ops(model, par, prec, micro, gemm_dtype, attn_dtype, half_dtype=half)
    if decode_queries != 1.0:
        ops = [replace(op, bytes=op.bytes / decode_queries) if op.name == "attention_decode" else op for op in ops]
    span = par.gpus
    timed = tuple(op_time(op, acc, eff, span) for op in ops)
    stage_s = sum(t.time_s for t in timed)
    step_s = par.pp * stage_s + eff.step_overhead_s + seq_host_s(eff, par, shape.n_seqs)
    return StepTime(timed, stage_s, step_s, m, gemm_dtype, attn_dtype, par.pp)
