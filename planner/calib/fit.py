"""Regularised (MAP) least squares with stated priors and bounds, shared by the kernel fit
(``planner.calib.kernels``), the serving fit (``planner.calib.serving``) and ``planner calibrate``.

Each factor θ_j has a prior: a mean μ_j (the profile's value before the fit), a spread σ_j and
physical bounds [lo_j, hi_j] (``PRIORS``). Fractions (efficiencies, scales) are fitted on their
own scale, u = θ, with a normal prior; scale factors (half-points, latencies, overheads) on a log
scale, u = ln θ, with a log-normal prior (σ is then a factor: σ = ln 27 means "within 27x"). The
priors are weak on purpose (fractions σ = 0.3-0.45, scale factors 27-1000x): with hundreds of rows
the data decide every direction they can see, and the prior only fixes the directions they cannot
(the unregularised hopper fit had three zero singular values, condition number ~1e13). The fit
works in standardised coordinates z_j = (u_j − u(μ_j)) / σ_j and minimises

    L(z) = Σ_i ρ(r_i(z)) + Σ_j z_j²,         r_i = ln(predicted_i / measured_i)

with ρ the soft-L1 loss ρ(r) = 2 f² (√(1 + (r/f)²) − 1) (quadratic below f, linear above: robust
to outlier rows), f = ``f_scale``. The data term is passed to ``scipy.optimize.least_squares`` as
pseudo-residuals ψ(r) = sign(r)·√ρ(r), so ψ² = ρ and the prior terms stay quadratic.

- **Held**: a factor no row reacts to (max |∂r_i/∂z_j| < ``HOLD_SENSITIVITY`` at the prior: e.g.
  ``fp4_eff_scale`` on Hopper, which has no FP4 units) is held at its prior mean and reported as
  held, never moved by the optimiser's arithmetic.
- **Standard errors** (at the optimum ẑ, from the Jacobian J of ψ over the free factors not
  sitting on a bound, n rows, p free factors, residual variance s² = Σψ²/(n − p)):

      cov_z = (JᵀJ / s² + I)⁻¹ ,     se(u_j) = σ_j · √cov_z[j, j]

  which is s²·(JᵀJ)⁻¹ when the data dominate the prior (the "+ I" is the prior's information);
  se(θ) = se(u) for fractions and θ·se(u) for log-scale factors (delta method).
- **Deterministic**: forward-difference Jacobians with a fixed step, no random starts; the same
  rows in the same order give the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

HOLD_SENSITIVITY = 1e-6
LN27 = math.log(27.0)  # a log-normal prior "within 27x" (one sd)
LN3 = math.log(3.0)  # "within 3x"
LN1000 = math.log(1000.0)
LN1_5 = math.log(1.5)  # "within 1.5x"


@dataclass(frozen=True)
class Prior:
    """Prior spread and physical bounds of one factor (the prior mean is the value before the fit)."""

    sd: float
    lo: float
    hi: float
    log: bool = False
    why: str = ""


# Physical ranges and prior spreads. Sources for the ranges:
# - GEMM: cuBLAS/TensorRT-LLM large GEMMs reach 60-90% of dense peak (aiconfigurator gemm tables,
#   achieved TFLOP/s column); nothing exceeds 100%. Half-point m: a GEMM with m = 1 row cannot reach
#   half of its large-m efficiency, so m_half >= 1 row; tiles of 128-256 rows bound it above by 4096.
# - Attention: FlashAttention-2/3 reach 35-75% of peak (Dao 2023, Shah et al. 2024, arXiv 2407.08608).
# - 8-bit/4-bit kernels keep 30-100% of the 16-bit efficiency of their 2x/4x peak (aiconfigurator tables).
# - HBM: copy kernels reach ~90% of the datasheet rate on H100 (NVIDIA nvbandwidth / STREAM figures);
#   we allow 95%. Half-point bytes: a kernel moving 10 kB already runs at a measurable rate.
# - Launch: a kernel launched alone costs 2-20 us; 1 us is the floor of a CUDA-graph replay.
# - Collectives: NCCL's ring reaches 50-90% of link bandwidth (NCCL tests busbw); latency >= 1 us.
# - Serving overheads: see planner.calib.serving.
PRIORS: dict[str, Prior] = {
    "gemm_eff_max": Prior(0.45, 0.2, 1.0, why="dense-peak fraction of large GEMMs"),
    "gemm_m_half": Prior(LN27, 1.0, 4096.0, log=True, why="rows at which a GEMM reaches half its top efficiency"),
    # Reduction depth at half efficiency (16-bit units): one output tile's fixed cost counted in k-steps;
    # the H100 BF16 tables (K = 1024 vs 8192) put it near 250. Bounds: 1 (no fixed cost) to 16384 (deeper
    # than any layer's K, where no GEMM would reach half its efficiency).
    "gemm_k_half": Prior(LN27, 1.0, 16384.0, log=True, why="reduction depth at half the top GEMM efficiency"),
    "attn_eff_max": Prior(0.45, 0.1, 1.0, why="peak fraction of flash attention"),
    "attn_m_half": Prior(LN27, 16.0, 8192.0, log=True, why="tokens per sequence at half the top efficiency"),
    "fp8_eff_scale": Prior(0.45, 0.3, 1.0, why="share of the 16-bit efficiency 8-bit kernels keep"),
    "fp4_eff_scale": Prior(0.45, 0.2, 1.0, why="share of the 16-bit efficiency 4-bit kernels keep"),
    "mem_eff_max": Prior(0.3, 0.3, 0.95, why="HBM bandwidth fraction of large copies"),
    # Power-limited clock exponent (planner.perf.power): P ∝ f·V², 1/3 with V following f, 1 at the V floor
    "power_beta": Prior(0.25, 1.0 / 3.0, 1.0, why="exponent of the tensor clock in board power per TFLOP/s"),
    "mem_bytes_half": Prior(LN1000, 1e4, 1e9, log=True, why="bytes at which a kernel reaches half its bandwidth"),
    "launch_s": Prior(LN27, 1e-6, 1e-4, log=True, why="fixed cost of a kernel launched alone"),
    "comm_eff": Prior(0.45, 0.1, 1.0, why="link-bandwidth fraction of a ring collective"),
    "comm_latency_s": Prior(LN27, 1e-6, 2e-4, log=True, why="fixed cost of one collective"),
    "kernel_overhead_s": Prior(LN27, 1e-6, 2e-5, log=True, why="cost of a kernel inside a serving step"),
    "step_overhead_s": Prior(LN27, 2e-4, 5e-3, log=True, why="engine host work per step"),
    # host work per running sequence per step: a few microseconds in a C++ runtime, tens in a Python
    # scheduler; 100 us would put 25 ms of host time into every step of a 256-sequence batch
    "seq_overhead_s": Prior(LN27, 1e-7, 1e-4, log=True, why="engine host work per running sequence per step"),
    # HTTP + tokenise + detokenise + a queue hop: a few ms (vLLM's own API-server overhead figures);
    # 30 ms is far above any engine's front end: a fit pushed there is absorbing a missing wait.
    "ttft_overhead_s": Prior(LN3, 1e-3, 0.03, log=True, why="per-request path to the first token"),
    # benchmark_serving/genai-perf runs send num_prompts = a few x the concurrency (3-10 in published
    # scripts); 1 = a single wave, 50 = effectively steady state
    "bench_waves": Prior(LN3, 1.0, 50.0, log=True, why="prompts per client in the closed-loop benchmark"),
    # an engine's MoE kernels against the dense GEMMs/copies of the kernel tables: grouped GEMMs over
    # scattered expert weights lose some of the dense rate (routing skew, tile tails, scale loads);
    # 1.5x above the dense rate or below 0.3 of it would be another mechanism, not a kernel
    "moe_eff": Prior(LN1_5, 0.3, 1.5, log=True, why="engine's MoE grouped-GEMM efficiency over dense kernels"),
}


@dataclass(frozen=True)
class FactorFit:
    """One factor after the fit: value, prior mean, standard error and what the data did to it.

    ``status`` is ``fitted``, ``held`` (no row reacts to it: kept at the prior), ``lower bound`` or
    ``upper bound`` (the data push it onto a physical bound: reported, no standard error).
    """

    name: str
    value: float
    prior: float
    prior_sd: float
    log: bool
    lo: float
    hi: float
    se: float | None
    status: str

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "value": self.value, "prior": self.prior, "prior_sd": self.prior_sd,
                "prior_scale": "log" if self.log else "linear", "lo": self.lo, "hi": self.hi, "se": self.se,
                "status": self.status}


@dataclass(frozen=True)
class MapFit:
    """Result of ``map_fit``: the factors, the rows used, the data residuals at the optimum."""

    factors: tuple[FactorFit, ...]
    n_rows: int
    residuals: np.ndarray
    condition_number: float

    @property
    def values(self) -> dict[str, float]:
        return {f.name: f.value for f in self.factors}


def soft_l1_pseudo(r: np.ndarray, f_scale: float) -> np.ndarray:
    """ψ(r) = sign(r)·√ρ(r), ρ(r) = 2f²(√(1+(r/f)²) − 1), written without cancellation as
    ρ = 2r² / (√(1+(r/f)²) + 1)."""
    rho = 2.0 * r * r / (np.sqrt(1.0 + (r / f_scale) ** 2) + 1.0)
    return np.sign(r) * np.sqrt(rho)


def _dpsi(r: np.ndarray, f_scale: float) -> np.ndarray:
    """dψ/dr = ρ'(r) / (2ψ) = |r| / (√ρ · √(1 + (r/f)²)), 1 at r = 0."""
    rho = 2.0 * r * r / (np.sqrt(1.0 + (r / f_scale) ** 2) + 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(r == 0, 1.0, np.abs(r) / np.sqrt(rho) / np.sqrt(1.0 + (r / f_scale) ** 2))


def _u(value: float, p: Prior) -> float:
    return math.log(value) if p.log else value


def _theta(u: float, p: Prior) -> float:
    return math.exp(u) if p.log else u


def map_fit(residuals: Callable[[dict[str, float]], np.ndarray], prior_means: dict[str, float],
            priors: dict[str, Prior] | None = None, f_scale: float = 0.1, step: float = 1e-3,
            max_nfev: int = 200) -> MapFit:
    """Fit the factors named in ``prior_means`` (values before the fit, clipped into their bounds).

    ``residuals(values)`` returns ln(predicted/measured) per data point for a dict of factor values.
    ``step`` is the forward-difference step in standardised units (z); ``max_nfev`` caps the
    optimiser's iterations.
    """
    from scipy.optimize import least_squares

    priors = priors or PRIORS
    names = list(prior_means)
    pri = [priors[n] for n in names]
    mu = [min(max(prior_means[n], p.lo), p.hi) for n, p in zip(names, pri)]
    if any(p.log and m <= 0 for m, p in zip(mu, pri)):
        raise ValueError("log-scale prior means must be positive")
    u0 = np.array([_u(m, p) for m, p in zip(mu, pri)])
    sd = np.array([p.sd for p in pri])
    zlo = np.array([(_u(p.lo, p) - u) / s if not (p.log and p.lo <= 0) else -np.inf
                    for p, u, s in zip(pri, u0, sd)])
    zhi = np.array([(_u(p.hi, p) - u) / s for p, u, s in zip(pri, u0, sd)])

    def values_at(z_full: np.ndarray) -> dict[str, float]:
        return {n: _theta(float(u + s * z), p) for n, u, s, z, p in zip(names, u0, sd, z_full, pri)}

    def data(z_full: np.ndarray) -> np.ndarray:
        return np.asarray(residuals(values_at(z_full)), dtype=float)

    def jac_full(z_full: np.ndarray, idx: list[int], base: np.ndarray) -> np.ndarray:
        cols = []
        for j in idx:
            h = step if z_full[j] + step <= zhi[j] else -step
            zz = z_full.copy()
            zz[j] += h
            cols.append((data(zz) - base) / h)
        return np.stack(cols, axis=1) if cols else np.zeros((len(base), 0))

    z_start = np.zeros(len(names))
    r0 = data(z_start)
    n = len(r0)
    J0 = jac_full(z_start, list(range(len(names))), r0)
    free = [j for j in range(len(names)) if np.max(np.abs(J0[:, j])) >= HOLD_SENSITIVITY]
    z_opt = z_start.copy()
    if free:
        # the optimiser works on w = z + 1 and starts 0.1 sd inside the bounds: trf sizes its first trust
        # region by |w0|, so a start at w = 0 (or on a bound) would stall it after one tiny step
        lo_f, hi_f = zlo[free] + 1.0, zhi[free] + 1.0

        def expand(wf: np.ndarray) -> np.ndarray:
            zz = z_start.copy()
            zz[free] = wf - 1.0
            return zz

        def fun(wf: np.ndarray) -> np.ndarray:
            return np.concatenate([soft_l1_pseudo(data(expand(wf)), f_scale), wf - 1.0])

        def jac(wf: np.ndarray) -> np.ndarray:
            zz = expand(wf)
            r = data(zz)
            return np.vstack([jac_full(zz, free, r) * _dpsi(r, f_scale)[:, None], np.eye(len(free))])

        w0 = np.clip(np.ones(len(free)), np.minimum(lo_f + 0.1, 1.0), np.maximum(hi_f - 0.1, 1.0))
        res = least_squares(fun, w0, jac=jac, bounds=(lo_f, hi_f), method="trf", x_scale=1.0, max_nfev=max_nfev)
        z_opt = expand(res.x)
    r_opt = data(z_opt)
    psi = soft_l1_pseudo(r_opt, f_scale)
    tol = 1e-4
    on_lo = [j in free and z_opt[j] - zlo[j] < tol for j in range(len(names))]
    on_hi = [j in free and zhi[j] - z_opt[j] < tol for j in range(len(names))]
    inner = [j for j in free if not (on_lo[j] or on_hi[j])]
    se_u: dict[int, float] = {}
    cond = float("nan")
    if inner:
        J = jac_full(z_opt, inner, r_opt) * _dpsi(r_opt, f_scale)[:, None]
        s2 = float(np.sum(psi**2) / max(n - len(inner), 1))
        sv = np.linalg.svd(J, compute_uv=False)
        cond = float(sv[0] / sv[-1]) if sv[-1] > 0 else float("inf")
        cov = np.linalg.pinv(J.T @ J / max(s2, 1e-12) + np.eye(len(inner)))  # s² floor: a perfect fit
        se_u = {j: float(sd[j] * math.sqrt(cov[k, k])) for k, j in enumerate(inner)}
    vals = values_at(z_opt)
    out = []
    for j, (name, p) in enumerate(zip(names, pri)):
        if j not in free:
            status, value = "held", mu[j]
        else:
            value = p.lo if on_lo[j] else p.hi if on_hi[j] else vals[name]
            status = "lower bound" if on_lo[j] else "upper bound" if on_hi[j] else "fitted"
        se = None
        if j in se_u:
            se = se_u[j] * value if p.log else se_u[j]
        out.append(FactorFit(name, value, mu[j], p.sd, p.log, p.lo, p.hi, se, status))
    return MapFit(tuple(out), n, r_opt, cond)
