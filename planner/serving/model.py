"""Analytic serving model of one instance: throughput and latency for a request size.

Three roles, one step model (``planner.perf.step``):

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
(``C·(1 + I/O) ≤ budget``). At a request rate λ the operating point solves Little's law
``C = λ·O·t_step(C)``; TTFT adds queueing (``planner.serving.queueing``) to the prefill
service time. Operating points are evaluated on a geometric grid of ``C`` and interpolated,
so a whole capacity curve costs a few dozen step evaluations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy.special import ndtri

from planner.api import Deployment
from planner.perf.memory import MemoryPlan, memory_plan
from planner.perf.shape import decode_shape, prefill_shape, prompt_share_shape
from planner.perf.step import step_time
from planner.serving.queueing import pool_wait_s

ROLES = ("colocated", "prefill", "decode")


@dataclass(frozen=True)
class RequestSize:
    """Representative request: mean input/output tokens, the input length at the SLO
    percentile (for TTFT tails) and the squared CV of prefill work (queueing)."""

    isl: float
    osl: float
    isl_tail: float | None = None
    cs2: float = 0.0

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
class InstanceModel:
    """Capacity curve of one deployment in one role for one request size."""

    dep: Deployment
    role: str
    size: RequestSize
    arrival_cv: float = 1.0
    grid_points: int = 24
    min_kv_tokens: int = 0
    pool: int = 1
    """Instances sharing the request stream behind one balancer (queueing as G/G/pool)."""
    _cache: dict = field(default_factory=dict, repr=False, compare=False)
    """Step-time memo; instances of one deployment may share it (keys carry role and size)."""

    # --- limits -------------------------------------------------------------------------
    @cached_property
    def memory(self) -> MemoryPlan:
        need = self.min_kv_tokens or int(self.size.isl + (self.size.osl if self.role != "prefill" else 1))
        d = self.dep
        return memory_plan(d.model, d.acc, d.par, d.prec, d.eff, min_kv_tokens=max(need, 1), engine=d.profile.engine)

    @property
    def fits(self) -> bool:
        return self.memory.fits

    @cached_property
    def caps(self) -> dict[str, float]:
        """Upper bounds on decode concurrency, by what imposes them."""
        eff = self.dep.eff
        I, O = self.size.isl, self.size.osl
        caps = {"kv_capacity": self.memory.max_kv_tokens / (I + O / 2.0), "max_seqs": eff.max_seqs}
        if self.role == "colocated":
            caps["token_budget"] = eff.token_budget / (1.0 + I / O)
        return caps

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
    def step_parts(self, concurrency):
        """(pure-decode step time, time of a step that also carries a prompt chunk, share of steps
        that carry one) at decode concurrency C; scalars or numpy arrays.

        C/O prompts start per step, each in ⌈I/(budget − C)⌉ chunks. Steps that carry a chunk are
        compute-heavier than pure-decode steps, and step time is convex in the tokens it holds (max
        of a memory floor and linear compute), so the two kinds of step are timed apart (Jensen's
        inequality). Decode-only instances have no chunk steps (share 0).
        """
        vector = isinstance(concurrency, np.ndarray)
        key = None if vector else ("parts", self.role, self.size.isl, self.size.osl, round(float(concurrency), 6))
        if key is not None and key in self._cache:
            return self._cache[key]
        d = self.dep
        I, O = self.size.isl, self.size.osl
        decode = decode_shape(concurrency, I + O / 2.0)
        t_dec = step_time(d.model, d.acc, d.par, d.prec, decode, d.eff).step_s
        t_mix, share = t_dec, 0.0 * t_dec
        if self.role == "colocated":
            chunks = np.ceil(I / np.maximum(d.eff.token_budget - concurrency, 1.0))
            share = np.minimum(1.0, concurrency / O * chunks)
            mixed = decode + prompt_share_shape(concurrency / O / share, I)
            t_mix = step_time(d.model, d.acc, d.par, d.prec, mixed, d.eff).step_s
        out = (t_dec, t_mix, share) if vector else (float(t_dec), float(t_mix), float(share))
        if key is not None:
            self._cache[key] = out
        return out

    def step_s(self, concurrency):
        """Mean step time (= mean TPOT) at decode concurrency C: the share-weighted mix of the two
        kinds of step. ``concurrency`` may be a numpy array (a whole capacity grid in one call)."""
        t_dec, t_mix, share = self.step_parts(concurrency)
        return share * t_mix + (1.0 - share) * t_dec

    def _tpot_tail(self, c_q, t_dec, t_mix, share, z: float):
        """TPOT at batch c_q from its step parts, with the Binomial prompt-chunk term (see below)."""
        if self.role != "colocated":
            return t_dec
        n = max(float(round(self.size.osl)), 1.0)
        p = np.clip(share, 0.0, 1.0)
        # Binomial(n, p) quantile by its normal approximation with continuity correction, within [0, n]
        x_q = np.clip(np.ceil(n * p + z * np.sqrt(n * p * (1.0 - p)) - 0.5), 0.0, n)
        return t_dec + (t_mix - t_dec) * x_q / n

    def _batch_quantile(self, concurrency, z: float):
        c_q = np.minimum(concurrency + z * self.arrival_cv * np.sqrt(concurrency), self.max_concurrency)
        return np.maximum(c_q, concurrency)

    def tpot_quantile_s(self, concurrency, q: float):
        """q-quantile of a request's TPOT from two sources of spread:

        - the batch it decodes in: with random arrivals the number of running sequences fluctuates
          around its mean C like a Poisson occupancy, C_q = C + z_q·c_a·√C (capped);
        - colocated, the steps that also carry a prompt chunk: over its O decode steps their number
          is Binomial(O, share), so TPOT_q = t_dec(C_q) + (t_mix(C_q) − t_dec(C_q))·X_q / O.
        """
        z = float(ndtri(q))
        c_q = self._batch_quantile(concurrency, z)
        return self._tpot_tail(c_q, *self.step_parts(c_q), z)

    def prefill_alone_s(self, isl: float | None = None) -> float:
        """Time to prefill one prompt on an idle instance, in budget-sized chunks."""
        d = self.dep
        n = float(isl if isl is not None else self.size.isl)
        hit = self._cache.get(("alone", n))
        if hit is not None:
            return hit
        budget = d.eff.token_budget
        total, done = 0.0, 0.0
        while done < n:
            chunk = min(budget, n - done)
            shape = prefill_shape(1, chunk, past=done, last_chunk=done + chunk >= n)
            total += step_time(d.model, d.acc, d.par, d.prec, shape, d.eff).step_s
            done += chunk
        self._cache[("alone", n)] = float(total)
        return float(total)

    @cached_property
    def prefill_batch(self) -> float:
        """Prompts per prefill-only step: as many whole prompts as fit the token budget."""
        return max(1.0, math.floor(self.dep.eff.token_budget / self.size.isl))

    @cached_property
    def prefill_batch_s(self) -> float:
        d = self.dep
        k = self.prefill_batch
        if self.size.isl > d.eff.token_budget:
            return self.prefill_alone_s()
        return step_time(d.model, d.acc, d.par, d.prec, prefill_shape(k, self.size.isl), d.eff).step_s

    # --- curve --------------------------------------------------------------------------
    @cached_property
    def grid(self) -> tuple[Point, ...]:
        """Operating points on a geometric grid of concurrency up to the cap."""
        if self.role == "prefill":
            k, t = self.prefill_batch, self.prefill_batch_s
            rps = k / t
            return (Point(k, t, 0.0, rps, 0.0, t),)
        cmax = self.max_concurrency
        if not self.serviceable:
            return ()
        lo = min(1.0, cmax)
        pts = np.unique(np.concatenate([np.geomspace(lo, cmax, self.grid_points), [cmax]]))
        O = self.size.osl
        steps = self.step_s(pts)
        out = [Point(float(c), float(t), float(t), float(c / (O * t)), float(c / t), float(t))
               for c, t in zip(pts, steps)]
        return tuple(out)

    @cached_property
    def max_rps(self) -> float:
        """Highest sustainable request rate, SLO aside: throughput C/(O·t(C)) rises with C (a
        property the tests check), so it is reached at the concurrency cap."""
        if self.role == "prefill":
            return self.prefill_batch / self.prefill_batch_s
        cmax = self.max_concurrency
        if not self.serviceable:
            return 0.0
        return cmax / (self.size.osl * self.step_s(cmax))

    def point_at_rate(self, rate_rps: float) -> Point | None:
        """Operating point serving ``rate_rps`` (Little's law C = λ·O·t(C)), interpolated on the grid."""
        g = self.grid
        if not g or rate_rps > self.max_rps * (1 + 1e-9):
            return None
        if self.role == "prefill":
            return g[0]
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

    # --- latency ------------------------------------------------------------------------
    def prompt_step_s(self, concurrency: float, isl: float | None = None) -> float:
        """Time from a prompt's admission to its first token: the step(s) that prefill it, in
        budget-sized chunks, sharing each step with ``concurrency`` decoding sequences."""
        d = self.dep
        n = float(isl if isl is not None else self.size.isl)
        if self.role != "colocated" or concurrency < 1e-9:
            return self.prefill_alone_s(n)
        ctx = self.size.isl + self.size.osl / 2.0
        budget = max(d.eff.token_budget - concurrency, 1.0)
        total, done = 0.0, 0.0
        while done < n:
            chunk = min(budget, n - done)
            shape = decode_shape(concurrency, ctx) + prefill_shape(1, chunk, past=done, last_chunk=done + chunk >= n)
            total += step_time(d.model, d.acc, d.par, d.prec, shape, d.eff).step_s
            done += chunk
        return total

    def ttft(self, rate_rps: float, concurrency: float, percentiles: tuple[float, ...],
             ca2: float | None = None) -> tuple[dict[str, float], float]:
        """TTFT mean and percentiles at arrival rate λ with ``concurrency`` sequences decoding.

        service = prompt step(s) + engine TTFT overhead; waiting = Kingman G/G/1 with the prompt's
        prefill time as service and the instance's utilisation ρ = λ/λ_max; returns (ttft dict, ρ).
        """
        eff = self.dep.eff
        ca2 = self.arrival_cv**2 if ca2 is None else ca2
        alone = self.prefill_alone_s()
        rho = rate_rps / self.max_rps if self.max_rps else math.inf
        if self.role == "prefill":
            rho = rate_rps / self.max_rps if self.max_rps else math.inf
            alone = float(self.prefill_batch_service_s(np.asarray([rate_rps]))[0])
            service = alone + eff.ttft_overhead_s
            out = {"mean": service + pool_wait_s(rho, alone, self.pool, 0.5, ca2, self.size.cs2)[0]}
            for p in percentiles:
                out[f"p{p:g}"] = service + pool_wait_s(rho, alone, self.pool, p / 100.0, ca2, self.size.cs2)[1]
            return out, rho
        service = self.prompt_step_s(concurrency) + eff.ttft_overhead_s
        tail_service = service
        if self.size.isl_tail and self.size.isl_tail > self.size.isl * 1.01:
            tail_service = self.prompt_step_s(concurrency, self.size.isl_tail) + eff.ttft_overhead_s
        out = {"mean": service + pool_wait_s(rho, alone, self.pool, 0.5, ca2, self.size.cs2)[0]}
        for p in percentiles:
            q = p / 100.0
            wait_q = pool_wait_s(rho, alone, self.pool, q, ca2, self.size.cs2)[1]
            out[f"p{p:g}"] = (tail_service if q > 0.5 else service) + wait_q
        return out, rho

    def latency(self, rate_rps: float, percentiles: tuple[float, ...] = (50.0, 90.0, 99.0)) -> Latency:
        """TTFT and TPOT at an open-loop arrival rate (CV ``arrival_cv``)."""
        pt = self.point_at_rate(rate_rps)
        keys = ["mean", *[f"p{p:g}" for p in percentiles]]
        if pt is None:
            inf = {k: math.inf for k in keys}
            return Latency(rate_rps, math.inf, self.max_concurrency, inf, dict(inf), False)
        conc = 0.0 if self.role == "prefill" else pt.concurrency
        ttft, rho = self.ttft(rate_rps, conc, percentiles)
        if self.role == "prefill":
            tp = {"mean": 0.0, **{f"p{p:g}": 0.0 for p in percentiles}}
        else:
            tp = {"mean": pt.tpot_s, **{f"p{p:g}": float(self.tpot_quantile_s(conc, p / 100.0))
                                         for p in percentiles}}
        return Latency(rate_rps, rho, pt.concurrency, ttft, tp, rho < 1.0)

    def prefill_batch_service_s(self, rate_rps: np.ndarray) -> np.ndarray:
        """Service time of a prefill-only instance at a rate: prompts that arrive during one batch
        are batched together, k_eff = clip(λ·t_batch, 1, k), and a batch of k_eff prompts takes
        about t_alone + (k_eff − 1)/(k − 1)·(t_batch − t_alone) (linear in the prompts it holds)."""
        k, t_batch = self.prefill_batch, self.prefill_batch_s
        alone = self.prefill_alone_s()
        if k <= 1:
            return np.full_like(rate_rps, alone, dtype=float)
        k_eff = np.clip(rate_rps * t_batch, 1.0, k)
        return alone + (k_eff - 1.0) / (k - 1.0) * (t_batch - alone)

    def prompt_step_vec_s(self, concurrency: np.ndarray, isl: float) -> np.ndarray:
        """Vectorised ``prompt_step_s``: ⌈I/(budget − C)⌉ equal chunks, each timed at its mean past."""
        d = self.dep
        if self.role != "colocated":
            return np.full_like(concurrency, self.prefill_alone_s(isl), dtype=float)
        n = np.ceil(isl / np.maximum(d.eff.token_budget - concurrency, 1.0))
        chunk = isl / n
        past = (isl - chunk) / 2.0
        shape = decode_shape(concurrency, self.size.isl + self.size.osl / 2.0) + prefill_shape(
            np.ones_like(concurrency), chunk, past=past)
        return n * step_time(d.model, d.acc, d.par, d.prec, shape, d.eff).step_s

    def goodput(self, ttft_limit_s: float | None, tpot_limit_s: float | None, percentile: float,
                extra_ttft_s: float = 0.0, points: int = 32) -> tuple[float, str]:
        """(highest rate meeting the limits at ``percentile``, what binds there).

        Evaluated on a grid of operating points in one vectorised pass (concurrency for
        colocated/decode, rate for prefill) and refined by linear interpolation of the margin to
        the first failing point; ``extra_ttft_s`` adds fixed TTFT (the KV transfer of a
        disaggregated request). Binds: 'ttft', 'tpot', or the concurrency cap name.
        """
        q = percentile / 100.0
        eff = self.dep.eff
        O = self.size.osl
        if not self.fits or not self.serviceable:
            return 0.0, "memory"
        if self.role != "prefill":
            conc = np.unique(np.geomspace(min(1.0, self.max_concurrency), self.max_concurrency, points))
            parts = self.step_parts(conc)
            if "max_rps" not in self.__dict__:  # the grid ends at the cap, where throughput peaks
                t_dec, t_mix, share = parts
                top = share[-1] * t_mix[-1] + (1.0 - share[-1]) * t_dec[-1]
                self.__dict__["max_rps"] = float(conc[-1] / (O * top))
        if self.max_rps <= 0:
            return 0.0, "memory"
        ca2, cs2 = self.arrival_cv**2, self.size.cs2
        alone = self.prefill_alone_s()
        tail_isl = max(self.size.tail_isl, self.size.isl)
        if self.role == "prefill":
            rps = self.max_rps * np.linspace(0.01, 0.999, points * 2)
            rho = rps / self.max_rps
            alone = self.prefill_batch_service_s(rps)
            tail = self.prefill_alone_s(tail_isl) / max(self.prefill_alone_s(), 1e-12)
            service = alone * max(tail, 1.0)
            tpot = np.zeros_like(rps)
        else:
            t_dec, t_mix, share = parts
            tpot = share * t_mix + (1.0 - share) * t_dec
            rps = conc / (O * tpot)
            rho = rps / self.max_rps
            service = self.prompt_step_vec_s(conc, tail_isl)
        service = service + eff.ttft_overhead_s + extra_ttft_s
        _, wq = pool_wait_s(rho, alone, self.pool, q, ca2, cs2)
        ttft = service + wq
        if self.role != "prefill":  # TPOT at the percentile, its step parts interpolated on the grid
            z = float(ndtri(q))
            c_q = self._batch_quantile(conc, z)
            interp = [np.interp(c_q, conc, np.broadcast_to(x, conc.shape)) for x in parts]
            tpot = self._tpot_tail(c_q, *interp, z)
        margins = {"capacity": 1.0 - rho}
        if ttft_limit_s is not None and self.role != "decode":
            margins["ttft"] = (ttft_limit_s - ttft) / ttft_limit_s
        if tpot_limit_s is not None and self.role != "prefill":
            margins["tpot"] = (tpot_limit_s - tpot) / tpot_limit_s
        stacked = np.vstack(list(margins.values()))
        worst = stacked.min(axis=0)
        ok = worst >= 0
        if not ok[0]:
            names = list(margins)
            return 0.0, names[int(np.argmin(stacked[:, 0]))]
        last = int(np.argmax(~ok)) - 1 if not ok.all() else len(ok) - 1
        if last == len(ok) - 1:
            return float(rps[last]), self.concurrency_bound if self.role != "prefill" else "compute"
        a, b = worst[last], worst[last + 1]
        frac = a / (a - b) if np.isfinite(b) and a > b else 0.0
        names = list(margins)
        binding = names[int(np.argmin(stacked[:, last + 1]))]
        return float(rps[last] + frac * (rps[last + 1] - rps[last])), binding

    def goodput_rps(self, ttft_limit_s: float | None, tpot_limit_s: float | None, percentile: float) -> float:
        """Highest rate whose TTFT and TPOT at ``percentile`` meet the limits (0 when none does)."""
        return self.goodput(ttft_limit_s, tpot_limit_s, percentile)[0]
