"""The simulator referees the planner on random scenarios (a CI-sized slice of
``benchmarks/replay_property.py``, which runs 100): each plan, replayed whole by ``verify_plan``,
reaches its SLO percentile less 2 points, and the plans are tight (median planned GPUs over the
fewest whose replay still meets the SLO at most 1.25)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from planner.errors import PlannerError
from planner.planning import plan
from planner.scenario import parse_scenario
from planner.verify import verify_plan

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from replay_property import scenario  # noqa: E402

CHUNKS = [range(k, 25, 5) for k in range(5)]


@pytest.mark.parametrize("cases", CHUNKS, ids=[f"slice{k}" for k in range(5)])
def test_replayed_plans_meet_the_slo_and_are_tight(cases):
    short, ratios = [], []
    for i in cases:
        raw = scenario(i, 1000)
        sc = parse_scenario(raw)
        try:
            p = plan(sc, alternatives=False)
        except PlannerError:
            continue
        v = verify_plan(p, sc, n_requests=2500, seed=0)
        if v.attainment < raw["slo"]["percentile"] / 100.0 - 0.02:
            short.append((i, round(v.attainment, 3)))
        if v.overprovision_ratio is not None:
            ratios.append(v.overprovision_ratio)
    assert not short, short
    assert ratios and float(np.median(ratios)) <= 1.25, ratios
