"""What every serving role shares: request size, operating points, memory and concurrency caps.

Three roles, one step model (``planner.perf.step``), each a small class in ``roles.py``:

- colocated: continuous batching with chunked prefill (vLLM V1, SGLang, TensorRT-LLM). In
  steady state with ``C`` sequences decoding and outputs of ``O`` tokens, ``C/O`` requests
  finish, so ``C/O`` prompts of ``I`` tokens are prefilled, per step. One step holds a
  decode part ``decode_shape(C, I + O/2)`` and that prefill share, so
  ``TPOT = t_step(C)``, output tokens/s ``= C / t_step(C)`` and requests/s ``= C/(O·t_step)``.
- decode-only (disaggregated): the same without the prefill share.
- prefill-only: batches of whole prompts up to the token budget; requests/s
  ``= k / t_prefill(k prompts)`` with ``k = max(1, budget / I)``.

``C`` is capped by KV memory (``C·(I + O/2) ≤ max_kv_tokens``, mean occupancy under paged
KV), by the engine's running-sequence cap and, colocated, by the token budget
(``C·(1 + I/O) ≤ budget``). With data-parallel attention each of the ``r = tp`` attention ranks
schedules its own sequences under its own caps (``Deployment.seq_cap``: vLLM DP engine cores,
TensorRT-LLM ``enable_attention_dp``, SGLang ``--enable-dp-attention``), so the instance's caps are
``r·max_seqs`` and ``C·(1 + I/O) ≤ r·budget``, while a prompt is chunked on one rank at ``budget``
less that rank's ``C/r`` decodes (``planner.serving.prefill_time``); KV capacity already counts
every rank's memory. At a request rate λ the operating point solves Little's law
``C = λ·O·t_step(C)``.

Speculative decoding and prefix caching (``planner.speculative``): a step then moves each decoding
sequence ``E = (1 − α^(k+1))/(1 − α)`` tokens, so the time per output token is ``τ = t_step/E``
(``step_s`` below returns τ, and TPOT = τ, tokens/s = C/τ, requests/s = C/(O·τ) keep their form);
with prefix hit ratio h a request holds ``(1 − h)·I + O/2`` KV tokens of its own on average.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy.special import ndtri

from planner.deployment import Deployment
from planner.perf.memory import MemoryPlan, memory_plan
from planner.perf.shape import decode_shape
from planner.serving.prefill_time import chunked_prefill_s, step_s
from planner.speculative import cached_tokens, new_tokens

ROLES = ("colocated", "prefill", "decode")
KV_OVERFLOW = 0.99
"""Open loop, the KV cap keeps the running requests' tokens within memory at this quantile (``caps``)."""


def seen_batch(concurrency):
    """Decode batch a request runs in when the time-average number decoding is C: with random arrivals
    a request finds the others Poisson-distributed (Palm, PASTA), so it decodes with itself plus C
    others on average, 1 + C; timed at that batch, a step is what the request's TPOT sees."""
    return np.asarray(concurrency, dtype=float) + 1.0 if isinstance(concurrency, np.ndarray) else concurrency + 1.0


@dataclass(frozen=True)
class RequestSize:
    """Representative request: mean input/output tokens, the input length at the SLO
    percentile (for TTFT tails) and the squared CV of the input lengths (``cs2``: prefill queueing, the
    TPOT tail's chunk sizes and the KV cap's room for spread)."""

    isl: float
    osl: float
    isl_tail: float | None = None
    cs2: float = 0.0
    decode_steps: float | None = None
    """Decode steps per request for the TPOT spread (harmonic mean over the bucket; default osl)."""

    @property
    def tail_isl(self) -> float:
        return self.isl_tail if self.isl_tail else self.isl


@dataclass(frozen=True)
class Point:
    """One operating point of an instance."""

    concurrency: float
    step_s: float
    tpot_s: float
    requests_per_s: float
    output_tokens_per_s: float
    prefill_s: float


@dataclass(frozen=True)
class Latency:
    """Latency at a request rate: means and percentiles (p50/p90/p99 and the SLO percentile)."""

    rate_rps: float
    utilisation: float
    concurrency: float
    ttft_s: dict[str, float]
    tpot_s: dict[str, float]
    stable: bool


@dataclass(frozen=True)
class Instance:
    """Capacity curve of one deployment in one role for one request size (base of the three roles)."""

    dep: Deployment
    size: RequestSize
    arrival_cv: float = 1.0
    grid_points: int = 24
    min_kv_tokens: int = 0
    pool: int = 1
    """Instances sharing the request stream behind one balancer (queueing as G/G/pool)."""
    open_loop: bool = True
    """Random (open-loop) arrivals: a request sees Poisson-distributed others and steps carry a Poisson
    number of prompt chunks. False for offline and closed-loop runs, where every step is alike."""
    _cache: dict = field(default_factory=dict, repr=False, compare=False)
    """Step-time memo; instances of one deployment may share it (keys carry role and size)."""

    role = "decode"

    # --- limits -------------------------------------------------------------------------
    @cached_property
    def memory(self) -> MemoryPlan:
        need = self.min_kv_tokens or int(self.size.isl + (self.size.osl if self.role != "prefill" else 1))
        d = self.dep
        return memory_plan(d.model, d.accelerator, d.parallel, d.precision, d.eff, min_kv_tokens=max(need, 1),
                           engine=d.engine)

    @property
    def fits(self) -> bool:
        return self.memory.fits

    @cached_property
    def caps(self) -> dict[str, float]:
        """Upper bounds on decode concurrency, by what imposes them (KV: a request's own tokens; the
        sequence cap of every data-parallel attention rank together, ``Deployment.seq_cap``).

        Open loop, the KV cap leaves room for the spread of what the running requests hold: C of them
        hold C·m tokens on average (m = I' + O/2) with variance C·v, v = cs²·I'² + O²/12 (the bucket's
        input lengths, and a request's place in its own decode), and an engine that admits a request
        when its prompt fits preempts one when the rest grow past the memory. The cap is the C whose
        total stays within K at the ``KV_OVERFLOW`` quantile: C·m + z·√(C·v) = K, so
        √C = (−z√v + √(z²v + 4mK))/(2m). Offline and closed-loop runs (throughput, where a preempted
        request is recomputed at little cost) keep mean occupancy, C = K/m."""
        O = self.size.osl
        m = self.fresh_isl + O / 2.0
        kv = self.memory.max_kv_tokens
        cap = kv / m
        if self.open_loop and self.role != "prefill" and cap > 1.0:
            v = float(self.size.cs2 or 0.0) * self.fresh_isl**2 + O * O / 12.0
            z = float(ndtri(KV_OVERFLOW))
            root = (-z * math.sqrt(v) + math.sqrt(z * z * v + 4.0 * m * kv)) / (2.0 * m)
            cap = max(root * root, 1.0)
        return {"kv_capacity": cap, "max_seqs": float(self.dep.seq_cap)}

    # --- speculative decoding and prefix caching (planner.speculative) ---------------------
    @property
    def tokens_per_step(self) -> float:
        """E: tokens a decoding sequence gains per step (1 without speculative decoding)."""
        spec = self.dep.settings.speculative
        return spec.tokens_per_step if spec is not None else 1.0

    @property
    def decode_positions(self) -> int:
        """Token-budget positions a decoding sequence takes per step: 1, or k + 1 when speculating."""
        spec = self.dep.settings.speculative
        return spec.verify_tokens if spec is not None else 1

    @property
    def fresh_isl(self) -> float:
        """Prompt tokens the prefill computes and the request holds in KV of its own, (1 − h)·I."""
        return float(new_tokens(self.size.isl, self.dep.settings.prefix_cache_hit))

    @property
    def cached_isl(self) -> float:
        """Prompt tokens found in the prefix cache, h·I."""
        return float(cached_tokens(self.size.isl, self.dep.settings.prefix_cache_hit))

    @cached_property
    def max_concurrency(self) -> float:
        """Mean decode concurrency the caps allow. It may be below one: a long prompt with a short
        answer keeps the instance mostly prefilling (the token budget cap C·(1 + I/O) ≤ budget)."""
        return max(0.0, min(self.caps.values()))

    @property
    def serviceable(self) -> bool:
        """At least one whole request fits in KV memory and the engine runs at least one sequence."""
        return self.caps["kv_capacity"] >= 1.0 and self.caps["max_seqs"] >= 1.0 and self.max_concurrency > 0

    @property
    def concurrency_bound(self) -> str:
        return min(self.caps, key=lambda k: self.caps[k])

    # --- step times ---------------------------------------------------------------------
    def decode_step_s(self, concurrency):
        """Pure-decode step at mean concurrency C with the mean context I + O/2, timed at the batch a
        request sees (``seen_batch``: itself and C others), per output token (step / E)."""
        batch = seen_batch(concurrency) if self.open_loop else np.maximum(concurrency, 1.0)
        return step_s(self.dep, decode_shape(batch, self.size.isl + self.size.osl / 2.0)) / self.tokens_per_step

    def step_parts(self, concurrency):
        """(pure-decode step, step that also carries a prompt chunk, share of such steps) at C.
        Roles without prompt chunks in their steps have share 0."""
        t_dec = self.decode_step_s(concurrency)
        return t_dec, t_dec, 0.0 * t_dec

    def step_s(self, concurrency):
        """Mean time per output token (= mean TPOT; the step time when not speculating) at decode
        concurrency C; scalars or numpy arrays."""
        t_dec, t_mix, share = self.step_parts(concurrency)
        return share * t_mix + (1.0 - share) * t_dec

    def tpot_tail(self, c_q, t_dec, t_mix, share, z: float):
        """TPOT at the batch quantile ``c_q`` from its step parts (colocated adds prompt chunks)."""
        return t_dec

    def batch_quantile(self, concurrency, z: float):
        """Running sequences fluctuate around their mean C like a Poisson occupancy: C + z·c_a·√C, capped."""
        c_q = np.minimum(concurrency + z * self.arrival_cv * np.sqrt(concurrency), self.max_concurrency)
        return np.maximum(c_q, concurrency)

    def tpot_quantile_s(self, concurrency, q: float):
        """q-quantile of a request's TPOT: the step at the batch quantile, plus the role's tail terms."""
        z = float(ndtri(q))
        c_q = self.batch_quantile(concurrency, z)
        return self.tpot_tail(c_q, *self.step_parts(c_q), z)

    def prefill_alone_s(self, isl: float | None = None) -> float:
        """Time to prefill one prompt on an idle instance, in budget-sized chunks."""
        n = float(isl if isl is not None else self.size.isl)
        key = ("alone", n)
        if key not in self._cache:
            self._cache[key] = float(chunked_prefill_s(self.dep, n))
        return self._cache[key]

    def prompt_step_s(self, concurrency, isl: float | None = None):
        """Time from a prompt's admission to its first token with ``concurrency`` sequences decoding."""
        return self.prefill_alone_s(isl)

    # --- curve --------------------------------------------------------------------------
    @cached_property
    def grid(self) -> tuple[Point, ...]:
        """Operating points on a geometric grid of concurrency up to the cap."""
        cmax = self.max_concurrency
        if not self.serviceable:
            return ()
        lo = min(0.02, cmax)
        pts = np.unique(np.concatenate([np.geomspace(lo, cmax, self.grid_points), [cmax]]))
        O = self.size.osl
        steps = self.step_s(pts)
        return tuple(Point(float(c), float(t), float(t), float(c / (O * t)), float(c / t), float(t))
                     for c, t in zip(pts, steps))

    @cached_property
    def max_rps(self) -> float:
        """Highest sustainable request rate, SLO aside: throughput C/(O·t(C)) rises with C, so it is
        reached at the concurrency cap."""
        if not self.serviceable:
            return 0.0
        cmax = self.max_concurrency
        return cmax / (self.size.osl * self.step_s(cmax))

    def point_at_rate(self, rate_rps: float) -> Point | None:
        """Operating point serving ``rate_rps`` (Little's law C = λ·O·t(C)), interpolated on the grid."""
        g = self.grid
        if not g or rate_rps > self.max_rps * (1 + 1e-9):
            return None
        rps = [p.requests_per_s for p in g]
        if rate_rps <= rps[0]:
            return g[0]
        for lo, hi in zip(g, g[1:]):
            if hi.requests_per_s >= rate_rps:
                w = (rate_rps - lo.requests_per_s) / max(hi.requests_per_s - lo.requests_per_s, 1e-30)
                c = lo.concurrency + w * (hi.concurrency - lo.concurrency)
                t = lo.step_s + w * (hi.step_s - lo.step_s)
                return Point(c, t, t, rate_rps, rate_rps * self.size.osl, t)
        return g[-1]

    def utilisation(self, rate_rps):
        """ρ = λ / λ_max (infinite when the instance serves nothing)."""
        return rate_rps / self.max_rps if self.max_rps else math.inf
