"""The discrete-event engine behind ``planner.serving.simulate``: step timer, request state, one
engine's scheduler (chunked prefill, continuous batching, preemption) and the event loop.
See ``planner.serving.simulate`` for the model it implements."""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from planner.checks import finite_array as _finite_array
from planner.checks import positive, token_array, whole
from planner.deployment import Deployment
from planner.errors import InfeasibleError, InputError
from planner.perf.memory import memory_plan
from planner.perf.shape import StepShape, decode_shape, prefill_shape
from planner.serving.prefill_time import decode_positions, step_s
from planner.serving.sim_result import PERCENTILES, SimResult

BLOCK_TOKENS = 16  # KV block size (vLLM's default); admission keeps one block of slack
CTX_GRID_TOKENS = 64  # decode mean-context rounding for the step-time cache


# ---------------------------------------------------------------- input checks


def _token_list(x: object, field: str, n: int | None = None) -> list[int]:
    return [int(v) for v in token_array(x, field, n)]


def _count(x: object, field: str, minimum: int = 1) -> int:
    return whole(x, field, minimum)


def _positive(x: object, field: str) -> float:
    return positive(x, field)


def _kv_capacity(dep: Deployment, role: str) -> int:
    plan = memory_plan(dep.model, dep.accelerator, dep.parallel, dep.precision, dep.eff, min_kv_tokens=BLOCK_TOKENS,
                       engine=dep.engine)
    if plan.max_kv_tokens < 2 * BLOCK_TOKENS:
        raise InfeasibleError(f"{role}: no room for a KV cache: {plan.reason}")
    return plan.max_kv_tokens


def _check_fits(isl: list[int], osl: list[int], capacity: int, field: str, decode: bool = True) -> None:
    """Every request must fit alone (prompt + outputs + one block), or it could never finish."""
    need = [i + (o if decode else 0) + BLOCK_TOKENS for i, o in zip(isl, osl)]
    worst = max(range(len(need)), key=need.__getitem__)
    if need[worst] > capacity:
        what = "isl + osl" if decode else "isl"
        raise InputError(field, f"{what} + {BLOCK_TOKENS} within the instance's {capacity} KV tokens "
                         f"(request {worst})", need[worst] - BLOCK_TOKENS)


# ---------------------------------------------------------------- step times


class _StepTimer:
    """Memoised ``step_time(...).step_s`` of one deployment, keyed by the rounded step shape."""

    def __init__(self, dep: Deployment) -> None:
        self.dep = dep
        self.eff = dep.eff
        self.cache: dict[tuple[Any, ...], float] = {}

    def __call__(self, chunks: tuple[tuple[int, int, bool], ...], n_decode: int, ctx_sum: int) -> float:
        ctx_q = round(ctx_sum / n_decode / CTX_GRID_TOKENS) if n_decode else 0
        key = (chunks, n_decode, ctx_q)
        dt = self.cache.get(key)
        if dt is None:
            shape: StepShape | None = None
            for chunk, past, last in chunks:
                part = prefill_shape(1, chunk, past, last)
                shape = part if shape is None else shape + part
            if n_decode:
                part = decode_shape(n_decode, ctx_q * CTX_GRID_TOKENS)
                shape = part if shape is None else shape + part
            assert shape is not None
            dt = float(step_s(self.dep, shape))  # a verify + draft step when speculating
            self.cache[key] = dt
        return dt


# ---------------------------------------------------------------- request state and one engine


class _Requests:
    """Per-request state in plain lists (fast scalar access), indexed by request id."""

    def __init__(self, arrival_s: list[float], isl: list[int], osl: list[int]) -> None:
        n = len(isl)
        self.arrival_s = arrival_s
        self.isl, self.osl = isl, osl
        self.gen = [0] * n  # output tokens emitted (exact unless the request is decoding)
        self.target = list(isl)  # tokens to prefill: the prompt, or prompt + outputs after a preemption
        self.done = [0] * n  # tokens of target prefilled so far
        self.loaded = [False] * n  # KV arrived from a prefill engine (decode engines only)
        self.ver = [0] * n  # bumped on preemption: invalidates the request's heap entry
        self.tick0 = [0] * n  # engine tick when the request entered decode
        self.gen0 = [0] * n  # gen at that tick
        self.cached0 = [0] * n  # cached tokens at that tick
        self.first_s = [-1.0] * n
        self.finish_s = [-1.0] * n


class _Engine:
    """One instance: ``mode`` is ``colocated``, ``prefill`` (prefill-only) or ``decode`` (decode-only).

    Decoding sequences advance together, one token per step, so their state is kept relative to an
    engine tick (gen = gen0 + tick − tick0) and finishes come off a heap keyed by tick. Speculating
    (``planner.speculative``), every step advances each decoding sequence by the expected E tokens
    (gen = gen0 + E·(tick − tick0), a request finishing after ⌈(O − gen)/E⌉ steps; acceptance is taken
    at its mean, not drawn) and takes k + 1 budget positions. With a prefix-cache hit ratio h a prompt's
    first ⌊h·I⌋ tokens count as prefilled on admission (its KV is still reserved whole: conservative
    against the analytic rule, which shares the cached prefix).
    """

    def __init__(self, mode: str, req: _Requests, timer: _StepTimer, capacity: int,
                 waiting: deque[int] | None = None) -> None:
        eff = timer.eff
        self.mode, self.req, self.timer, self.capacity = mode, req, timer, capacity
        spec = timer.dep.settings.speculative
        self.tok = spec.tokens_per_step if spec is not None else 1.0  # tokens per decode step, E
        self.positions = decode_positions(timer.dep)
        self.hit = timer.dep.settings.prefix_cache_hit or 0.0
        if int(eff.token_budget) < 1 or int(eff.max_seqs) < 1:
            raise InputError("profile token_budget and max_seqs", "at least 1", (eff.token_budget, eff.max_seqs))
        # every data-parallel attention rank schedules with its own budget and sequence cap
        # (Deployment.seq_cap): the instance's step holds ranks·budget tokens and ranks·min(max_seqs, budget)
        # sequences, and one prompt's chunk at most a rank's budget less that rank's share of the decodes
        self.ranks = timer.dep.attn_ranks
        self.rank_budget = int(eff.token_budget)
        self.token_budget = timer.dep.step_tokens
        self.seq_cap = self.ranks * int(min(eff.max_seqs, eff.token_budget))
        self.waiting: deque[int] = waiting if waiting is not None else deque()
        self.running: dict[int, None] = {}  # admission order (dicts keep insertion order)
        self.prefilling: dict[int, None] = {}
        self.reserved = 0  # KV tokens held by prefilling sequences (whole target)
        self.n_dec = 0
        self.dec_ctx_sum = 0  # Σ cached tokens of decoding sequences
        self.heap: list[tuple[int, int, int]] = []  # (finish tick, request, version)
        self.tick = 0
        self.busy = False
        self.preemptions = 0
        self.dec_area = 0.0  # Σ n_dec · dt over steps with decodes
        self.dec_time_s = 0.0
        self._chunks: list[tuple[int, int]] = []
        self._n_dec_step = 0

    @property
    def load(self) -> int:
        return len(self.running) + len(self.waiting)

    def _enter_decode(self, i: int, cached: int) -> None:
        r = self.req
        r.tick0[i], r.gen0[i], r.cached0[i] = self.tick, r.gen[i], cached
        self.n_dec += 1
        self.dec_ctx_sum += cached
        heapq.heappush(self.heap, (self.tick + math.ceil((r.osl[i] - r.gen[i]) / self.tok - 1e-9), i, r.ver[i]))

    def _leave_decode(self, i: int) -> int:
        """Take ``i`` out of the decode set; returns its cached tokens and brings ``gen`` up to date."""
        r = self.req
        adv = (self.tick - r.tick0[i]) * self.tok
        r.gen[i] = min(r.gen0[i] + int(adv + 1e-9), r.osl[i])
        self.n_dec -= 1
        self.dec_ctx_sum -= r.cached0[i] + adv
        return r.cached0[i] + int(adv + 1e-9)

    def _preempt(self, i: int) -> None:
        r = self.req
        if i in self.prefilling:
            del self.prefilling[i]
            self.reserved -= r.target[i]
        else:
            self._leave_decode(i)
        del self.running[i]
        r.ver[i] += 1
        r.loaded[i] = False
        r.target[i] = r.isl[i] + r.gen[i]
        r.done[i] = 0
        self.waiting.appendleft(i)
        self.preemptions += 1

    def plan(self) -> float | None:
        """Choose the next step's work (preempting if needed); its duration, or None when idle."""
        r = self.req
        while self.n_dec and self.reserved + self.dec_ctx_sum + self.n_dec * self.tok > self.capacity:
            self._preempt(next(reversed(self.running)))
        grow = self.n_dec * self.tok
        budget = self.token_budget - self.n_dec * self.positions
        rank_free = max(self.rank_budget - (self.n_dec * self.positions) // self.ranks, 1)  # a prompt's rank
        free = self.capacity - self.reserved - self.dec_ctx_sum - grow
        chunks: list[tuple[int, int]] = []
        for i in self.prefilling:
            if budget <= 0:
                break
            c = min(r.target[i] - r.done[i], budget, rank_free)
            chunks.append((i, c))
            budget -= c
        waiting = self.waiting
        while waiting and budget > 0 and len(self.running) < self.seq_cap:
            i = waiting[0]
            if r.loaded[i]:  # KV came over the link: decode from this step on
                if r.isl[i] + BLOCK_TOKENS > free:
                    break
                waiting.popleft()
                self.running[i] = None
                self._enter_decode(i, r.isl[i])
                free -= r.isl[i] + 1
                budget -= self.positions
                continue
            t = r.target[i]
            if t + BLOCK_TOKENS > free:
                break
            waiting.popleft()
            self.running[i] = None
            self.prefilling[i] = None
            self.reserved += t
            free -= t
            if self.hit and r.done[i] == 0:  # the cached prefix counts as prefilled (class docstring)
                r.done[i] = min(int(self.hit * r.isl[i]), t - 1)
            c = min(t - r.done[i], budget, rank_free)
            chunks.append((i, c))
            budget -= c
        if not chunks and not self.n_dec:
            if waiting:
                raise RuntimeError("simulation stalled with waiting requests and an empty engine")
            return None
        key = tuple((c, r.done[i], r.done[i] + c == r.target[i]) for i, c in chunks)
        dt = self.timer(key, self.n_dec, self.dec_ctx_sum)
        self._chunks, self._n_dec_step = chunks, self.n_dec
        if self.n_dec:
            self.dec_area += self.n_dec * dt
            self.dec_time_s += dt
        return dt

    def finish_step(self, t: float) -> tuple[list[int], list[int]]:
        """Apply the planned step ending at ``t``: (finished requests, prompts handed to decode)."""
        r = self.req
        finished: list[int] = []
        handoff: list[int] = []
        self.tick += 1
        self.dec_ctx_sum += self._n_dec_step * self.tok
        heap = self.heap
        while heap and heap[0][0] <= self.tick:
            _, i, v = heapq.heappop(heap)
            if v != r.ver[i]:
                continue
            self._leave_decode(i)
            del self.running[i]
            r.finish_s[i] = t
            finished.append(i)
        for i, c in self._chunks:
            r.done[i] += c
            if r.done[i] < r.target[i]:
                continue
            del self.prefilling[i]
            self.reserved -= r.target[i]
            r.gen[i] += 1
            if self.mode == "prefill":
                del self.running[i]
                handoff.append(i)
                continue
            if r.first_s[i] < 0:
                r.first_s[i] = t
            if r.gen[i] >= r.osl[i]:
                del self.running[i]
                r.finish_s[i] = t
                finished.append(i)
            else:
                self._enter_decode(i, r.target[i])
        self._chunks = []
        self.busy = False
        return finished, handoff


# ---------------------------------------------------------------- event loop


def _run(req: _Requests, front: list[_Engine], back: list[_Engine], *, xfer_s: Callable[[int], float] | None,
         closed_loop: int, max_requests: int, max_sim_s: float, capacity: int) -> SimResult:
    """Drive the engines: arrivals join the front pool's queue; with a back pool, finished prompts
    cross the KV link (``xfer_s``) and join the least-loaded back engine."""
    n = len(req.isl)
    engines = front + back
    events: list[tuple[float, int, int, int]] = []  # (time, seq, kind, payload)
    seq = 0
    STEP, KV, ARRIVE = 0, 1, 2
    if closed_loop:
        order: list[int] = []
        for i in range(min(closed_loop, n)):
            events.append((0.0, seq, ARRIVE, i))
            seq += 1
        next_release = min(closed_loop, n)
        open_times: list[float] = []
        t0 = 0.0
    else:
        order = sorted(range(n), key=req.arrival_s.__getitem__)
        open_times = [req.arrival_s[i] for i in order]
        next_release = n
        t0 = open_times[0]
    ptr = 0
    end_s = t0 + max_sim_s
    completed: list[int] = []
    in_system = 0
    area = 0.0
    t_last = t0
    area_at_finish = 0.0
    t = t0

    def finish(i: int, when: float) -> None:
        nonlocal next_release, seq, area_at_finish
        req.finish_s[i] = when
        completed.append(i)
        area_at_finish = area
        if closed_loop and next_release < n:
            req.arrival_s[next_release] = when
            heapq.heappush(events, (when, seq, ARRIVE, next_release))
            seq += 1
            next_release += 1

    while len(completed) < max_requests:
        t_arr = open_times[ptr] if ptr < len(open_times) else math.inf
        t_ev = events[0][0] if events else math.inf
        t_next = min(t_arr, t_ev)
        if t_next > t:  # everything at time t is in: start the engines that are idle and have work
            for k, e in enumerate(engines):
                if not e.busy:
                    dt = e.plan()
                    if dt is not None:
                        e.busy = True
                        heapq.heappush(events, (t + dt, seq, STEP, k))
                        seq += 1
            t_ev = events[0][0] if events else math.inf
            t_next = min(t_arr, t_ev)
        if t_next == math.inf or t_next > end_s:
            break
        area += in_system * (t_next - t_last)
        t_last = t = t_next
        if t_arr <= t_ev:
            i = order[ptr]
            ptr += 1
            in_system += 1
            front[0].waiting.append(i)
            continue
        _, _, kind, x = heapq.heappop(events)
        if kind == ARRIVE:
            in_system += 1
            front[0].waiting.append(x)
        elif kind == STEP:
            done, handoff = engines[x].finish_step(t)
            for i in done:
                in_system -= 1
                finish(i, t)
            for i in handoff:
                assert xfer_s is not None
                heapq.heappush(events, (t + xfer_s(i), seq, KV, i))
                seq += 1
        else:  # KV cache arrived: first token delivered, decoding continues on a back engine
            req.first_s[x] = t
            if req.gen[x] >= req.osl[x]:
                in_system -= 1
                finish(x, t)
            else:
                req.loaded[x] = True
                min(back, key=lambda e: e.load).waiting.append(x)
        if len(completed) >= max_requests:
            break
    return _result(req, completed, t0, area_at_finish, back or front, capacity)


def _stats(x: np.ndarray) -> dict[str, float]:
    if x.size == 0:
        return {"mean": math.nan, **{f"p{p}": math.nan for p in PERCENTILES}}
    qs = np.percentile(x, PERCENTILES)
    return {"mean": float(x.mean()), **{f"p{p}": float(q) for p, q in zip(PERCENTILES, qs)}}


def _result(req: _Requests, completed: list[int], t0: float, area: float, decoders: list[_Engine],
            capacity: int) -> SimResult:
    idx = np.asarray(completed, dtype=np.int64)
    arrival = np.asarray(req.arrival_s, dtype=float)[idx]
    first = np.asarray(req.first_s, dtype=float)[idx]
    finish = np.asarray(req.finish_s, dtype=float)[idx]
    osl = np.asarray(req.osl, dtype=float)[idx]
    multi = osl > 1
    duration = float(finish.max() - t0) if idx.size else 0.0
    per_s = (lambda v: v / duration) if duration > 0 else (lambda v: math.nan)
    dec_time = sum(e.dec_time_s for e in decoders)
    return SimResult(
        n_requests=int(idx.size),
        duration_s=duration,
        ttft_s=_stats(first - arrival),
        tpot_s=_stats((finish[multi] - first[multi]) / (osl[multi] - 1)),
        e2e_s=_stats(finish - arrival),
        output_tokens_per_s=per_s(float(osl.sum())),
        requests_per_s=per_s(float(idx.size)),
        mean_decode_batch=sum(e.dec_area for e in decoders) / dec_time if dec_time > 0 else math.nan,
        preemptions=sum(e.preemptions for e in decoders),
        max_kv_tokens=capacity,
        mean_in_system=per_s(area),
    )


def _limits(max_requests: object, max_sim_s: object) -> tuple[int, float]:
    return _count(max_requests, "max_requests"), _positive(max_sim_s, "max_sim_s")


def _requests(arrivals_s: object, isl: object, osl: object) -> _Requests:
    arr = _finite_array(arrivals_s, "arrivals_s")
    return _Requests([float(a) for a in arr], _token_list(isl, "isl", arr.size), _token_list(osl, "osl", arr.size))


