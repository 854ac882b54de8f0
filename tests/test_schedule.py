"""The day schedule ILP (planner/optimise/schedule.py): against a brute force over reserved counts,
the peak-sized plan, and the direction prices move the choice; rate-profile and lag rules by hand."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from planner.capacity import LOADS, BucketInfo, CandidateInfo, CapacityTable
from planner.errors import InputError
from planner.optimise.ilp import Limits
from planner.optimise.schedule import TierPrice, solve_day
from planner.rate_profile import RateProfile, from_timestamps, parse_rate_profile


def cand(acc: str, cap: float, gpus: int = 1, watts: float = 700.0) -> tuple[CandidateInfo, float]:
    info = CandidateInfo(key=f"{acc}|colo", accelerator=acc, vendor="NVIDIA", family="hopper", tp=gpus, pp=1, ep=1,
                         dp_attn=False, role="colocated", gpus=gpus, price_per_hour=1.0 * gpus, watts=watts * gpus,
                         engine="vllm", precision="bf16", kv_dtype="bf16", token_budget=8192, max_seqs=256,
                         memory_fraction=0.9, max_kv_tokens=100_000)
    return info, cap


def table(cands: list[tuple[CandidateInfo, float]]) -> CapacityTable:
    """One bucket; candidate c carries cap_c req/s per instance."""
    bucket = (BucketInfo(0, 1, 100, 1, 100, 50.0, 50.0, 90.0, 1.0),)
    lat = np.full((len(cands), 1, len(LOADS)), 0.1)
    return CapacityTable(tuple(c for c, _ in cands), bucket, np.array([[cap] for _, cap in cands]),
                         tuple(("ttft",) for _ in cands), lat, lat, np.full((len(cands), 1), 0.05),
                         np.full((len(cands), 1), 0.01), 99.0, 1.0)


def day_cost(cands, rates, prices, rs, max_n: int = 6) -> float:
    """Cheapest day at reserved counts ``rs``, enumerating every on-demand and spot count per period:
    a period is covered when Σ_c (r + o + (1 − q)·s)·cap_c ≥ its rate (one bucket, shares free)."""
    names = [c.accelerator for c, _ in cands]
    caps = [cap for _, cap in cands]
    total = sum(prices[a].fixed * r * len(rates) for a, r in zip(names, rs) if r)
    od = [range(max_n + 1) if prices[a].on_demand is not None else range(1) for a in names]
    sp = [range(max_n + 1) if prices[a].spot is not None else range(1) for a in names]
    for rate in rates:
        cheapest = math.inf
        for os_ in itertools.product(*od):
            for ss in itertools.product(*sp):
                supply = sum((r + o + (1 - prices[a].spot_interruption) * s) * cap
                             for a, r, o, s, cap in zip(names, rs, os_, ss, caps))
                if supply >= rate - 1e-9:
                    cheapest = min(cheapest, sum((prices[a].on_demand or 0) * o + (prices[a].spot or 0) * s
                                                 for a, o, s in zip(names, os_, ss)))
        total += cheapest
    return total


def brute_force(cands, rates, prices, max_n: int = 6) -> float:
    """The cheapest day over every reserved count 0..max_n of each type."""
    ranges = [range(max_n + 1) if prices[c.accelerator].fixed is not None else range(1) for c, _ in cands]
    return min(day_cost(cands, rates, prices, rs, max_n) for rs in itertools.product(*ranges))


FIVE = [2.0, 5.0, 9.0, 6.0, 3.0]


@pytest.mark.parametrize("prices", [
    {"A": TierPrice(on_demand=3.0, fixed=2.0), "B": TierPrice(on_demand=2.0, fixed=1.5)},
    {"A": TierPrice(on_demand=3.0, fixed=1.0, spot=1.2, spot_interruption=0.25), "B": TierPrice(2.5, 2.4)},
    {"A": TierPrice(on_demand=1.0, fixed=0.9, spot=0.5, spot_interruption=0.5), "B": TierPrice(None, 0.7)},
])
def test_reserved_counts_match_brute_force(prices):
    cands = [cand("A", 2.0), cand("B", 1.5)]
    sol = solve_day(table(cands), [1.0], FIVE, 1.0, prices)
    best = brute_force(cands, FIVE, prices)
    assert sol.status == "optimal"
    assert sol.cost == pytest.approx(best, rel=1e-6)
    # the reserved part: the ILP's reserved counts reach the brute-force optimum
    rs = [sol.fixed.get(f"{c.accelerator}|colo", 0) for c, _ in cands]
    assert day_cost(cands, FIVE, prices, rs) == pytest.approx(best, rel=1e-6)


def day_profile() -> list[float]:
    """24 hourly rates, night 2.5 req/s, peak 10 req/s (4:1), smooth ramps."""
    return [2.5 + 7.5 * max(0.0, math.sin(math.pi * (h - 6) / 16)) ** 2 if 6 <= h <= 22 else 2.5 for h in range(24)]


def test_day_costs_less_than_peak_and_never_runs_short():
    cands = [cand("A", 1.0), cand("B", 2.6, gpus=2)]
    prices = {"A": TierPrice(2.0, 1.3), "B": TierPrice(3.8, 2.6)}
    rates = day_profile()
    assert max(rates) / min(rates) == pytest.approx(4.0)
    sol = solve_day(table(cands), [1.0], rates, 1.0, prices)
    peak = solve_day(table(cands), [1.0], [max(rates)] * 24, 1.0, prices)
    assert sol.ok and peak.ok and sol.cost < peak.cost
    caps = {"A|colo": 1.0, "B|colo": 2.6}
    for p, rate in enumerate(rates):
        supply = sum(caps[k] * n for (k, pp), n in sol.serving.items() if pp == p)
        bought = sum(caps[k] * (sol.fixed.get(k, 0) + sol.on_demand.get(k, (0,) * 24)[p]) for k in caps)
        assert supply >= rate - 1e-6 and bought >= supply - 1e-6


def test_more_rate_never_costs_less():
    cands = [cand("A", 1.0), cand("B", 2.6, gpus=2)]
    prices = {"A": TierPrice(2.0, 1.3), "B": TierPrice(3.8, 2.6)}
    costs = [solve_day(table(cands), [1.0], [x * r for r in FIVE], 1.0, prices).cost for x in (0.5, 1.0, 1.5)]
    assert costs == sorted(costs)


def test_prices_move_the_choice():
    cands = [cand("A", 1.0)]
    base = solve_day(table(cands), [1.0], FIVE, 1.0, {"A": TierPrice(2.0, 1.5)})
    cheap_res = solve_day(table(cands), [1.0], FIVE, 1.0, {"A": TierPrice(2.0, 0.8)})
    dear_res = solve_day(table(cands), [1.0], FIVE, 1.0, {"A": TierPrice(2.0, 1.95)})
    r = [s.fixed.get("A|colo", 0) for s in (dear_res, base, cheap_res)]
    assert r == sorted(r) and r[0] < r[-1]
    # by hand: the k-th reserved instance costs 0.8 × 5 periods = 4 and saves 2 per period whose rate is
    # >= k (5, 5, 4, 3, 3, 2, 1, 1, 1 periods for k = 1..9): worth it up to k = 5, a tie at k = 6;
    # day = 5 × 4 + on-demand (9 − 5 + 6 − 5) × 2 = 30
    assert cheap_res.fixed["A|colo"] in (5, 6) and cheap_res.cost == pytest.approx(30.0)
    no_spot = solve_day(table(cands), [1.0], FIVE, 1.0, {"A": TierPrice(2.0, None)})
    spot = solve_day(table(cands), [1.0], FIVE, 1.0, {"A": TierPrice(2.0, None, 0.9, 0.25)})
    assert not no_spot.spot and sum(map(sum, spot.spot.values())) > 0 and spot.cost < no_spot.cost
    # spot at q = 0.25 buys 1/(1-q) as many: 9 req/s needs 12 spot instances (0.9 × 12 < 2 × 9)
    assert spot.spot["A|colo"][2] == 12
    # an owned accelerator (cheap fixed tier) takes the base load from a cloud one
    two = [cand("A", 1.0), cand("B", 1.0)]
    cloud = solve_day(table(two), [1.0], FIVE, 1.0, {"A": TierPrice(2.0, 1.6), "B": TierPrice(None, 1.9)})
    owned = solve_day(table(two), [1.0], FIVE, 1.0, {"A": TierPrice(2.0, 1.6), "B": TierPrice(None, 0.3)})
    assert owned.fixed.get("B|colo", 0) > cloud.fixed.get("B|colo", 0)


def test_energy_objective_prefers_fewer_watts():
    cands = [cand("A", 1.0, watts=700), cand("B", 1.0, watts=300)]
    prices = {"A": TierPrice(1.0, None), "B": TierPrice(2.0, None)}
    by_cost = solve_day(table(cands), [1.0], FIVE, 1.0, prices)
    by_energy = solve_day(table(cands), [1.0], FIVE, 1.0, prices, Limits(objective="energy"))
    assert "A|colo" in by_cost.on_demand and "B|colo" not in by_cost.on_demand
    assert "B|colo" in by_energy.on_demand and "A|colo" not in by_energy.on_demand


def test_lag_keeps_capacity_ahead_of_the_ramp():
    prof = RateProfile((1.0, 1.0, 4.0, 2.0), period_s=3600, scale_up_lag_s=600)
    assert prof.lead_periods == 1
    assert prof.planned_rates() == (1.0, 4.0, 4.0, 2.0)
    # two periods ahead, wrapping: the last period buys for the next day's first two
    assert RateProfile((1.0, 4.0, 2.0, 1.0), 3600, 7200).planned_rates() == (4.0, 4.0, 2.0, 4.0)
    assert RateProfile((1.0, 3.0), 3600, 0).planned_rates() == (1.0, 3.0)


def test_profile_parsing_and_trace_counts():
    assert parse_rate_profile([1, 2, 3], "s").rates_rps == (1.0, 2.0, 3.0)
    p = parse_rate_profile({"rates": [1, 2], "period_s": 1800, "scale_up_lag_s": 300}, "s")
    assert (p.period_s, p.scale_up_lag_s, p.span_s) == (1800.0, 300.0, 3600.0)
    # 10 requests in the first 100 s, 30 in the next 100 s
    t = np.concatenate([np.linspace(0, 99, 10), np.linspace(100, 199, 30)])
    assert from_timestamps(t, 100.0) == pytest.approx((0.1, 0.3))
    for bad, field in ((["x"], "rates[0]"), ([-1], "rates[0]"), ({"rates": [1], "period_s": 0}, "period_s"),
                       ({"rates": [1], "from_trace": True}, "rate_profile"), ({"rate": [1]}, "did you mean"),
                       ([0, 0], "positive rate")):
        with pytest.raises(Exception, match=field.replace("[", r"\[").replace("]", r"\]")):
            parse_rate_profile(bad, "s")
    with pytest.raises(InputError, match="from_trace"):
        parse_rate_profile({"from_trace": True}, "s")
