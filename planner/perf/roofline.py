"""Time of one operator: a roofline with calibrated efficiencies, and alpha-beta communication.

Compute and memory overlap inside a kernel, so an operator takes the longer of the two:

    t_op = max(F / (P_dtype · η_c(m) · s_dtype), B / (BW · η_m(B/launches))) + launches · t_launch

with P_dtype the dense peak of the dtype the kernel runs in, BW the HBM bandwidth and η the
profile's size-dependent efficiencies (see ``planner.profile``). Communication is
alpha-beta over the link joining the group (``link_bw_bytes_per_s``: TP/EP collectives on the
scale-up link of their domain, a pipeline hand-off on scale-out once the instance spans domains):

    all-reduce (ring):  t = launches · (α + 2·(n−1)/n · S / (BW_link · η_comm))
    all-to-all:         t = launches · (α + S / (BW_link · η_comm))        (S already per GPU)
    p2p hand-off:       t = α + S / (BW_link · η_comm)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.hardware import Accelerator
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
    """Bandwidth a collective sees on the two-level topology (scale-up domain of
    ``acc.scaleup_domain`` GPUs, scale-out network between domains).

    Ranks are placed TP-first: a TP group (and the EP group carved from it) fills consecutive
    GPUs of one domain, and pipeline stages follow one another. So an all-reduce or all-to-all
    over ``group_gpus`` stays on the scale-up link whenever the group fits in a domain, however
    many domains the instance spans; only a pipeline hand-off (``p2p``) crosses to the scale-out
    network, and it does once the instance (``span_gpus`` = tp·pp) outgrows one domain (the
    slowest hand-off sets the pipeline's pace).
    """
    if collective == "p2p":
        fits = span_gpus <= acc.scaleup_domain
    else:
        fits = group_gpus <= acc.scaleup_domain
    return acc.scaleup_bw_bytes_per_s if fits else acc.scaleout_bw_bytes_per_s


def comm_time_s(op: Op, acc: Accelerator, eff: Efficiency, span_gpus: int) -> float:
    """Alpha-beta time of a communication op over the link that joins its group."""
    if op.group <= 1 or not anywhere(op.comm_bytes > 0):
        return 0.0
    bw = link_bw_bytes_per_s(acc, op.group, span_gpus, op.collective) * eff.comm_eff
    n = op.group
    if op.collective == "all_reduce":
        per = eff.comm_latency_s + 2.0 * (n - 1) / n * op.comm_bytes / bw
    else:
        per = eff.comm_latency_s + op.comm_bytes / bw
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
        eta = eff.attn_eff(op.m) if op.kind == "attention" else eff.gemm_eff(op.m)
        eta = eta * eff.dtype_scale(op.dtype)
        compute_s = op.flops / (peak * np.maximum(eta, 1e-30))
    memory_s = 0.0
    if anywhere(op.bytes > 0):
        per_launch = op.bytes / max(op.launches, 1.0)
        memory_s = op.bytes / (acc.mem_bw_bytes_per_s * np.maximum(eff.mem_eff(per_launch), 1e-30))
    per_launch_s = eff.launch_s if isolated else eff.kernel_overhead_s
    return OpTime(op, compute_s, memory_s, 0.0, op.launches * per_launch_s)
