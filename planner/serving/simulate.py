"""Discrete-event simulation of serving instances, used to check the analytic queueing model.

The simulation replays requests (arrival time, prompt length ``isl``, output length ``osl``)
through engine steps whose durations come from the same step model the planner uses
(:func:`planner.perf.step.step_time`), so it differs from the analytic model only in the
queueing and batching dynamics, which it follows request by request instead of in the mean.
It is deterministic: no wall clock and no global random state; the only randomness is in the
arrivals and lengths the caller passes (or draws from a seeded generator).

Colocated policy (vLLM V1 / Sarathi-Serve chunked prefill), one engine step at a time:

1. Decode part: every running sequence whose prompt is done generates one token. Before the
   step, the KV cache must hold one more token for each of them; while it would overflow, the
   most recently admitted running sequence is preempted (recompute: it loses its cache and goes
   back to the front of the waiting queue; counted in ``preemptions``).
2. Prefill part: the rest of the token budget (``eff.token_budget`` minus the decodes) goes
   first-come-first-served to the running sequences still prefilling, then to the waiting queue
   as chunked prefill (a prompt may take several steps). Admission needs KV room for the whole
   prompt plus one block of :data:`BLOCK_TOKENS` (reserved at admission) and a free slot in the
   running set (at most ``min(eff.max_seqs, eff.token_budget)`` sequences). With data-parallel
   attention every one of the ``r`` ranks has that budget and cap (``Deployment.seq_cap``): the
   step holds ``r·token_budget`` tokens and ``r·min(max_seqs, token_budget)`` sequences, and one
   prompt's chunk at most a rank's budget less its ``1/r`` share of the decodes; the head of the queue
   blocks the rest (strict FCFS). A preempted request re-prefills its prompt and the tokens it
   had generated.
3. The step lasts ``step_time(shape).step_s`` with shape = one prefill part per chunk (``past``
   = tokens already prefilled, logits only on the chunk that completes the prompt) + the
   decode part at the mean cached context. The step ending a prompt emits the first output
   token (TTFT = end of that step − arrival); a request finishes with its ``osl``-th token.
   An idle engine waits for the next arrival.

Disaggregated policy: ``n_prefill`` prefill-only engines share one FCFS queue (an idle engine
takes the head; each step batches prompts up to the token budget, chunking what does not fit);
a finished prompt's KV cache (``isl · kv_bytes_per_token`` bytes) then crosses the KV link, each
transfer on its own at ``kv_link_bytes_per_s`` (no contention), and joins the least-loaded decode
engine (fewest running + waiting sequences), which runs decode-only continuous batching with the
same KV capacity and preemption rule (a preempted request re-prefills on the decode engine).
The first token comes from the prefill engine, so TTFT = prefill end + transfer − arrival.

Step times are memoised per simulation: prefill chunks exact, decode batch exact, the decode
mean context on a :data:`CTX_GRID_TOKENS` grid.
"""

from __future__ import annotations

import math
from collections import deque
from pathlib import Path

import numpy as np

from planner.deployment import Deployment
from planner.errors import InputError
from planner.serving.sim_engine import (
    _check_fits,
    _count,
    _Engine,
    _kv_capacity,
    _limits,
    _positive,
    _Requests,
    _requests,
    _run,
    _StepTimer,
    _token_list,
)
from planner.serving.sim_result import SimResult
from planner.workload import Workload

__all__ = ["SimResult", "poisson_arrivals", "run_simulation", "simulate_closed_loop", "simulate_colocated",
           "simulate_disaggregated", "simulate_workload"]


# ---------------------------------------------------------------- public API


def simulate_colocated(dep: Deployment, arrivals_s: np.ndarray, isl: np.ndarray, osl: np.ndarray, *,
                       max_requests: int = 20000, max_sim_s: float = 3600.0) -> SimResult:
    """Simulate one colocated instance (chunked prefill + continuous batching, see the module doc).

    ``arrivals_s`` (any order, seconds), ``isl`` and ``osl`` (whole tokens) give one request each.
    Stops after ``max_requests`` completions or ``max_sim_s`` simulated seconds after the first
    arrival; statistics cover the completed requests.
    """
    req = _requests(arrivals_s, isl, osl)
    max_requests, max_sim_s = _limits(max_requests, max_sim_s)
    capacity = _kv_capacity(dep, "dep")
    _check_fits(req.isl, req.osl, capacity, "isl + osl")
    engine = _Engine("colocated", req, _StepTimer(dep), capacity)
    return _run(req, [engine], [], xfer_s=None, closed_loop=0, max_requests=max_requests, max_sim_s=max_sim_s,
                capacity=capacity)


def simulate_disaggregated(prefill: Deployment, decode: Deployment, n_prefill: int, n_decode: int,
                           arrivals_s: np.ndarray, isl: np.ndarray, osl: np.ndarray, *, kv_link_bytes_per_s: float,
                           max_requests: int = 20000, max_sim_s: float = 3600.0) -> SimResult:
    """Simulate ``n_prefill`` prefill-only engines feeding ``n_decode`` decode-only engines over a KV link.

    Prefill engines share one FCFS queue; each finished prompt's KV cache (``isl`` tokens at the
    prefill deployment's KV bytes per token) takes ``bytes / kv_link_bytes_per_s`` to move, then
    joins the least-loaded decode engine. TTFT = prefill end + transfer − arrival. ``max_kv_tokens``
    and ``preemptions`` in the result are those of the decode engines.
    """
    req = _requests(arrivals_s, isl, osl)
    n_prefill, n_decode = _count(n_prefill, "n_prefill"), _count(n_decode, "n_decode")
    link = _positive(kv_link_bytes_per_s, "kv_link_bytes_per_s")
    max_requests, max_sim_s = _limits(max_requests, max_sim_s)
    if prefill.model.id != decode.model.id:
        raise InputError("decode", f"a deployment of the prefill model {prefill.model.id}", decode.model.id)
    cap_p = _kv_capacity(prefill, "prefill")
    cap_d = _kv_capacity(decode, "decode")
    _check_fits(req.isl, req.osl, cap_p, "isl", decode=False)
    _check_fits(req.isl, req.osl, cap_d, "isl + osl")
    queue: deque[int] = deque()
    p_timer, d_timer = _StepTimer(prefill), _StepTimer(decode)
    front = [_Engine("prefill", req, p_timer, cap_p, queue) for _ in range(n_prefill)]
    back = [_Engine("decode", req, d_timer, cap_d) for _ in range(n_decode)]
    model, kv_bytes = prefill.model, prefill.precision.kv_bytes

    def xfer_s(i: int) -> float:
        return req.isl[i] * model.kv_bytes_per_token(kv_bytes, req.isl[i]) / link

    return _run(req, front, back, xfer_s=xfer_s, closed_loop=0, max_requests=max_requests, max_sim_s=max_sim_s,
                capacity=cap_d)


def poisson_arrivals(rate_rps: float, n: int, rng: np.random.Generator | int | None = None,
                     cv: float = 1.0) -> np.ndarray:
    """``n`` arrival times (seconds from 0) at mean rate ``rate_rps``.

    cv = 1: exponential gaps (Poisson); cv = 0: evenly spaced; otherwise gamma gaps with shape
    1/cv² and mean 1/rate, so their coefficient of variation is ``cv`` (> 1 is bursty).
    ``rng`` is a numpy Generator or a seed.
    """
    rate = _positive(rate_rps, "rate_rps")
    n = _count(n, "n")
    if isinstance(cv, bool) or not isinstance(cv, (int, float, np.integer, np.floating)) \
            or not math.isfinite(cv) or cv < 0:
        raise InputError("cv", "a finite number >= 0 (1 = Poisson)", cv)
    gen = np.random.default_rng(rng)
    mean_gap = 1.0 / rate
    if cv == 0:
        gaps = np.full(n, mean_gap)
    elif cv == 1:
        gaps = gen.exponential(mean_gap, n)
    else:
        shape = 1.0 / (cv * cv)
        gaps = gen.gamma(shape, mean_gap / shape, n)
    return np.cumsum(gaps)


def simulate_workload(dep: Deployment, workload: Workload, n_requests: int, seed: int = 0, *,
                      max_requests: int | None = None, max_sim_s: float = 3600.0) -> SimResult:
    """Colocated simulation of ``n_requests`` drawn from ``workload`` with ``default_rng(seed)``:
    lengths from ``workload.sample_requests`` (trace pairs when present), then arrivals at
    ``workload.rate_rps`` with ``workload.arrival_cv``."""
    if not isinstance(workload, Workload):
        raise InputError("workload", "a planner.workload.Workload", type(workload).__name__)
    n = _count(n_requests, "n_requests")
    rng = np.random.default_rng(seed)
    isl, osl = workload.sample_requests(n, rng)
    arrivals = poisson_arrivals(workload.rate_rps, n, rng, workload.arrival_cv)
    return simulate_colocated(dep, arrivals, isl, osl, max_requests=n if max_requests is None else max_requests,
                              max_sim_s=max_sim_s)


def simulate_closed_loop(dep: Deployment, concurrency: int, isl: int | np.ndarray, osl: int | np.ndarray,
                         n_requests: int, *, max_sim_s: float = 3600.0) -> SimResult:
    """Benchmark clients at fixed ``concurrency`` on one colocated instance: ``concurrency``
    requests start at 0 and each completion releases the next request at once, until
    ``n_requests`` have completed. ``isl``/``osl`` are one length for all or one per request."""
    conc = _count(concurrency, "concurrency")
    n = _count(n_requests, "n_requests")
    isl_l = _token_list([isl] * n if np.isscalar(isl) else isl, "isl", n)
    osl_l = _token_list([osl] * n if np.isscalar(osl) else osl, "osl", n)
    max_sim_s = _positive(max_sim_s, "max_sim_s")
    capacity = _kv_capacity(dep, "dep")
    _check_fits(isl_l, osl_l, capacity, "isl + osl")
    req = _Requests([0.0] * n, isl_l, osl_l)
    engine = _Engine("colocated", req, _StepTimer(dep), capacity)
    return _run(req, [engine], [], xfer_s=None, closed_loop=conc, max_requests=n, max_sim_s=max_sim_s,
                capacity=capacity)


MAX_INSTANCES = 4096


def run_simulation(dep: Deployment, *, isl: int | None = None, osl: int | None = None,
                   workload: str | Path | Workload | None = None, rate_rps: float | None = None,
                   concurrency: int | None = None, n_requests: int = 2000, prefill_instances: int = 0,
                   decode_instances: int = 1, seed: int = 0) -> SimResult:
    """What ``planner simulate`` runs: fixed lengths or a workload, at a Poisson rate (colocated, or
    ``prefill_instances`` prefill engines feeding ``decode_instances`` decode engines over the scale-out
    link) or at a closed-loop concurrency. Seeded: the same call gives the same result."""
    if rate_rps is not None and not (rate_rps > 0 and math.isfinite(rate_rps)):
        raise InputError("rate", "a positive number of requests/s", rate_rps)
    if workload is not None and (isl is not None or osl is not None):
        raise InputError("workload", "either a workload or isl/osl, not both")
    if concurrency is not None and prefill_instances:
        raise InputError("prefill_instances", "0 with a concurrency: disaggregated simulation takes a rate")
    for name, val in (("prefill_instances", prefill_instances), ("decode_instances", decode_instances)):
        if val > MAX_INSTANCES:
            raise InputError(name, f"at most {MAX_INSTANCES} instances in one simulation", val)
    if workload is not None and not isinstance(workload, Workload):
        from planner.serving.estimate import read_workload

        workload, stated = read_workload(workload, rate_rps)
        rate_rps = rate_rps if rate_rps is not None else stated
    elif isinstance(workload, Workload) and rate_rps is None:
        rate_rps = workload.rate_rps
    elif workload is None:
        if isl is None or osl is None:
            raise InputError("isl/osl", "both --isl and --osl, or --workload FILE")
        workload = Workload.fixed(rate_rps if rate_rps is not None else 1.0, isl, osl)
    if (rate_rps is None) == (concurrency is None):
        raise InputError("rate/concurrency", "exactly one of a rate or a concurrency")
    rng = np.random.default_rng(seed)
    isl_arr, osl_arr = workload.sample_requests(n_requests, rng)
    if concurrency is not None:
        return simulate_closed_loop(dep, concurrency, isl_arr, osl_arr, n_requests)
    arrivals = poisson_arrivals(rate_rps, n_requests, rng, cv=workload.arrival_cv)
    if prefill_instances:
        link = dep.accelerator.scaleout_bw_bytes_per_s * dep.parallel.gpus
        return simulate_disaggregated(dep, dep, prefill_instances, decode_instances, arrivals, isl_arr, osl_arr,
                                      kv_link_bytes_per_s=link)
    return simulate_colocated(dep, arrivals, isl_arr, osl_arr)
