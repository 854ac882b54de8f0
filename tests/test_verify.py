"""Whole-plan replay in the discrete-event simulator: ``planner.verify`` and the CLI around it."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from planner.deployment import make_deployment
from planner.errors import PlannerError
from planner.planning import plan
from planner.scenario import parse_scenario
from planner.serving.sim_fleet import Pool, simulate_fleet
from planner.verify import verify_plan

RAW = {"name": "verify-test", "model": "llama-3.1-8b",
       "workload": {"rate_rps": 40, "input": "lognormal:mean=800,p99=4000", "output": "lognormal:mean=200,p99=800"},
       "buckets": {"isl": 2, "osl": 2}, "slo": {"ttft_s": 1.0, "tpot_s": 0.05, "percentile": 99},
       "accelerators": ["H100-SXM"], "parallelism": {"tp": [1], "pp": [1]}, "disaggregation": "off"}
N = 1500


@pytest.fixture(scope="module")
def colocated():
    sc = parse_scenario(RAW)
    return sc, plan(sc, alternatives=False)


@pytest.fixture(scope="module")
def verified(colocated):
    sc, p = colocated
    return verify_plan(p, sc, n_requests=N, seed=3)


def test_same_seed_same_result_other_seed_other_draw(colocated, verified):
    sc, p = colocated
    again = verify_plan(p.to_dict(), sc, n_requests=N, seed=3).to_dict()
    first = verified.to_dict()
    first.pop("elapsed_s"), again.pop("elapsed_s")
    assert again == first
    other = verify_plan(p, sc, n_requests=N, seed=4, search_smallest=False)
    assert [b.requests for b in other.buckets] != [b.requests for b in verified.buckets]


def test_planned_counts_meet_and_halved_counts_miss(colocated, verified):
    sc, p = colocated
    assert p.groups[0].instances >= 2
    assert verified.meets and verified.attainment >= 0.99
    assert all(b.meets for b in verified.buckets)
    half = copy.deepcopy(p.to_dict())
    for g in half["groups"]:
        g["instances"] = max(1, g["instances"] // 2)
    v = verify_plan(half, sc, n_requests=N, seed=3)
    assert not v.meets and v.attainment < 0.9
    assert v.overprovision_ratio is None and v.sufficient_gpus is None
    assert "miss the SLO" in v.notes[0]


def test_smallest_counts_found_meet_and_ratio_at_least_one(colocated, verified):
    sc, p = colocated
    assert verified.overprovision_ratio is not None and verified.overprovision_ratio >= 1.0
    assert verified.smallest_meets
    small = copy.deepcopy(p.to_dict())
    for g, check in zip(small["groups"], verified.groups, strict=True):
        assert 1 <= check.smallest_instances <= g["instances"]
        g["instances"] = check.smallest_instances
    again = verify_plan(small, sc, n_requests=N, seed=3, search_smallest=False)
    assert again.meets
    assert verified.sufficient_gpus == again.planned_gpus
    # one fewer instance than the smallest found misses (the search is tight), unless it is already 1
    for k, check in enumerate(verified.groups):
        if check.smallest_instances > 1 and check.searched:
            fewer = copy.deepcopy(p.to_dict())
            fewer["groups"][k]["instances"] = check.smallest_instances - 1
            assert not verify_plan(fewer, sc, n_requests=N, seed=3, search_smallest=False).meets


def test_routing_shares_respected(colocated):
    """Split the one group into two at 30/70 shares: the replay routes within a few points of that."""
    sc, p = colocated
    d = copy.deepcopy(p.to_dict())
    g = d["groups"][0]
    a, b = dict(g), dict(g)
    a["bucket_shares"] = {k: 0.3 for k in g["bucket_shares"]}
    b["bucket_shares"] = {k: 0.7 for k in g["bucket_shares"]}
    a["instances"], b["instances"] = 2, 2
    d["groups"] = [a, b]
    v = verify_plan(d, sc, n_requests=2000, search_smallest=False)
    routed = [x.requests for x in v.groups]
    assert sum(routed) == 2000
    assert abs(routed[0] / 2000 - 0.3) < 0.03 and abs(routed[1] / 2000 - 0.7) < 0.03


def test_disaggregated_plan_replays_prefill_and_decode():
    sc = parse_scenario({**RAW, "disaggregation": "only", "workload": {**RAW["workload"], "rate_rps": 20}})
    p = plan(sc, alternatives=False)
    v = verify_plan(p, sc, n_requests=800, search_smallest=False)
    roles = {g.role for g in v.groups}
    assert roles == {"prefill", "decode"}
    pre = next(g for g in v.groups if g.role == "prefill")
    dec = next(g for g in v.groups if g.role == "decode")
    assert pre.requests == dec.requests == 800
    assert 0 < pre.utilisation <= 1 and dec.requests_per_s > 0
    assert v.meets


def test_least_outstanding_balancer_spreads_colocated_requests():
    dep = make_deployment("llama-3.1-8b", "H100-SXM")
    n = 400
    arr = np.arange(n) * 0.02
    run = simulate_fleet([Pool(dep, "colocated", 4)], arr, np.full(n, 512), np.full(n, 64), np.zeros(n, int),
                         np.full(n, -1))
    assert not np.isnan(run.finish_s).any()
    assert run.served == (n,) and 0 < run.busy_s[0] <= 4 * run.duration_s


def test_bad_plan_and_wrong_model_are_one_line_errors(colocated):
    sc, p = colocated
    with pytest.raises(PlannerError, match="missing groups"):
        verify_plan({"model": "x", "rate_rps": 1, "slo": {}, "buckets": []}, sc)
    other = parse_scenario({**RAW, "model": "llama-3.1-70b"})
    with pytest.raises(PlannerError, match="not the plan's"):
        verify_plan(p, other, n_requests=100)
    d = p.to_dict()
    d.pop("scenario_file", None)
    with pytest.raises(PlannerError, match="give --scenario"):
        verify_plan(d, None, n_requests=100)


def _exe() -> str:
    return str(Path(sys.executable).with_name("planner"))


def test_cli_plan_verify_json_and_simulate_plan(tmp_path):
    scen = tmp_path / "s.yaml"
    scen.write_text(yaml.safe_dump(RAW))
    res = subprocess.run([_exe(), "plan", str(scen), "--verify", "--verify-requests", "600", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["scenario_file"] == str(scen.resolve())
    ver = data["verification"]
    assert ver["meets"] is True and ver["n_requests"] == 600 and len(ver["buckets"]) == len(data["buckets"])
    saved = tmp_path / "plan.json"
    saved.write_text(res.stdout)
    res2 = subprocess.run([_exe(), "simulate", "--plan", str(saved), "--requests", "600", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert res2.returncode == 0, res2.stderr
    again = json.loads(res2.stdout)
    again.pop("elapsed_s"), ver.pop("elapsed_s")
    assert again == ver  # the saved plan and its scenario file replay to the same figures
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    res3 = subprocess.run([_exe(), "simulate", "--plan", str(bad)], capture_output=True, text=True, timeout=60)
    assert res3.returncode == 2 and res3.stderr.count("\n") == 1 and "not JSON" in res3.stderr


def test_replay_keeps_a_truncated_top_class_one_class_and_picks_the_bucket_by_answer_length():
    """Buckets reaching past the model's context are planned truncated, each to leave room for its own
    answer, so the top class's buckets end at different input lengths (32,627 / 32,392 / 31,845 in
    examples/long_context_summarisation.yaml). The replay once took them for three classes and sent every
    prompt of 26.5k-31.8k tokens to the long-answer bucket, clipping short answers up to 716 tokens."""
    from planner.verify import _assign

    buckets = [{"index": 0, "isl": "100-200", "osl": "1-10"}, {"index": 1, "isl": "100-200", "osl": "11-100"},
               {"index": 2, "isl": "201-1000", "osl": "1-10"}, {"index": 3, "isl": "201-900", "osl": "11-100"}]
    isl = np.array([150, 150, 500, 500, 950, 5000])
    osl = np.array([5, 50, 5, 50, 5, 50])
    out, clipped = _assign(isl, osl, buckets)
    assert out.tolist() == [0, 1, 2, 3, 2, 3]
    assert osl.tolist() == [5, 50, 5, 50, 5, 50]  # no answer clipped into another bucket's range
    assert isl.tolist() == [150, 150, 500, 500, 950, 900] and clipped == 1
