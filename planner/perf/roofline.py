"""Time of one operator: a roofline with calibrated efficiencies, and alpha-beta communication.

Compute and memory overlap inside a kernel, so an operator takes the longer of the two:

    t_op = max(F / (P_dtype · η_c(m) · s_dtype), B / (BW · η_m(B/launches))) + launches · t_launch

with P_dtype the dense peak of the dtype the kernel runs in, BW the HBM bandwidth and η the
profile's size-dependent efficiencies (see ``planner.profile``). Communication is
alpha-beta on the two-level topology (``planner.perf.collectives``): inside one scale-up domain

    all-reduce (ring):  t = launches · (α + 2·(n−1)/n · S / (BW_link · η_comm))
    all-to-all:         t = launches · (α + S / (BW_link · η_comm))        (S already per GPU)
    p2p hand-off:       t = α + S / (BW_link · η_comm)

and, for groups spanning domains, hierarchical all-reduce and an all-to-all split between the
scale-up link and each GPU's scale-out NIC. An all-reduce on an accelerator whose
``scaleup_link_kind`` has measured curves (``planner.perf.allreduce_curves``) takes its in-domain
part from them (interpolated inside the measured sizes, alpha-beta outside) unless the profile
sets ``comm_curves: 0`` (the ``ideal`` profile). ``eff_scale`` (narrow grouped GEMMs) scales η_c.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.hardware import Accelerator
from planner.perf.allreduce_curves import link_curves
from planner.perf.collectives import all_reduce_s, all_to_all_s, p2p_s
from planner.perf.ops import Op
from planner.perf.shape import anywhere
from planner.profile import Efficiency


@dataclass(frozen=True)
class OpTime:
    """Timing of one operator: components and what bounds it."""

    op: Op
    compute_s: float
    memory_s: float
    comm_s: float
    overhead_s: float

    @property
    def time_s(self) -> float:
        return np.maximum(self.compute_s, self.memory_s) + self.comm_s + self.overhead_s

    @property
    def bound(self) -> str:
        if self.comm_s > max(self.compute_s, self.memory_s):
            return "communication"
        if self.compute_s == 0 and self.memory_s == 0:
            return "overhead"
        return "compute" if self.compute_s >= self.memory_s else "memory"


def link_bw_bytes_per_s(acc: Accelerator, group_gpus: int, span_gpus: int, collective: str = "all_reduce") -> float:
    """Bandwidth of the slowest level a collective crosses on the two-level topology (scale-up
    domain of ``acc.scaleup_domain`` GPUs, scale-out network between domains).

    Ranks are placed TP-first: a TP group (and the EP group carved from it) fills consecutive
    GPUs, so an all-reduce or all-to-all stays on the scale-up link whenever the group fits in a
    domain; a pipeline hand-off (``p2p``) crosses to the scale-out network once the instance
    (``span_gpus`` = tp·pp) outgrows one domain. ``comm_time_s`` times the levels
    (``planner.perf.collectives``).
    """
    if collective == "p2p":
        fits = span_gpus <= acc.scaleup_domain
    else:
        fits = group_gpus <= acc.scaleup_domain
    return acc.scaleup_bw_bytes_per_s if fits else acc.scaleout_bw_bytes_per_s


def comm_time_s(op: Op, acc: Accelerator, eff: Efficiency, span_gpus: int) -> float:
    """Time of a communication op on the two-level topology (``planner.perf.collectives``): alpha-beta,
    with the measured all-reduce curves of the accelerator's link kind in-domain where they exist."""
    if op.group <= 1 or not anywhere(op.comm_bytes > 0):
        return 0.0
    up = acc.scaleup_bw_bytes_per_s * eff.comm_eff
    out = acc.scaleout_bw_bytes_per_s * eff.comm_eff
    dom, alpha = acc.scaleup_domain, eff.comm_latency_s
    if op.collective == "all_reduce":
        curves = link_curves(acc.scaleup_link_kind) if eff.comm_curves else None
        per = all_reduce_s(op.comm_bytes, op.group, dom, up, out, alpha, curves)
    elif op.collective == "all_to_all":
        per = all_to_all_s(op.comm_bytes, op.group, dom, up, out, alpha)
    else:
        per = p2p_s(op.comm_bytes, span_gpus, dom, up, out, alpha)
    return op.launches * per


def op_time(op: Op, acc: Accelerator, eff: Efficiency, span_gpus: int = 1, isolated: bool = False) -> OpTime:
    """Roofline time of ``op`` on ``acc`` with efficiencies ``eff``; ``isolated`` times a kernel launched
    alone (kernel benchmarks: ``launch_s`` per launch) rather than inside a serving step."""
    if op.kind == "comm":
        return OpTime(op, 0.0, 0.0, comm_time_s(op, acc, eff, span_gpus), 0.0)
    # (communication latency alpha already covers the launch of a collective)
    compute_s = 0.0
    if anywhere(op.flops > 0):
        peak = acc.peak_flops_for(op.dtype)
        if op.kind == "attention":
            eta = eff.attn_eff(op.m)
        else:
            base = acc.peak_flops.get("bf16") or acc.peak_flops.get("fp16") or peak
            eta = eff.gemm_eff(op.m, op.k, peak / base)
        eta = eta * eff.dtype_scale(op.dtype) * op.eff_scale * eff.compute_clock(acc.watts_per_tflop)
        if op.grouped:
            eta = eta * eff.moe_eff
        compute_s = op.flops / (peak * np.maximum(eta, 1e-30))
    memory_s = 0.0
    if anywhere(op.bytes > 0):
        per_launch = op.bytes / max(op.launches, 1.0)
        mem = eff.mem_eff(per_launch) * (eff.moe_eff if op.grouped else 1.0)
        memory_s = op.bytes / (acc.mem_bw_bytes_per_s * np.maximum(mem, 1e-30))
    per_launch_s = eff.launch_s if isolated else eff.kernel_overhead_s
    return OpTime(op, compute_s, memory_s, 0.0, op.launches * per_launch_s)
