"""The three serving roles: colocated, prefill-only and decode-only instances.

Each role is a small class over ``Instance`` (``planner.serving.instance``); all time prompts
with the one chunked-prefill function (``planner.serving.prefill_time``). TTFT adds queueing
(``planner.serving.queueing``) to the prompt's service time; ``goodput`` is the highest rate
whose TTFT and TPOT at the SLO percentile meet the limits, evaluated on a grid of operating
points in one vectorised pass and refined by linear interpolation of the margin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.special import ndtri

from planner.perf.shape import decode_shape, prefill_shape, prompt_share_shape
from planner.serving.instance import ROLES, Instance, Latency, Point, RequestSize, seen_batch
from planner.serving.prefill_time import chunked_prefill_s, prefill_chunks, rank_decode_tokens, step_s
from planner.serving.queueing import pool_wait_s, slot_wait_s

C_LOW = 0.02
POISSON_K = 4
"""Prompt chunks per step timed one by one; the Poisson tail beyond is timed at this many."""
"""Lowest mean decode concurrency on a capacity grid: an instance busy 2% of the time. Capacity curves
start here, not at one sequence, so a candidate that meets the SLO only at light load still gets that rate."""


@dataclass(frozen=True)
class SloCurve:
    """An instance's latency at the SLO percentile along an increasing grid of request rates."""

    rps: np.ndarray
    rho: np.ndarray
    ttft_s: np.ndarray | None
    tpot_s: np.ndarray | None

    def goodput(self, ttft_limit_s: float | None, tpot_limit_s: float | None, cap_name: str) -> tuple[float, str]:
        """(highest rate whose every margin is >= 0, what binds there), the crossing interpolated linearly."""
        margins = {"capacity": 1.0 - self.rho}
        if ttft_limit_s is not None and self.ttft_s is not None:
            margins["ttft"] = (ttft_limit_s - self.ttft_s) / ttft_limit_s
        if tpot_limit_s is not None and self.tpot_s is not None:
            margins["tpot"] = (tpot_limit_s - self.tpot_s) / tpot_limit_s
        names = list(margins)
        stacked = np.vstack([np.broadcast_to(m, np.shape(self.rps)) for m in margins.values()])
        worst = stacked.min(axis=0)
        ok = worst >= 0
        rps = self.rps
        if not ok[0]:
            return 0.0, names[int(np.argmin(stacked[:, 0]))]
        if ok.all():
            return float(rps[-1]), cap_name
        last = int(np.argmax(~ok)) - 1
        a, b = worst[last], worst[last + 1]
        frac = a / (a - b) if np.isfinite(b) and a > b else 0.0
        binding = names[int(np.argmin(stacked[:, last + 1]))]
        return float(rps[last] + frac * (rps[last + 1] - rps[last])), binding

    def at(self, rate_rps) -> tuple[np.ndarray, np.ndarray]:
        """(TTFT, TPOT) at the percentile at ``rate_rps`` (array), interpolated; 0 where the role has none."""
        r = np.asarray(rate_rps, dtype=float)
        ttft = np.interp(r, self.rps, self.ttft_s) if self.ttft_s is not None else np.zeros_like(r)
        tpot = np.interp(r, self.rps, self.tpot_s) if self.tpot_s is not None else np.zeros_like(r)
        return ttft, tpot


class Decode(Instance):
    """Decode-only instance of a disaggregated pair: pure-decode steps, no TTFT of its own."""

    role = "decode"

    def ttft(self, rate_rps: float, concurrency: float, percentiles: tuple[float, ...],
             ca2: float | None = None, open_loop: bool = True) -> tuple[dict[str, float], float]:
        """A decode instance adds no prefill: its TTFT share is zero."""
        return {"mean": 0.0, **{f"p{p:g}": 0.0 for p in percentiles}}, self.utilisation(rate_rps)

    def latency(self, rate_rps: float, percentiles: tuple[float, ...] = (50.0, 90.0, 99.0)) -> Latency:
        """TTFT and TPOT at an open-loop arrival rate (CV ``arrival_cv``)."""
        pt = self.point_at_rate(rate_rps)
        keys = ["mean", *[f"p{p:g}" for p in percentiles]]
        if pt is None:
            inf = {k: math.inf for k in keys}
            return Latency(rate_rps, math.inf, self.max_concurrency, inf, dict(inf), False)
        ttft, rho = self.ttft(rate_rps, pt.concurrency, percentiles)
        tp = {"mean": pt.tpot_s, **{f"p{p:g}": float(self.tpot_quantile_s(pt.concurrency, p / 100.0))
                                     for p in percentiles}}
        return Latency(rate_rps, rho, pt.concurrency, ttft, tp, rho < 1.0)

    def _grid_latency(self, q: float, points: int):
        """(concurrencies, rates, utilisations, TPOT at q) on a concurrency grid up to the cap; memoised
        (the pool size does not enter, so instances of several pool sizes share it)."""
        key = ("grid", self.role, self.open_loop, self.size, self.arrival_cv, q, points, self.max_concurrency)
        if key not in self._cache:
            self._cache[key] = self._grid_latency_uncached(q, points)
        out = self._cache[key]
        if "max_rps" not in self.__dict__:
            self.__dict__["max_rps"] = float(out[1][-1])
        return out

    def _grid_latency_uncached(self, q: float, points: int):
        conc = np.unique(np.geomspace(min(C_LOW, self.max_concurrency), self.max_concurrency, points))
        parts = self.step_parts(conc)
        t_dec, t_mix, share = parts
        tpot_mean = share * t_mix + (1.0 - share) * t_dec
        rps = conc / (self.size.osl * tpot_mean)
        if "max_rps" not in self.__dict__:  # the grid ends at the cap, where throughput peaks
            self.__dict__["max_rps"] = float(rps[-1])
        z = float(ndtri(q))
        c_q = self.batch_quantile(conc, z)
        interp = [np.interp(c_q, conc, np.broadcast_to(x, conc.shape)) for x in parts]
        tpot = self.tpot_tail(c_q, *interp, z)
        if self.role == "decode":  # a request that waits for a decode slot waits after its first token
            tpot = tpot + self.slot_wait(conc, tpot_mean, q)[1] / max(self.size.osl - 1.0, 1.0)
        return conc, rps, rps / self.max_rps, tpot

    def slot_wait(self, concurrency, tpot_s, q: float):
        """(mean, q-quantile) wait for a running-sequence slot: the pool's caps are slots held for O steps
        (``queueing.slot_wait_s``)."""
        slots = self.max_concurrency * self.pool
        return slot_wait_s(np.asarray(concurrency) / self.max_concurrency, self.size.osl * np.asarray(tpot_s), slots,
                           q, self.arrival_cv**2, 1.0)

    def slo_curve(self, percentile: float, extra_ttft_s: float = 0.0, points: int = 32) -> SloCurve | None:
        """Rates, utilisations and TTFT/TPOT at ``percentile`` on the role's grid (None when it cannot serve)."""
        if not self.fits or not self.serviceable:
            return None
        _, rps, rho, tpot = self._grid_latency(percentile / 100.0, points)
        return SloCurve(rps, rho, None, tpot)

    def goodput(self, ttft_limit_s: float | None, tpot_limit_s: float | None, percentile: float,
                extra_ttft_s: float = 0.0, points: int = 32) -> tuple[float, str]:
        """(highest rate meeting the limits at ``percentile``, what binds there: 'ttft', 'tpot',
        'capacity', a concurrency cap name, or 'memory' when it cannot serve at all)."""
        curve = self.slo_curve(percentile, extra_ttft_s, points)
        if curve is None:
            return 0.0, "memory"
        return curve.goodput(ttft_limit_s, tpot_limit_s, self.concurrency_bound if self.role != "prefill"
                             else "compute")

    def goodput_rps(self, ttft_limit_s: float | None, tpot_limit_s: float | None, percentile: float) -> float:
        """Highest rate whose TTFT and TPOT at ``percentile`` meet the limits (0 when none does)."""
        return self.goodput(ttft_limit_s, tpot_limit_s, percentile)[0]


class Colocated(Decode):
    """Colocated instance: decode steps that also carry chunks of arriving prompts."""

    role = "colocated"

    @cached_property
    def caps(self) -> dict[str, float]:
        caps = dict(super().caps)
        # a step holds C·q decode positions and the C·E/O prompts' I' new tokens (E = q = 1 unless speculating),
        # within the budget of every data-parallel attention rank together (Deployment.step_tokens)
        per_seq = self.decode_positions + self.tokens_per_step * self.fresh_isl / self.size.osl
        caps["token_budget"] = self.dep.step_tokens / per_seq
        return caps

    def step_parts(self, concurrency):
        """C/O prompts start per step, each in ⌈I/(budget − C)⌉ chunks; with random arrivals the chunks a
        step carries are Poisson with mean m = C/O·chunks. Step time is convex in the tokens it holds
        (max of a memory floor and linear compute), so steps are timed per chunk count k = 0..POISSON_K − 1
        and the tail k ≥ POISSON_K at its conditional mean, and averaged with the Poisson weights (Jensen):
        share = P(k ≥ 1) = 1 − e^(−m) and t_mix is the
        mean of the steps that carry a chunk. Speculating, steps start C·E/O prompts, the decodes take
        C·q of the budget, and the times returned are per output token (step / E); prefix caching
        computes I' = (1 − h)·I new tokens per prompt (``planner.speculative``)."""
        vector = isinstance(concurrency, np.ndarray)
        point = concurrency.tobytes() if vector else round(float(concurrency), 6)
        key = ("parts", self.role, self.open_loop, self.size.isl, self.size.osl, point)
        if key in self._cache:
            return self._cache[key]
        I, O = self.size.isl, self.size.osl
        E, c_I = self.tokens_per_step, self.cached_isl
        O_steps = O / E  # steps a request decodes for
        batch = seen_batch(concurrency) if self.open_loop else np.maximum(concurrency, 1.0)
        decode = decode_shape(batch, I + O / 2.0)
        t_dec = step_s(self.dep, decode)
        chunks = prefill_chunks(self.fresh_isl, self.dep.eff.token_budget, rank_decode_tokens(self.dep, concurrency))
        m = np.asarray(concurrency / O_steps * chunks, dtype=float)  # prompt chunks per step, Poisson
        if not self.open_loop:  # offline / closed loop: every step carries the same share of prompt work
            share = np.minimum(1.0, m)
            t_mix = step_s(self.dep, decode + prompt_share_shape(concurrency / O_steps / share, I, c_I))
            out = (t_dec / E, t_mix / E, share) if vector else (float(t_dec / E), float(t_mix / E), float(share))
            self._cache[key] = out
            return out
        mean_t = np.exp(-m) * t_dec
        left = 1.0 - np.exp(-m)
        below = np.zeros_like(m)  # Σ_{j<K} j·p_j
        for k in range(1, POISSON_K + 1):
            if k < POISSON_K:
                pk, kk = np.exp(-m) * m**k / math.factorial(k), float(k)
                below = below + k * pk
            else:  # the tail k ≥ K at its conditional mean E[k | k ≥ K] = (m − Σ_{j<K} j·p_j)/P(k ≥ K): the
                pk = left  # steps carry all m chunks on average (with short answers m ≫ K)
                with np.errstate(divide="ignore", invalid="ignore"):
                    kk = np.maximum(np.where(left > 1e-12, (m - below) / np.maximum(left, 1e-300), k), k)
            mean_t = mean_t + pk * step_s(self.dep, decode + prompt_share_shape(kk / chunks, I, c_I))
            left = left - pk
        share = 1.0 - np.exp(-m)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_mix = np.where(share > 1e-12, (mean_t - np.exp(-m) * t_dec) / np.maximum(share, 1e-300),
                             step_s(self.dep, decode + prompt_share_shape(1.0 / chunks, I, c_I)))
        t_dec, t_mix = t_dec / E, t_mix / E
        out = (t_dec, t_mix, share) if vector else (float(t_dec), float(t_mix), float(share))
        self._cache[key] = out
        return out

    def tpot_tail(self, c_q, t_dec, t_mix, share, z: float):
        """Over a request's n decode steps the number that also carry a prompt chunk is Binomial(n,
        share): TPOT_q = t_dec(C_q) + (t_mix(C_q) − t_dec(C_q))·X_q / n, X_q by the normal approximation
        with continuity correction, within [0, n]. n is the bucket's harmonic-mean decode steps
        (``RequestSize.decode_steps``, else O): over a mix of lengths the variance of X/n averages
        share·(1 − share)·E[1/n], which n = 1/E[1/n] matches. Speculating, a request decodes n/E steps."""
        n = max(float(round((self.size.decode_steps or self.size.osl) / self.tokens_per_step)), 1.0)
        p = np.clip(share, 0.0, 1.0 - 1e-12)
        # the extra time D of a step carrying prompt work varies with how many chunks it carries (Poisson
        # m = −ln(1 − share), given ≥ 1) and how long they are (the bucket's input-length CV², chunks are
        # capped by the budget): Var(Σ) = n·(p·E[D²]/d² − p²)·d², so the tail uses p·(1 + cv²_D) − p²
        m = -np.log1p(-p)
        with np.errstate(divide="ignore", invalid="ignore"):
            ek = np.where(p > 1e-9, m / p, 1.0)
            ek2 = np.where(p > 1e-9, (m + m * m) / p, 1.0)
        cv2_k = np.maximum(ek2 / ek**2 - 1.0, 0.0)
        cv2_c = min(float(self.size.cs2 or 0.0), 1.0)
        var = np.maximum(p * (1.0 + cv2_k) * (1.0 + cv2_c) - p * p, 0.0)
        x_q = np.clip(np.ceil(n * p + z * np.sqrt(n * var) - 0.5), 0.0, n)
        return t_dec + (t_mix - t_dec) * x_q / n

    def prompt_step_s(self, concurrency, isl: float | None = None):
        """Prompt steps sharing the instance with ``concurrency`` decodes (chunked prefill)."""
        n = float(isl if isl is not None else self.size.isl)
        ctx = self.size.isl + self.size.osl / 2.0
        if isinstance(concurrency, np.ndarray):
            return chunked_prefill_s(self.dep, np.full_like(concurrency, n, dtype=float), concurrency, ctx)
        key = ("prompt step", n, ctx, float(concurrency))  # memoised: every pool tier asks for the idle one
        if key not in self._cache:
            self._cache[key] = chunked_prefill_s(self.dep, n, concurrency, ctx)
        return self._cache[key]

    def ttft(self, rate_rps: float, concurrency: float, percentiles: tuple[float, ...],
             ca2: float | None = None, open_loop: bool = True) -> tuple[dict[str, float], float]:
        """TTFT mean and percentiles from its physical parts (``ttft_curve``); a closed loop has no slot
        wait, its clients are the slots (``open_loop=False``)."""
        ca2 = self.arrival_cv**2 if ca2 is None else ca2
        conc = np.asarray([max(concurrency, 0.0)])
        rate = np.asarray([rate_rps])
        parts = self.ttft_curve(conc, rate, 0.5, ca2=ca2, open_loop=open_loop)
        out = {"mean": float(sum(v[0] for k, v in parts.items() if k != "quantile"))}
        for p in percentiles:
            tail = self.ttft_curve(conc, rate, p / 100.0, ca2=ca2, open_loop=open_loop,
                                   isl=self.size.tail_isl if p > 50 else None)
            out[f"p{p:g}"] = float(tail["quantile"][0])
        self._cache[("ttft parts", rate_rps)] = {k: float(v[0]) for k, v in parts.items() if k != "quantile"}
        return out, self.utilisation(rate_rps)

    def ttft_curve(self, conc, rps, q: float, *, ca2: float | None = None, open_loop: bool = True,
                   isl: float | None = None, extra_s: float = 0.0) -> dict[str, np.ndarray]:
        """Mean TTFT parts and the q-quantile at decode concurrencies ``conc`` and rates ``rps`` (arrays):

        - step in flight: the engine is busy with probability 1 − e^(−C) and the step a request lands in
          is length-biased: steps carry a prompt with share p (time t_mix) or not (t_dec), so the residual
          has mean E[S²]/(2E[S]) and a uniform-mixture tail;
        - prompt: its own chunked-prefill steps with C decodes (``prompt_step_s``), plus the prompts that
          arrived during the same step and share it: Poisson with mean λ·E[S²]/E[S], as many as the
          token budget admits, each adding t(C decodes + one prompt) − t_dec;
        - queueing for prefill budget (``prefill_queue``), G/G/pool;
        - waiting for a sequence slot (open loop, ``slot_wait``);
        - the engine's per-request overhead (``ttft_overhead_s``) and any fixed ``extra_s``.
        The quantile adds the parts' quantiles (an upper bound on the quantile of the sum)."""
        ca2 = self.arrival_cv**2 if ca2 is None else ca2
        conc = np.maximum(np.asarray(conc, dtype=float), 0.0)
        lam = np.asarray(rps, dtype=float)
        z = float(ndtri(q))
        t_dec, t_mix, share = self.step_parts(np.maximum(conc, C_LOW))
        t_dec, t_mix = t_dec * self.tokens_per_step, t_mix * self.tokens_per_step  # whole steps, not per token
        # prompt chunks per step are Poisson with mean m (share = 1 − e^(−m)), each adding about d to a
        # pure-decode step: E[S] = t_dec + m·d, E[S²] = (t_dec + m·d)² + m·d²
        m = -np.log(np.clip(1.0 - share, 1e-12, 1.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(m > 1e-12, share * np.maximum(t_mix - t_dec, 0.0) / np.maximum(m, 1e-300), 0.0)
        e1 = t_dec + m * d
        e2 = e1**2 + m * d**2
        busy = 1.0 - np.exp(-conc)
        flight_mean = busy * e2 / (2.0 * e1)
        a = 1.0 - q
        w_m = 1.0 - t_dec * np.exp(-m) / e1  # length-biased share of time in steps that carry a prompt
        w_d = 1.0 - w_m
        t_mix = np.maximum(t_dec + d * (1.0 + m), t_dec)  # mean length of those steps (1 + m prompts)
        with np.errstate(divide="ignore", invalid="ignore"):
            x1 = (1.0 - a / np.maximum(busy, 1e-300)) / (w_m / t_mix + w_d / t_dec)
            x2 = t_mix * (1.0 - a / np.maximum(busy * w_m, 1e-300))
        flight_q = np.where(busy <= a, 0.0, np.where(x1 <= t_dec, x1, np.where(busy * w_m > a, x2, t_dec)))
        n = float(isl if isl is not None else self.size.isl)
        budget = self.dep.step_tokens
        own_mean = self._prompt_steps(conc, self.size.isl)
        own = self._prompt_steps(conc, n) if n != self.size.isl else own_mean
        one = self._prompt_steps(conc, self.size.isl, single=True)
        delta = np.maximum(one - t_dec, 0.0)
        k_max = np.maximum(np.floor((budget - conc * self.decode_positions) / max(self.fresh_isl, 1.0)) - 1.0, 0.0)
        others = lam * e2 / e1
        others_mean = np.minimum(others, k_max)
        others_q = np.minimum(np.maximum(others + z * np.sqrt(others), 0.0), k_max)  # continuous normal approx.
        rho_p, work = self.prefill_queue(lam, conc)
        queue_mean, queue_q = pool_wait_s(rho_p, work, self.pool, q, ca2, self.size.cs2)
        if open_loop:
            slot_mean, slot_q = self.slot_wait(conc, e1 / self.tokens_per_step, q)
        else:
            slot_mean = slot_q = np.zeros_like(conc)
        fixed = self.dep.eff.ttft_overhead_s + extra_s
        quantile = flight_q + own + others_q * delta + queue_q + slot_q + fixed
        return {"step_in_flight": flight_mean, "prefill": own_mean, "shared_prefill_step": others_mean * delta,
                "queueing": np.asarray(queue_mean) * np.ones_like(conc),
                "slot_wait": np.asarray(slot_mean) * np.ones_like(conc),
                "engine_overhead": np.full_like(conc, self.dep.eff.ttft_overhead_s),
                "fixed_extra": np.full_like(conc, extra_s), "quantile": quantile}

    def _prompt_steps(self, conc: np.ndarray, isl: float, single: bool = False) -> np.ndarray:
        """Chunked-prefill time of one prompt of ``isl`` tokens at concurrencies ``conc`` (memoised on the
        grid); ``single``: the step of one whole prompt chunk (the increment another prompt adds)."""
        key = ("prompt steps", isl, single, self.size.isl, self.size.osl, conc.tobytes())
        if key not in self._cache:
            n = np.full_like(conc, isl if not single else min(isl, self.dep.eff.token_budget), dtype=float)
            self._cache[key] = np.asarray(chunked_prefill_s(self.dep, n, conc, self.size.isl + self.size.osl / 2.0))
        return self._cache[key]

    def prefill_queue(self, rate_rps, concurrency):
        """(utilisation, service time) of the prefill queue. Chunked prefill gives prompts the token budget
        left after the decodes, B − C tokens per step of time t_mix, so prompts queue for budget, not for
        the instance: ρ_p = λ·I·t_mix/(B − C) and a prompt's work is S = I·t_mix/(B − C) (a fraction of a
        step when it fits in one). The prompt's own steps are counted apart (``prompt_step_s``). B is the
        instance's step tokens, every data-parallel attention rank's budget together (``Deployment.step_tokens``)."""
        conc = np.maximum(np.asarray(concurrency, dtype=float), C_LOW)
        budget = np.maximum(self.dep.step_tokens - conc * self.decode_positions, 1.0)
        work = self.fresh_isl * self.step_parts(conc)[1] * self.tokens_per_step / budget
        return np.asarray(rate_rps, dtype=float) * work, work

    def ttft_parts(self, rate_rps: float) -> dict[str, float]:
        """Mean TTFT by physical part at ``rate_rps`` (after ``ttft``/``latency`` at that rate)."""
        return dict(self._cache.get(("ttft parts", rate_rps), {}))

    def slo_curve(self, percentile: float, extra_ttft_s: float = 0.0, points: int = 32) -> SloCurve | None:
        if not self.fits or not self.serviceable:
            return None
        q = percentile / 100.0
        conc, rps, rho, tpot = self._grid_latency(q, points)
        ttft = self.ttft_curve(conc, rps, q, isl=max(self.size.tail_isl, self.size.isl), extra_s=extra_ttft_s)
        return SloCurve(rps, rho, ttft["quantile"], tpot)


class Prefill(Instance):
    """Prefill-only instance of a disaggregated pair: batches of whole prompts up to the token budget."""

    role = "prefill"

    @cached_property
    def prefill_batch(self) -> float:
        """Prompts per prefill-only step: as many whole prompts as fit the token budget, on each
        data-parallel attention rank (``Deployment.seq_cap``) when the prompt fits one rank's budget."""
        per_rank = math.floor(self.dep.eff.token_budget / max(self.fresh_isl, 1.0))
        return max(1.0, float(self.dep.attn_ranks * per_rank))

    @cached_property
    def prefill_batch_s(self) -> float:
        if self.fresh_isl > self.dep.eff.token_budget:
            return self.prefill_alone_s()
        fresh = max(self.fresh_isl, 1.0)
        return float(step_s(self.dep, prefill_shape(self.prefill_batch, fresh, past=self.size.isl - fresh)))

    @cached_property
    def grid(self) -> tuple[Point, ...]:
        k, t = self.prefill_batch, self.prefill_batch_s
        return (Point(k, t, 0.0, k / t, 0.0, t),)

    @cached_property
    def max_rps(self) -> float:
        return self.prefill_batch / self.prefill_batch_s

    def point_at_rate(self, rate_rps: float) -> Point | None:
        if rate_rps > self.max_rps * (1 + 1e-9):
            return None
        return self.grid[0]

    def batch_service_s(self, rate_rps: np.ndarray) -> np.ndarray:
        """Service time at a rate: prompts that arrive during one batch are batched together,
        k_eff = clip(λ·t_batch, 1, k), and a batch of k_eff prompts takes about
        t_alone + (k_eff − 1)/(k − 1)·(t_batch − t_alone) (linear in the prompts it holds)."""
        k, t_batch = self.prefill_batch, self.prefill_batch_s
        alone = self.prefill_alone_s()
        if k <= 1:
            return np.full_like(rate_rps, alone, dtype=float)
        k_eff = np.clip(rate_rps * t_batch, 1.0, k)
        return alone + (k_eff - 1.0) / (k - 1.0) * (t_batch - alone)

    def ttft(self, rate_rps: float, concurrency: float, percentiles: tuple[float, ...],
             ca2: float | None = None, open_loop: bool = True) -> tuple[dict[str, float], float]:
        """Batch service + engine TTFT overhead + pool waiting with the batch service as service time."""
        ca2 = self.arrival_cv**2 if ca2 is None else ca2
        rho = self.utilisation(rate_rps)
        alone = float(self.batch_service_s(np.asarray([rate_rps]))[0])
        service = alone + self.dep.eff.ttft_overhead_s
        out = {"mean": service + pool_wait_s(rho, alone, self.pool, 0.5, ca2, self.size.cs2)[0]}
        for p in percentiles:
            out[f"p{p:g}"] = service + pool_wait_s(rho, alone, self.pool, p / 100.0, ca2, self.size.cs2)[1]
        return out, rho

    def latency(self, rate_rps: float, percentiles: tuple[float, ...] = (50.0, 90.0, 99.0)) -> Latency:
        keys = ["mean", *[f"p{p:g}" for p in percentiles]]
        if rate_rps > self.max_rps * (1 + 1e-9):
            inf = {k: math.inf for k in keys}
            return Latency(rate_rps, math.inf, self.prefill_batch, inf, dict(inf), False)
        ttft, rho = self.ttft(rate_rps, 0.0, percentiles)
        zero = {k: 0.0 for k in keys}
        return Latency(rate_rps, rho, self.prefill_batch, ttft, zero, rho < 1.0)

    def slo_curve(self, percentile: float, extra_ttft_s: float = 0.0, points: int = 32) -> SloCurve | None:
        """TTFT at ``percentile`` on a grid of rates up to the batch throughput."""
        if not self.fits or not self.serviceable or self.max_rps <= 0:
            return None
        q = percentile / 100.0
        rps = self.max_rps * np.linspace(0.01, 0.999, points * 2)
        rho = rps / self.max_rps
        service_alone = self.batch_service_s(rps)
        tail = self.prefill_alone_s(max(self.size.tail_isl, self.size.isl)) / max(self.prefill_alone_s(), 1e-12)
        service = service_alone * max(tail, 1.0) + self.dep.eff.ttft_overhead_s + extra_ttft_s
        _, wq = pool_wait_s(rho, service_alone, self.pool, q, self.arrival_cv**2, self.size.cs2)
        return SloCurve(rps, rho, service + wq, None)

    goodput = Decode.goodput
    goodput_rps = Decode.goodput_rps


_ROLE_CLASSES: dict[str, type[Instance]] = {"colocated": Colocated, "prefill": Prefill, "decode": Decode}


def instance_model(dep, role: str, size: RequestSize, **kw) -> Instance:
    """The role's instance model for ``dep`` and a request size (keywords as ``Instance``)."""
    if role not in ROLES:
        from planner.errors import InputError

        raise InputError("role", "colocated, prefill or decode", role)
    return _ROLE_CLASSES[role](dep, size, **kw)
