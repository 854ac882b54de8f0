"""Queueing approximations that turn utilisation into waiting-time percentiles.

Waiting time in a G/G/1 queue (Kingman's formula, J.F.C. Kingman 1961):

    E[W] ≈ ρ/(1−ρ) · (c_a² + c_s²)/2 · E[S]

with ρ the utilisation, c_a the coefficient of variation of inter-arrival times (1 for
Poisson) and c_s that of service times. The tail uses the exponential form that is exact
for M/M/1, P(W > t) = ρ·exp(−ρ t / E[W]), so the q-quantile is

    W_q = E[W]/ρ · ln(ρ/(1−q))   when ρ > 1−q, else 0 (the request finds the server free).

Each instance is its own queue: a load balancer spreads requests over instances (random
splitting), so a pool of c instances is c G/G/1 queues rather than one M/G/c queue. That is
conservative: a shared queue (join-shortest-queue) waits less at the same utilisation.
"""

from __future__ import annotations

import math


def kingman_mean_wait_s(rho: float, mean_service_s: float, ca2: float = 1.0, cs2: float = 0.0) -> float:
    """Mean wait of a G/G/1 queue; infinite at ρ ≥ 1."""
    if rho <= 0:
        return 0.0
    if rho >= 1:
        return math.inf
    return rho / (1.0 - rho) * (ca2 + cs2) / 2.0 * mean_service_s


def wait_quantile_s(mean_wait_s: float, rho: float, q: float) -> float:
    """q-quantile of the waiting time given its mean and the probability ρ of waiting at all."""
    if rho <= 0 or mean_wait_s <= 0:
        return 0.0
    if rho >= 1 or math.isinf(mean_wait_s):
        return math.inf
    if rho <= 1.0 - q:
        return 0.0
    return mean_wait_s / rho * math.log(rho / (1.0 - q))
