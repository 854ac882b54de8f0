"""Mixture-of-experts terms: expert slots per EP rank, the busiest rank's load, grouped-GEMM width.

With ``E`` routed experts on ``n`` expert-parallel ranks, T tokens and top-k routing:

- **Slots.** Each rank holds ``s = ⌈E/n⌉`` expert slots; the ``n·s − E`` spare slots hold replicas
  of hot experts (redundant experts, DeepSeek EPLB; CloudMatrix384 decode runs 256 routed experts
  plus 32 redundant and 32 shared-expert replicas on 320 dies, Zuo et al., arXiv:2506.12708 §4),
  so EP need not divide E. The weights a rank stores and reads are those of its ``s`` slots.
- **Busiest rank.** Under uniform routing a rank's load (token-expert assignments) is
  ~Binomial(T·k, 1/n), mean ``μ = T·k/n``. The expected maximum over n ranks is

      L_max = min(max(μ + √(2·μ·ln n), min(T·k, 1)), T·min(k, s))

  (balls into bins with m ≫ n·ln n balls: max load = m/n + √(2·(m/n)·ln n)·(1 + o(1)),
  Raab & Steger, "Balls into Bins — A Simple and Tight Analysis", RANDOM 1998, Theorem 1; the cap
  is physical: a token sends at most min(k, s) assignments to one rank). A grouped-GEMM MoE layer
  waits for its busiest rank, so an EP rank's time is set by ``L_max``. Uniform routing is the
  optimistic case: real routers are skewed, which redundant experts (EPLB) partly undo.
- **Grouped-GEMM width.** Grouped GEMMs tile the expert width N (the per-rank intermediate size)
  in tiles of 128 columns (CUTLASS/DeepGEMM grouped kernels, BLOCK_N = 128); a narrow expert
  leaves the last tile partly empty and fewer tiles to spread over the SMs. We take the efficiency
  ``N/(⌈N/128⌉·128) · N/(N + 128)`` of the dense GEMM's: 0.97 at N = 4096, 0.8 at N = 512, 0.5 at
  N = 128 (a prior with no fitted factor: the kernel tables in ../shared hold no grouped GEMMs).
"""

from __future__ import annotations

import math

import numpy as np

GROUPED_TILE_N = 128
"""Columns per grouped-GEMM tile (CUTLASS grouped GEMM and DeepGEMM m-grouped kernels use 128)."""


def expert_slots(n_experts: int, ep: int) -> int:
    """Expert slots per EP rank, ``⌈E/ep⌉`` (spare slots hold redundant replicas)."""
    return -(-n_experts // ep) if n_experts else 0


def redundant_slots(n_experts: int, ep: int) -> int:
    """Slots beyond the E routed experts, ``ep·⌈E/ep⌉ − E``: replicas of hot experts."""
    return ep * expert_slots(n_experts, ep) - n_experts if n_experts else 0


def busiest_rank_load(tokens, top_k: int, ranks: int, slots: int):
    """Expected token-expert assignments on the busiest of ``ranks`` EP ranks (module docstring):
    ``min(max(μ + √(2·μ·ln n), min(T·k, 1)), T·min(k, s))`` with ``μ = T·k/n``; ``T·k`` on one rank."""
    mean = tokens * top_k / ranks
    if ranks <= 1:
        return mean
    spread = np.sqrt(2.0 * mean * math.log(ranks))
    one = np.minimum(tokens * top_k, 1.0)  # some rank receives at least one assignment
    return np.minimum(np.maximum(mean + spread, one), tokens * min(top_k, slots))


def grouped_width_eff(width: float) -> float:
    """Share of the dense-GEMM efficiency a grouped GEMM keeps at expert width ``width`` columns:
    tile fill ``N/(⌈N/128⌉·128)`` times SM occupancy ``N/(N + 128)``."""
    if width <= 0:
        return 1.0
    tiles = math.ceil(width / GROUPED_TILE_N)
    return width / (tiles * GROUPED_TILE_N) * width / (width + GROUPED_TILE_N)
