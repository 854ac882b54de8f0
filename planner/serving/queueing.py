"""Queueing approximations that turn utilisation into waiting-time percentiles.

Waiting time in a G/G/1 queue (Kingman's formula, J.F.C. Kingman 1961):

    E[W] ≈ ρ/(1−ρ) · (c_a² + c_s²)/2 · E[S]

with ρ the utilisation, c_a the coefficient of variation of inter-arrival times (1 for
Poisson) and c_s that of service times. The tail uses the exponential form that is exact
for M/M/1, P(W > t) = ρ·exp(−ρ t / E[W]), so the q-quantile is

    W_q = E[W]/ρ · ln(ρ/(1−q))   when ρ > 1−q, else 0 (the request finds the server free).

For c servers (prefill pools), Allen–Cunneen scales the M/M/c wait by (c_a² + c_s²)/2:
E[W] ≈ C(c, cρ)/(c·μ − λ) · (c_a² + c_s²)/2 with C the Erlang-C probability of waiting.
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


def erlang_c(servers: int, offered: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load a = λ/μ (Erlang C)."""
    c = servers
    if offered <= 0:
        return 0.0
    if offered >= c:
        return 1.0
    term = 1.0
    total = 1.0
    for k in range(1, c):
        term *= offered / k
        total += term
    term *= offered / c
    last = term * c / (c - offered)
    return last / (total + last)


def allen_cunneen_mean_wait_s(servers: int, arrival_rps: float, mean_service_s: float, ca2: float = 1.0,
                              cs2: float = 0.0) -> tuple[float, float]:
    """(mean wait, probability of waiting) of a G/G/c queue by the Allen–Cunneen approximation."""
    mu = 1.0 / mean_service_s
    offered = arrival_rps / mu
    if offered >= servers:
        return math.inf, 1.0
    pw = erlang_c(servers, offered)
    return pw / (servers * mu - arrival_rps) * (ca2 + cs2) / 2.0, pw
