"""Discrete-event serving simulation: policy checks against the step model and queueing laws."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.api import deployment
from planner.deployment import Deployment
from planner.errors import InputError
from planner.perf.memory import memory_plan
from planner.perf.shape import decode_shape, prefill_shape
from planner.perf.step import step_time
from planner.profile import Profile
from planner.serving.simulate import (
    SimResult,
    poisson_arrivals,
    simulate_closed_loop,
    simulate_colocated,
    simulate_disaggregated,
    simulate_workload,
)
from planner.workload import Fixed, LogNormal, Workload

KEYS = {"mean", "p50", "p90", "p95", "p99"}


@pytest.fixture(scope="module")
def dep() -> Deployment:
    return deployment("llama-3.1-8b", "H100-SXM")


def step_s(d: Deployment, shape) -> float:
    return step_time(d.model, d.accelerator, d.parallel, d.precision, shape, d.eff).step_s


def small_kv(d: Deployment, kv_tokens: int) -> Deployment:
    """The same deployment with a runtime overhead that leaves about ``kv_tokens`` of KV cache."""
    plan = memory_plan(d.model, d.accelerator, d.parallel, d.precision, d.eff)
    overhead = plan.overhead_bytes_per_gpu + plan.kv_room_bytes_per_gpu - kv_tokens * plan.kv_bytes_per_token_per_gpu
    eff = replace(d.eff, runtime_overhead_bytes=overhead)
    return replace(d, profile=Profile(engine="tiny-kv", defaults=eff))


def lognormal_workload(rate_rps: float) -> Workload:
    return Workload(rate_rps, LogNormal.from_mean_p99(800, 3000, max_tokens=4096),
                    LogNormal.from_mean_p99(150, 600, max_tokens=1024))


def test_deterministic_for_a_seed(dep):
    wl = lognormal_workload(10.0)
    a = simulate_workload(dep, wl, 500, seed=3)
    b = simulate_workload(dep, wl, 500, seed=3)
    c = simulate_workload(dep, wl, 500, seed=4)
    assert a == b
    assert a.to_dict() == b.to_dict()
    assert a.to_dict() != c.to_dict()
    assert a.n_requests == 500
    assert set(a.ttft_s) == set(a.tpot_s) == set(a.e2e_s) == KEYS
    d = a.to_dict()
    assert isinstance(d["ttft_s"], dict) and d["max_kv_tokens"] == a.max_kv_tokens


def test_low_rate_matches_single_request_step_times(dep):
    n, isl, osl = 100, 1000, 64
    r = simulate_colocated(dep, poisson_arrivals(0.02, n, 1), np.full(n, isl), np.full(n, osl), max_sim_s=1e5)
    assert r.n_requests == n and r.preemptions == 0
    prefill_alone = step_s(dep, prefill_shape(1, isl))
    decode_alone = step_s(dep, decode_shape(1, isl + osl // 2))
    assert r.ttft_s["p50"] == pytest.approx(prefill_alone, rel=0.05)
    assert r.ttft_s["mean"] == pytest.approx(prefill_alone, rel=0.05)
    assert r.tpot_s["mean"] == pytest.approx(decode_alone, rel=0.05)
    assert r.mean_decode_batch == pytest.approx(1.0, rel=0.05)


def test_long_prompt_is_prefilled_in_chunks(dep):
    budget = int(dep.eff.token_budget)
    isl = 2 * budget + 1000
    r = simulate_colocated(dep, [0.0], [isl], [1])
    chunks = [prefill_shape(1, budget, 0, False), prefill_shape(1, budget, budget, False),
              prefill_shape(1, 1000, 2 * budget, True)]
    assert r.ttft_s["mean"] == pytest.approx(sum(step_s(dep, s) for s in chunks), rel=1e-9)
    assert r.e2e_s["mean"] == r.ttft_s["mean"]  # osl = 1 finishes with the first token
    assert math.isnan(r.tpot_s["mean"])


def test_saturated_closed_loop_beats_low_concurrency(dep):
    low = simulate_closed_loop(dep, 2, 512, 64, 100)
    high = simulate_closed_loop(dep, 128, 512, 64, 600)
    assert high.output_tokens_per_s >= low.output_tokens_per_s
    assert high.output_tokens_per_s > 5 * low.output_tokens_per_s  # batching amortises the weight reads
    assert high.tpot_s["mean"] > low.tpot_s["mean"]
    assert high.mean_decode_batch > 50


def test_ttft_tail_grows_with_rate(dep):
    rng = np.random.default_rng(0)
    n = 800
    isl, osl = rng.integers(256, 2048, n), rng.integers(32, 256, n)
    gaps = rng.exponential(1.0, n)
    p99 = [simulate_colocated(dep, np.cumsum(gaps) / rate, isl, osl).ttft_s["p99"] for rate in (2.0, 15.0, 30.0)]
    assert p99[0] < p99[1] < p99[2]


def test_littles_law(dep):
    r = simulate_workload(dep, lognormal_workload(15.0), 1000, seed=1)
    assert r.mean_in_system == pytest.approx(r.requests_per_s * r.e2e_s["mean"], rel=0.10)
    conc = 32
    c = simulate_closed_loop(dep, conc, 512, 128, 800)
    assert c.requests_per_s * c.e2e_s["mean"] == pytest.approx(conc, rel=0.10)
    assert c.mean_in_system == pytest.approx(conc, rel=0.10)


def test_tiny_kv_cache_preempts(dep):
    tiny = small_kv(dep, 4000)
    cap = memory_plan(tiny.model, tiny.accelerator, tiny.parallel, tiny.precision, tiny.eff).max_kv_tokens
    assert 3900 <= cap <= 4100
    n = 200
    arrivals = poisson_arrivals(20.0, n, 0)
    r = simulate_colocated(tiny, arrivals, np.full(n, 300), np.full(n, 400))
    assert r.max_kv_tokens == cap
    assert r.preemptions > 0
    assert r.n_requests == n  # every preempted request still finishes
    assert r.mean_decode_batch * 300 < cap  # the cache, not max_seqs, bounds the batch
    roomy = simulate_colocated(dep, arrivals, np.full(n, 300), np.full(n, 400))
    assert roomy.preemptions == 0
    assert r.e2e_s["mean"] > roomy.e2e_s["mean"]


_TINY: dict[str, Deployment] = {}


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 5), st.integers(1, 1500), st.integers(1, 600)), min_size=1, max_size=40),
       st.booleans())
def test_every_request_finishes_under_kv_pressure(reqs, disaggregated):
    if not _TINY:
        _TINY["d"] = small_kv(deployment("llama-3.1-8b", "H100-SXM"), 2500)
    tiny = _TINY["d"]
    arrivals, isl, osl = (np.array(c) for c in zip(*reqs))
    if disaggregated:
        r = simulate_disaggregated(tiny, tiny, 1, 2, arrivals, isl, osl, kv_link_bytes_per_s=1e10)
    else:
        r = simulate_colocated(tiny, arrivals, isl, osl)
    assert r.n_requests == len(reqs)
    assert 0 < r.ttft_s["mean"] <= r.e2e_s["mean"]
    assert r.ttft_s["p99"] <= r.e2e_s["p99"]
    assert math.isnan(r.tpot_s["mean"]) or r.tpot_s["mean"] > 0
    assert r.output_tokens_per_s == pytest.approx(r.requests_per_s * osl.mean())


def test_request_longer_than_kv_cache_is_rejected(dep):
    tiny = small_kv(dep, 4000)
    with pytest.raises(InputError, match="isl"):
        simulate_colocated(tiny, [0.0], [3000], [2000])


def test_disaggregated_ttft_includes_kv_transfer(dep):
    n, isl, osl = 50, 1000, 32
    arrivals = poisson_arrivals(0.05, n, 2)
    link = 1e8  # a slow link: about 1.3 s for 1000 tokens of 128 KiB
    xfer = isl * dep.model.kv_bytes_per_token(dep.precision.kv_bytes) / link
    r = simulate_disaggregated(dep, dep, 1, 1, arrivals, np.full(n, isl), np.full(n, osl), kv_link_bytes_per_s=link)
    assert r.n_requests == n
    assert r.ttft_s["p50"] == pytest.approx(step_s(dep, prefill_shape(1, isl)) + xfer, rel=0.05)
    colo = simulate_colocated(dep, arrivals, np.full(n, isl), np.full(n, osl))
    assert r.ttft_s["mean"] - colo.ttft_s["mean"] == pytest.approx(xfer, rel=0.05)
    assert r.tpot_s["mean"] == pytest.approx(step_s(dep, decode_shape(1, isl + osl // 2)), rel=0.05)


def test_disaggregated_pools_share_the_load(dep):
    rng = np.random.default_rng(5)
    n = 600
    isl, osl = rng.integers(256, 2048, n), rng.integers(32, 256, n)
    arrivals = poisson_arrivals(25.0, n, rng)
    one = simulate_disaggregated(dep, dep, 1, 1, arrivals, isl, osl, kv_link_bytes_per_s=50e9)
    more = simulate_disaggregated(dep, dep, 2, 3, arrivals, isl, osl, kv_link_bytes_per_s=50e9)
    assert more.n_requests == one.n_requests == n
    assert more.ttft_s["p99"] <= one.ttft_s["p99"]
    assert more.mean_decode_batch < one.mean_decode_batch


def test_limits_stop_the_simulation(dep):
    n = 400
    arrivals = poisson_arrivals(5.0, n, 0)
    r = simulate_colocated(dep, arrivals, np.full(n, 256), np.full(n, 64), max_requests=50)
    assert r.n_requests == 50
    t = simulate_colocated(dep, arrivals, np.full(n, 256), np.full(n, 64), max_sim_s=10.0)
    assert 0 < t.n_requests < n
    assert t.duration_s <= 10.0


def test_poisson_arrivals_rate_and_cv():
    rng = np.random.default_rng(0)
    for cv in (1.0, 0.5, 2.0):
        gaps = np.diff(poisson_arrivals(4.0, 20000, rng, cv=cv))
        assert gaps.mean() == pytest.approx(0.25, rel=0.05)
        assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.05)
    even = poisson_arrivals(2.0, 5, 0, cv=0.0)
    assert np.allclose(np.diff(even), 0.5)
    assert np.array_equal(poisson_arrivals(3.0, 10, 7), poisson_arrivals(3.0, 10, 7))


def test_workload_from_trace_pairs(dep):
    pairs = np.array([[512, 128], [1024, 64], [200, 300]])
    wl = Workload(5.0, Fixed(1), Fixed(1), pairs=pairs)
    r = simulate_workload(dep, wl, 200, seed=0)
    assert r.n_requests == 200
    assert r.output_tokens_per_s / r.requests_per_s == pytest.approx(164, rel=0.15)


@pytest.mark.parametrize("call", [
    lambda d: poisson_arrivals(0.0, 10, 0),
    lambda d: poisson_arrivals(-1.0, 10, 0),
    lambda d: poisson_arrivals(1.0, 0, 0),
    lambda d: poisson_arrivals(1.0, 10, 0, cv=-0.5),
    lambda d: simulate_colocated(d, [], [], []),
    lambda d: simulate_colocated(d, [0.0, 1.0], [100], [10]),
    lambda d: simulate_colocated(d, [0.0, 1.0], [100, 100], [10]),
    lambda d: simulate_colocated(d, [0.0, math.nan], [100, 100], [10, 10]),
    lambda d: simulate_colocated(d, [0.0], [-5], [10]),
    lambda d: simulate_colocated(d, [0.0], [100], [0]),
    lambda d: simulate_colocated(d, [0.0], [100.5], [10]),
    lambda d: simulate_colocated(d, [0.0], [100], [10], max_requests=0),
    lambda d: simulate_colocated(d, [0.0], [100], [10], max_sim_s=0.0),
    lambda d: simulate_closed_loop(d, 0, 100, 10, 10),
    lambda d: simulate_closed_loop(d, 4, 100, 10, 0),
    lambda d: simulate_closed_loop(d, 4, [100, 200], 10, 10),
    lambda d: simulate_disaggregated(d, d, 0, 1, [0.0], [100], [10], kv_link_bytes_per_s=1e9),
    lambda d: simulate_disaggregated(d, d, 1, 1, [0.0], [100], [10], kv_link_bytes_per_s=0.0),
    lambda d: simulate_workload(d, "not a workload", 10),
])
def test_bad_input_raises(dep, call):
    with pytest.raises(InputError):
        call(dep)


def test_result_is_frozen(dep):
    r = simulate_closed_loop(dep, 1, 128, 8, 3)
    assert isinstance(r, SimResult)
    with pytest.raises(AttributeError):
        r.n_requests = 0  # type: ignore[misc]
