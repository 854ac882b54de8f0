"""Queueing approximations that turn utilisation into waiting-time percentiles.

Waiting time in a G/G/1 queue (Kingman's formula, J.F.C. Kingman 1961):

    E[W] ≈ ρ/(1−ρ) · (c_a² + c_s²)/2 · E[S]

with ρ the utilisation, c_a the coefficient of variation of inter-arrival times (1 for
Poisson) and c_s that of service times. The tail uses the exponential form that is exact
for M/M/1, P(W > t) = ρ·exp(−ρ t / E[W]), so the q-quantile is

    W_q = E[W]/ρ · ln(ρ/(1−q))   when ρ > 1−q, else 0 (the request finds the server free).

A pool of c instances behind a least-outstanding-requests balancer behaves close to one queue
with c servers: ``pool_wait_s`` applies Allen–Cunneen's G/G/c approximation (Erlang C scaled
by (c_a² + c_s²)/2), which is Kingman's formula when c = 1.
"""

from __future__ import annotations

import numpy as np


def erlang_c(servers: int, offered):
    """Probability that an arrival waits in M/M/c with offered load a = λ/μ = c·ρ (Erlang C), by the
    Erlang-B recursion B_k = a·B_{k−1}/(k + a·B_{k−1}), C = c·B_c/(c − a·(1 − B_c)); 1 when a ≥ c.
    ``offered`` may be a numpy array."""
    a = np.asarray(offered, dtype=float)
    b = np.ones_like(a)
    for k in range(1, servers + 1):
        b = a * b / (k + a * b)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(a < servers, servers * b / (servers - a * (1.0 - b)), 1.0)
    return c if c.ndim else float(c)


def pool_wait_s(rho, service_s, servers: int, q: float, ca2: float = 1.0, cs2: float = 0.0):
    """(mean wait, q-quantile of the wait) for ``servers`` instances behind one queue (least-outstanding
    balancing) at per-instance utilisation ρ: Allen–Cunneen E[W] = C(c, cρ)·E[S]/(c(1−ρ))·(c_a²+c_s²)/2
    with the exponential tail P(W > t) = C·exp(−t·C/E[W]). With one server this is Kingman's formula and
    the M/M/1 tail. Infinite at ρ ≥ 1. Scalars or numpy arrays."""
    rho_a = np.asarray(rho, dtype=float)
    c_wait = np.asarray(erlang_c(servers, servers * rho_a), dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(rho_a < 1, c_wait * service_s / (servers * (1.0 - rho_a)) * (ca2 + cs2) / 2.0, np.inf)
        tail = np.where((c_wait > 1.0 - q) & (mean > 0),
                        mean / np.maximum(c_wait, 1e-300) * np.log(np.maximum(c_wait, 1e-300) / (1.0 - q)), 0.0)
        tail = np.where(rho_a < 1, tail, np.inf)
    if mean.ndim == 0:
        return float(mean), float(tail)
    return mean, tail


def slot_wait_s(utilisation, service_s, slots: float, q: float, ca2: float = 1.0, cs2: float = 1.0):
    """(mean wait, q-quantile) for a free running-sequence slot: ``slots`` servers (the KV or sequence cap)
    each holding a request for ``service_s`` (its whole decode), at slot utilisation u = C / C_max.

    Many-server waiting by Sakasegawa's approximation (H. Sakasegawa 1977, the M/M/c queue length
    L_q ≈ u^√(2(c+1)) / (1 − u)), scaled to G/G/c by Allen–Cunneen's (c_a² + c_s²)/2:
    P(wait) ≈ u^(√(2(c+1)) − 1), E[W] = P(wait)·S/(c(1 − u))·(c_a² + c_s²)/2, with the exponential
    tail of ``pool_wait_s``. Tends to 0 well below the cap and to infinity at it: a pool planned at
    its KV capacity is not stable. Scalars or numpy arrays."""
    u = np.asarray(utilisation, dtype=float)
    c = max(float(slots), 1.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        p_wait = np.where(u > 0, np.power(np.clip(u, 0.0, 1.0), np.sqrt(2.0 * (c + 1.0)) - 1.0), 0.0)
        mean = np.where(u < 1, p_wait * service_s / (c * (1.0 - u)) * (ca2 + cs2) / 2.0, np.inf)
        tail = np.where((p_wait > 1.0 - q) & (mean > 0),
                        mean / np.maximum(p_wait, 1e-300) * np.log(np.maximum(p_wait, 1e-300) / (1.0 - q)), 0.0)
        tail = np.where(u < 1, tail, np.inf)
    if mean.ndim == 0:
        return float(mean), float(tail)
    return mean, tail


def step_in_flight_s(busy, step_s, q: float | None = None):
    """Wait for the step already running when a request arrives: with probability ``busy`` the engine
    is mid-step and the residual of a (near-deterministic) step of length t is uniform on [0, t], so the
    mean is busy·t/2 and the q-quantile t·(1 − (1 − q)/busy) when busy > 1 − q, else 0."""
    b = np.clip(np.asarray(busy, dtype=float), 0.0, 1.0)
    t = np.asarray(step_s, dtype=float)
    if q is None:
        out = b * t / 2.0
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(b > 1.0 - q, t * (1.0 - (1.0 - q) / np.maximum(b, 1e-300)), 0.0)
    return float(out) if out.ndim == 0 else out
