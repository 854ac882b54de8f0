"""Discrete-event replay of a whole fleet: several pools of engines in one event loop.

A pool is ``instances`` engines of one deployment and one role (the engines and their step
model are those of ``planner.serving.sim_engine``; see ``planner.serving.simulate`` for the
scheduling policy inside one engine). Each request names its front pool and, when that pool is a
prefill pool, its decode pool:

- **colocated pool**: N engines behind a least-outstanding-requests balancer: an arriving request
  joins the engine with the fewest requests in system (running + waiting; ties to the lowest
  index), and stays there until it finishes;
- **prefill pool**: the pool's engines share one FCFS queue (an idle engine takes the head);
  a finished prompt's KV cache (``isl · kv_bytes_per_token`` bytes of the prefill deployment)
  crosses the pool's KV link on its own at ``kv_link_bytes_per_s`` (no contention), the first
  token is delivered then (TTFT = prefill end + transfer − arrival), and the request joins the
  least-loaded engine of its decode pool;
- **decode pool**: decode-only continuous batching, least-loaded dispatch of arriving KV caches.

Deterministic: no clock, no random state; the caller draws arrivals, lengths and routes.
Requests that cannot fit their pool's KV cache alone (prompt + outputs + one block) are not run
(``rejected``); requests unfinished when the simulated clock passes ``max_sim_s`` after the first
arrival keep NaN finish times. Per pool the replay sums engine busy time (seconds with a step
running), so utilisation = busy_s / (instances · duration_s).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from planner.checks import finite_array
from planner.deployment import Deployment
from planner.errors import InputError
from planner.serving.sim_engine import BLOCK_TOKENS, _Engine, _kv_capacity, _Requests, _StepTimer, _token_list

ROLES = ("colocated", "prefill", "decode")

__all__ = ["FleetRun", "Pool", "simulate_fleet"]


@dataclass(frozen=True)
class Pool:
    """``instances`` engines of ``dep`` in ``role``; ``kv_link_bytes_per_s`` is the KV link of one
    prefill instance (prefill pools only)."""

    dep: Deployment
    role: str
    instances: int
    kv_link_bytes_per_s: float = 0.0

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InputError("role", " or ".join(ROLES), self.role)
        if isinstance(self.instances, bool) or not isinstance(self.instances, int) or self.instances < 1:
            raise InputError("instances", "a whole number >= 1", self.instances)
        if self.role == "prefill" and not (self.kv_link_bytes_per_s > 0 and math.isfinite(self.kv_link_bytes_per_s)):
            raise InputError("kv_link_bytes_per_s", "a positive link rate for a prefill pool", self.kv_link_bytes_per_s)


@dataclass(frozen=True, eq=False)
class FleetRun:
    """Per-request times (seconds; NaN where a request did not get that far) and per-pool totals.

    ``duration_s`` runs from the first arrival to the last completion; ``busy_s[p]`` is the summed
    step time of pool p's engines; ``served[p]`` the requests that finished with pool p as their
    front (colocated/prefill) or back (decode) pool; ``rejected`` marks requests too long for their
    pool's KV cache (never run).
    """

    arrival_s: np.ndarray
    first_s: np.ndarray
    finish_s: np.ndarray
    duration_s: float
    busy_s: tuple[float, ...]
    served: tuple[int, ...]
    preemptions: tuple[int, ...]
    rejected: np.ndarray


def _fits(pools: list[Pool], caps: list[int], isl: list[int], osl: list[int], front: np.ndarray,
          back: np.ndarray) -> np.ndarray:
    ok = np.ones(len(isl), dtype=bool)
    for i in range(len(isl)):
        f, b = int(front[i]), int(back[i])
        need = isl[i] + BLOCK_TOKENS + (osl[i] if pools[f].role == "colocated" else 0)
        ok[i] = need <= caps[f] and (b < 0 or isl[i] + osl[i] + BLOCK_TOKENS <= caps[b])
    return ok


def _check_routes(pools: list[Pool], front: np.ndarray, back: np.ndarray, n: int) -> None:
    if front.shape != (n,) or back.shape != (n,):
        raise InputError("front/back", f"one pool index per request ({n})", (front.shape, back.shape))
    for i in range(n):
        f, b = int(front[i]), int(back[i])
        if not 0 <= f < len(pools) or pools[f].role == "decode":
            raise InputError("front", "the index of a colocated or prefill pool", f, where=f"request {i}")
        if pools[f].role == "prefill" and not (0 <= b < len(pools) and pools[b].role == "decode"):
            raise InputError("back", "the index of a decode pool for a prefill route", b, where=f"request {i}")
        if pools[f].role == "colocated" and b != -1:
            raise InputError("back", "-1 for a colocated route", b, where=f"request {i}")


def simulate_fleet(pools: list[Pool], arrivals_s: object, isl: object, osl: object, front: object,
                   back: object, *, max_sim_s: float = 36000.0) -> FleetRun:
    """Replay requests through ``pools``: request i arrives at ``arrivals_s[i]`` with ``isl[i]``
    prompt and ``osl[i]`` output tokens, enters pool ``front[i]`` and, from a prefill pool, decodes
    on pool ``back[i]`` (-1 for colocated routes). See the module doc for the policies."""
    if not pools:
        raise InputError("pools", "at least one pool", pools)
    arr = finite_array(arrivals_s, "arrivals_s")
    n = int(arr.size)
    isl_l, osl_l = _token_list(isl, "isl", n), _token_list(osl, "osl", n)
    front_a = np.asarray(front, dtype=np.int64)
    back_a = np.asarray(back, dtype=np.int64)
    _check_routes(pools, front_a, back_a, n)
    caps = [_kv_capacity(p.dep, f"pool {k} ({p.role})") for k, p in enumerate(pools)]
    ok = _fits(pools, caps, isl_l, osl_l, front_a, back_a)
    req = _Requests([float(a) for a in arr], isl_l, osl_l)
    timers = [_StepTimer(p.dep) for p in pools]
    queues: list[deque[int] | None] = [deque() if p.role == "prefill" else None for p in pools]
    engines: list[_Engine] = []
    pool_of: list[int] = []
    members: list[list[int]] = []
    for k, p in enumerate(pools):
        members.append(list(range(len(engines), len(engines) + p.instances)))
        for _ in range(p.instances):
            engines.append(_Engine(p.role, req, timers[k], caps[k], queues[k]))
            pool_of.append(k)
    busy = [0.0] * len(pools)
    served = [0] * len(pools)
    order = sorted((i for i in range(n) if ok[i]), key=req.arrival_s.__getitem__)
    times = [req.arrival_s[i] for i in order]
    t0 = times[0] if times else 0.0
    end_s = t0 + max_sim_s
    events: list[tuple[float, int, int, int]] = []  # (time, seq, kind, engine or request)
    STEP, KV = 0, 1
    seq, ptr, t, t_done = 0, 0, t0, t0
    dirty: set[int] = set()

    def least_loaded(k: int) -> int:
        return min(members[k], key=lambda e: engines[e].load)

    while True:
        t_arr = times[ptr] if ptr < len(times) else math.inf
        t_ev = events[0][0] if events else math.inf
        t_next = min(t_arr, t_ev)
        if t_next > t and dirty:  # everything at time t is in: start idle engines that have work
            for e in sorted(dirty):
                eng = engines[e]
                if not eng.busy:
                    dt = eng.plan()
                    if dt is not None:
                        eng.busy = True
                        busy[pool_of[e]] += dt
                        heapq.heappush(events, (t + dt, seq, STEP, e))
                        seq += 1
            dirty.clear()
            t_ev = events[0][0] if events else math.inf
            t_next = min(t_arr, t_ev)
        if t_next == math.inf or t_next > end_s:
            break
        t = t_next
        if t_arr <= t_ev:
            i = order[ptr]
            ptr += 1
            k = int(front_a[i])
            if pools[k].role == "prefill":
                queues[k].append(i)  # type: ignore[union-attr]
                dirty.update(e for e in members[k] if not engines[e].busy)
            else:
                e = least_loaded(k)
                engines[e].waiting.append(i)
                dirty.add(e)
            continue
        _, _, kind, x = heapq.heappop(events)
        if kind == STEP:
            k = pool_of[x]
            done, handoff = engines[x].finish_step(t)
            dirty.add(x)
            if done:
                served[k] += len(done)
                t_done = t
            for i in handoff:
                link = pools[k].kv_link_bytes_per_s
                xfer = req.isl[i] * pools[k].dep.model.kv_bytes_per_token(pools[k].dep.precision.kv_bytes,
                                                                            req.isl[i]) / link
                heapq.heappush(events, (t + xfer, seq, KV, i))
                seq += 1
        else:  # KV cache arrived: first token delivered, decoding continues in the decode pool
            req.first_s[x] = t
            k = int(back_a[x])
            if req.gen[x] >= req.osl[x]:
                req.finish_s[x] = t
                served[k] += 1
                t_done = t
            else:
                req.loaded[x] = True
                e = least_loaded(k)
                engines[e].waiting.append(x)
                dirty.add(e)
    first = np.array(req.first_s, dtype=float)
    finish = np.array(req.finish_s, dtype=float)
    first[first < 0] = np.nan
    finish[finish < 0] = np.nan
    pre = [0] * len(pools)
    for e, eng in enumerate(engines):
        pre[pool_of[e]] += eng.preemptions
    return FleetRun(arrival_s=arr.astype(float), first_s=first, finish_s=finish, duration_s=float(t_done - t0),
                    busy_s=tuple(busy), served=tuple(served), preemptions=tuple(pre), rejected=~ok)
