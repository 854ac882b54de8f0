"""Collectives on a two-level topology: scale-up domains of ``D`` GPUs joined by a scale-out network.

A group of ``n`` GPUs is placed on consecutive GPUs (TP-first), so it spans ``G = ⌈n/D⌉`` domains
with ``d = min(n, D)`` GPUs in each. ``B_up`` is a GPU's scale-up bandwidth, ``B_out`` its own
scale-out NIC bandwidth (one NIC per GPU, as in HGX, NVL72 and CloudMatrix nodes), ``α`` the
latency of one collective and ``η`` the profile's link efficiency (NCCL bus bandwidth share).

- **All-reduce** of ``S`` bytes: inside one domain a ring, ``α + 2·(n−1)/n · S/(η·B_up)``
  (Patarasuk & Yuan, JPDC 2009). Across domains the hierarchical scheme (reduce-scatter inside the
  domain, all-reduce of the ``S/d`` shard across domains over each GPU's NIC, all-gather inside):
  ``2α + 2⌈log₂G⌉·h + 2·(d−1)/d · S/(η·B_up) + 2·(G−1)/G · (S/d)/(η·B_out)`` (NCCL's tree/ring over nodes and
  Horovod's hierarchical all-reduce do this; Jia et al., arXiv:1807.11205 §3.3).
  Where the accelerator's link kind has measured curves covering ``d`` GPUs
  (``planner.perf.allreduce_curves``: interpolated inside the measured sizes, alpha-beta outside),
  the in-domain part, ``α + 2·(n−1)/n · S/(η·B_up)`` for one domain or the reduce-scatter plus
  all-gather ``α + 2·(d−1)/d · S/(η·B_up)`` of the hierarchical scheme, is the measured curve
  ``t_meas(S, d)``; the scale-out part keeps alpha-beta:
  ``t_meas(S, d) + 2⌈log₂G⌉·h + 2·(G−1)/G · (S/d)/(η·B_out)``.
- **All-to-all** where each GPU sends ``S`` bytes spread evenly over the other ``n − 1``: the share
  for its own domain ``(d−1)/(n−1)`` rides the scale-up link, the rest ``(n−d)/(n−1)`` its NIC,
  at once: ``α + h + max(S·(d−1)/(n−1)/(η·B_up), S·(n−d)/(n−1)/(η·B_out))`` (DeepEP's internode
  kernels overlap NVLink and RDMA this way).
- **Point-to-point** hand-off: ``α + S/(η·B)`` over the scale-up link when the instance
  (``span`` GPUs) fits one domain, else over scale-out (the slowest hand-off sets the pace).

Crossing the scale-out network costs latency of its own, which decode-sized messages (tens of KB)
feel far more than bandwidth: NCCL's cost model prices a network step of its LL-protocol tree at
``h = 5.0 µs`` (``hwLat[NET][TREE][LL]``) and a hierarchical all-reduce over ``G`` nodes at
``2·log₂G`` such steps (reduce up the tree and broadcast down), against 0.6 µs per NVLink step
(NVIDIA/nccl ``src/graph/tuning.cc``, ``ncclTopoTuneModel``: tree latency
``base + 2·((ppn − 1)·intra + log₂(nNodes)·inter)``). So the cross-domain part of an all-reduce
adds ``2·⌈log₂G⌉·h`` (``h`` below), and an all-to-all or hand-off that leaves the domain
adds one network step ``h``. For 64 GPUs in 8 domains that is 30 µs per all-reduce, which over
DeepSeek-V3's 122 per decode step is ~3.7 ms.
"""

from __future__ import annotations

import numpy as np

from planner.perf.allreduce_curves import LinkCurves

NET_STEP_S = 5.0e-6
"""Latency of one scale-out network step of a collective (NCCL's LL tree ``hwLat`` for NET, module docstring)."""


def net_steps_s(domains_spanned: int) -> float:
    """Network latency of a hierarchical all-reduce across ``G`` domains: ``2·⌈log₂G⌉`` steps of
    ``NET_STEP_S`` (0 inside one domain)."""
    if domains_spanned <= 1:
        return 0.0
    return 2.0 * float(np.ceil(np.log2(domains_spanned))) * NET_STEP_S


def domains(group: int, domain: int) -> tuple[int, int]:
    """(G domains the group spans, d GPUs of it in each) when placed on consecutive GPUs."""
    d = max(1, min(group, domain))
    return -(-group // d), d


def all_reduce_s(nbytes, group: int, domain: int, up_bw: float, out_bw: float, alpha_s: float,
                 curves: LinkCurves | None = None):
    """One all-reduce of ``nbytes`` over ``group`` GPUs (module docstring); bandwidths already × η.
    ``curves``: the measured all-reduce curves of the scale-up link, used for the in-domain part when
    they cover ``d`` GPUs (else alpha-beta)."""
    g, d = domains(group, domain)
    if curves is not None and d > 1 and curves.covers(d):
        inner = curves.time_s(nbytes, d, up_bw)
        if g == 1:
            return inner
        return inner + net_steps_s(g) + 2.0 * (g - 1) / g * (nbytes / d) / out_bw
    if g == 1:
        return alpha_s + 2.0 * (group - 1) / group * nbytes / up_bw
    intra = 2.0 * (d - 1) / d * nbytes / up_bw
    inter = 2.0 * (g - 1) / g * (nbytes / d) / out_bw
    return 2.0 * alpha_s + net_steps_s(g) + intra + inter


def all_to_all_s(nbytes, group: int, domain: int, up_bw: float, out_bw: float, alpha_s: float):
    """One all-to-all in which each GPU sends ``nbytes`` to the others (module docstring)."""
    g, d = domains(group, domain)
    if g == 1 or group <= 1:
        return alpha_s + nbytes / up_bw
    intra = nbytes * (d - 1) / (group - 1) / up_bw
    inter = nbytes * (group - d) / (group - 1) / out_bw
    return alpha_s + NET_STEP_S + np.maximum(intra, inter)


def p2p_s(nbytes, span: int, domain: int, up_bw: float, out_bw: float, alpha_s: float):
    """One pipeline hand-off of ``nbytes``: scale-up inside a domain, scale-out once ``span`` exceeds it."""
    if span <= domain:
        return alpha_s + nbytes / up_bw
    return alpha_s + NET_STEP_S + nbytes / out_bw
