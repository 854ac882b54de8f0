"""The optimiser: exact against brute force, properties, infeasibility explanations, outputs."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from typer.testing import CliRunner

from planner.capacity import LOADS, BucketInfo, CandidateInfo, CapacityTable
from planner.cli import app
from planner.errors import InfeasibleError, PlannerError
from planner.hardware import default_hardware
from planner.optimise.ilp import Limits, solve
from planner.planning import plan
from planner.scenario import load_scenario, parse_scenario

HW = default_hardware()


def cand(acc: str, role: str, caps: list[float], tp: int = 1) -> tuple[CandidateInfo, list[float]]:
    a = HW.get(acc)
    info = CandidateInfo(key=f"{a.id}|{tp}|1|1|{role}", accelerator=a.id, vendor=a.vendor, family=a.family, tp=tp,
                         pp=1, ep=1, dp_attn=False, role=role, gpus=tp, price_per_hour=a.price_per_hour * tp,
                         watts=a.tdp_w * tp, engine="vllm", precision="bf16", kv_dtype="bf16", token_budget=8192,
                         max_seqs=1024, memory_fraction=0.9, max_kv_tokens=100_000)
    return info, caps


def table(cands: list[tuple[CandidateInfo, list[float]]]) -> CapacityTable:
    """A capacity table of hand-made candidates; bucket b has its own input range (its own route)."""
    nb = len(cands[0][1])
    buckets = tuple(BucketInfo(b, 100 * b + 1, 100 * b + 100, 1, 100, 100.0 * b + 50, 50.0, 100.0 * b + 90,
                               1.0 / nb) for b in range(nb))
    lat = np.full((len(cands), nb, len(LOADS)), 0.1)
    return CapacityTable(tuple(c for c, _ in cands), buckets, np.array([caps for _, caps in cands]),
                         tuple(tuple("ttft" for _ in caps) for _, caps in cands), lat, lat,
                         np.full((len(cands), nb), 0.05), np.full((len(cands), nb), 0.01), 99.0, 1.0)


def brute_force(pairs: list[tuple[CandidateInfo, list[float]]], rates: list[float], max_n: int = 6) -> float:
    """Cheapest integer counts for which an LP over the bucket shares is feasible."""
    best = np.inf
    nb = len(rates)
    cands = [SimpleNamespace(price_per_hour=info.price_per_hour, role=info.role, capacity_rps=caps)
             for info, caps in pairs]
    for counts in itertools.product(range(max_n + 1), repeat=len(cands)):
        cost = sum(c.price_per_hour * n for c, n in zip(cands, counts))
        if cost >= best:
            continue
        # variables: share[c, b]; constraints as in planner.optimise.ilp
        nv = len(cands) * nb
        idx = {(i, b): i * nb + b for i in range(len(cands)) for b in range(nb)}
        a_ub, b_ub, a_eq, b_eq = [], [], [], []
        for i, c in enumerate(cands):
            row = np.zeros(nv)
            for b in range(nb):
                if c.capacity_rps[b] > 0:
                    row[idx[(i, b)]] = rates[b] / c.capacity_rps[b]
            a_ub.append(row)
            b_ub.append(counts[i])
        for b in range(nb):
            cover = np.zeros(nv)
            pair = np.zeros(nv)
            for i, c in enumerate(cands):
                if c.role in ("colocated", "prefill"):
                    cover[idx[(i, b)]] = 1
                if c.role == "prefill":
                    pair[idx[(i, b)]] = 1
                if c.role == "decode":
                    pair[idx[(i, b)]] = -1
            a_eq += [cover, pair]
            b_eq += [1, 0]
        bounds = [(0, 1 if cands[v // nb].capacity_rps[v % nb] > 0 else 0) for v in range(nv)]
        res = linprog(np.zeros(nv), A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
        if res.status == 0:
            best = cost
    return best


@pytest.mark.parametrize("seed", range(6))
def test_ilp_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    nb = int(rng.integers(2, 5))
    accs = ["H100-SXM", "A100-SXM-80GB", "L40S"][: int(rng.integers(2, 4))]
    cands = []
    for a in accs:
        for role in ("colocated", "prefill", "decode"):
            caps = [float(rng.uniform(0.5, 4.0)) if rng.random() > 0.25 else 0.0 for _ in range(nb)]
            if max(caps) > 0:
                cands.append(cand(a, role, caps))
    cands = cands[:5]
    rates = [float(rng.uniform(0.2, 3.0)) for _ in range(nb)]
    sol = solve(table(cands), rates)
    expected = brute_force(cands, rates, max_n=4)
    if np.isinf(expected):  # every plan with at most 4 instances per candidate is infeasible
        assert not sol.ok or max(sol.counts.values()) > 4
    else:
        assert sol.ok and sol.objective == pytest.approx(expected, rel=1e-6)


def test_availability_and_budget_respected():
    t = table([cand("H100-SXM", "colocated", [1.0, 1.0]), cand("A100-SXM-80GB", "colocated", [0.5, 0.5])])
    sol = solve(t, [2.0, 2.0], Limits(availability={"H100-SXM": 2}))
    assert sol.ok
    assert sum(n for k, n in sol.counts.items() if k.startswith("H100")) <= 2
    assert 2 < sum(n for k, n in sol.counts.items() if k.startswith("A100"))
    assert not solve(t, [2.0, 2.0], Limits(budget_per_hour=1.0)).ok


BASE = {"model": "llama-3.1-8b", "workload": {"rate_rps": 8, "input": "lognormal:mean=1000,p99=4000",
                                              "output": "lognormal:mean=200,p99=800"},
        "buckets": {"isl": 2, "osl": 2}, "slo": {"ttft_s": 1.0, "tpot_s": 0.05},
        "accelerators": ["H100-SXM", "L40S", "A10G"], "parallelism": {"tp": [1, 2], "pp": [1]},
        "solver": {"gap": 0.0}}  # properties are exact only for proven optima


def scen(**over):
    raw = json.loads(json.dumps(BASE))
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(raw.get(k), dict):
            raw[k].update(v)
        else:
            raw[k] = v
    return parse_scenario(raw)


def cost(sc):
    return plan(sc, alternatives=False).cost_per_hour


FAST = settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(r1=st.floats(2, 30), r2=st.floats(2, 30))
def test_more_rate_never_costs_less(r1, r2):
    lo, hi = sorted((r1, r2))
    assert cost(scen(workload={"rate_rps": hi})) >= cost(scen(workload={"rate_rps": lo})) - 1e-9


@FAST
@given(t1=st.floats(0.5, 3), t2=st.floats(0.5, 3))
def test_looser_slo_never_costs_more(t1, t2):
    tight, loose = sorted((t1, t2))
    assert cost(scen(slo={"ttft_s": loose})) <= cost(scen(slo={"ttft_s": tight})) + 1e-9


def test_adding_an_accelerator_never_costs_more_and_mix_beats_single():
    fewer = plan(scen(accelerators=["L40S", "A10G"]), alternatives=False).cost_per_hour
    more = plan(scen(), alternatives=True)
    assert more.cost_per_hour <= fewer + 1e-9
    singles = [a for a in more.alternatives if a.name.startswith("best single")]
    assert singles and more.cost_per_hour <= singles[0].cost_per_hour + 1e-9


@FAST
@given(limit=st.integers(1, 4))
def test_availability_never_exceeded(limit):
    sc = scen(availability={"H100-SXM": limit}, workload={"rate_rps": 4})
    try:
        p = plan(sc, alternatives=False)
    except InfeasibleError:
        return
    assert sum(g.gpus for g in p.groups if g.accelerator == "H100-SXM") <= limit


def test_infeasible_slo_says_what_would_work():
    with pytest.raises(InfeasibleError, match="loosen the SLO to at least"):
        plan(scen(slo={"ttft_s": 0.001, "tpot_s": 0.05}), alternatives=False)


def test_infeasible_availability_says_how_many_more():
    sc = scen(accelerators=["H100-SXM"], availability={"H100-SXM": 1}, workload={"rate_rps": 60})
    with pytest.raises(InfeasibleError, match=r"availability: the cheapest plan needs \d+ GPUs of H100-SXM.*rate"):
        plan(sc, alternatives=False)


def test_infeasible_budget_names_the_cost():
    with pytest.raises(InfeasibleError, match=r"budget: the cheapest plan costs \$"):
        plan(scen(budget_per_hour=0.5), alternatives=False)


def test_model_too_big_everywhere():
    sc = scen(model="llama-3.1-405b", accelerators=["L4", "A10G"])
    with pytest.raises(InfeasibleError, match="does not fit"):
        plan(sc, alternatives=False)


def test_plan_json_csv_xlsx(tmp_path):
    runner = CliRunner()
    csv, xlsx = tmp_path / "p.csv", tmp_path / "p.xlsx"
    res = runner.invoke(app, ["plan", "examples/budget_capped.yaml", "--json", "--csv", str(csv), "--xlsx", str(xlsx)])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    for key in ("status", "objective", "cost_per_hour", "cost_per_million_output_tokens", "total_gpus", "groups",
                "predicted", "alternatives"):
        assert key in d
    assert {"accelerator", "role", "tp", "pp", "ep", "instances", "gpus"} <= set(d["groups"][0])
    assert csv.read_text().startswith("model,")
    import openpyxl

    wb = openpyxl.load_workbook(xlsx)
    assert wb.sheetnames == ["plan", "alternatives", "buckets", "assumptions"]


def test_plan_api_frame():
    p = plan(scen())
    df = p.to_frame()
    assert list(df.columns)[:3] == ["accelerator", "role", "tp"]
    assert p.predicted["ttft_s"] <= 1.0 + 1e-6 and p.predicted["tpot_s"] <= 0.05 + 1e-6


def test_examples_load():
    for f in ("chat_nvidia", "long_context_summarisation", "deepseek_v3_h200_mi325x_ascend", "budget_capped"):
        sc = load_scenario(f"examples/{f}.yaml")
        assert sc.workload.rate_rps > 0


@pytest.mark.parametrize("raw,pattern", [
    ({"modle": "x"}, "did you mean model"),
    ({**BASE, "slo": {"ttft": 1}}, "did you mean slo.ttft_s"),
    ({**BASE, "objective": "speed"}, "objective"),
    ({**BASE, "workload": {"rate_rps": -1, "input": "10", "output": "10"}}, "rate_rps"),
    ({**BASE, "availability": {"H100-SXM": -2}}, "availability"),
    ({**BASE, "target_utilisation": 1.5}, "target_utilisation"),
])
def test_bad_scenarios(raw, pattern):
    with pytest.raises(PlannerError, match=pattern):
        sc = parse_scenario(raw)
        plan(replace(sc), alternatives=False)


def test_spreadsheet_round_trip(tmp_path):
    from planner.sheet import plan_sheet

    out = tmp_path / "plans.xlsx"
    df = plan_sheet("examples/capacity_sheet.xlsx", out)
    import pandas as pd

    back = pd.read_excel(out)
    assert len(back) == len(df) == 5
    assert list(back["name"]) == ["chat-eu", "chat-us-small", "summaries", "too-tight", "typo"]
    ok = back[back["status"] == "optimal"]
    assert len(ok) == 3 and (ok["cost_per_hour"] > 0).all() and ok["groups"].str.len().gt(0).all()
    assert back.loc[3, "status"] == "infeasible" and "loosen the SLO" in back.loc[3, "reason"]
    assert back.loc[4, "status"] == "invalid" and "did you mean" in back.loc[4, "reason"]


def test_aliases_of_one_accelerator_do_not_halve_the_plan():
    once = plan(scen(accelerators=["H100-SXM"]), alternatives=False)
    twice = plan(scen(accelerators=["H100-SXM", "h100"]), alternatives=False)
    assert twice.cost_per_hour == pytest.approx(once.cost_per_hour)
    for b in twice.buckets:
        assert "50%" not in b.served_by


def test_long_prompt_short_answer_is_served():
    from planner.serving.estimate import estimate

    e = estimate("llama-3.1-8b", "H100-SXM", isl=20000, osl=1)
    assert e.requests_per_s > 0 and e.bound == "token budget"


def test_requests_past_the_context_are_flagged():
    p = plan(scen(model="mistral-7b-v0.3", workload={"input": "lognormal:mean=8000,p99=60000"}),
             alternatives=False)
    assert any("past the model's 32,768-token context" in n for n in p.notes)
    for b in p.buckets:
        lo, hi = (int(x) for x in b.isl.split("-"))
        assert hi <= 32768


def test_cost_never_falls_along_a_rate_sweep():
    """The queueing pool grows with the rate, which must not make a higher rate cheaper."""
    prev = 0.0
    for rate in (1, 4, 9, 16, 25, 40, 60, 90):
        c = cost(scen(model="llama-3.1-70b", precision="fp8", accelerators=["H100-SXM", "A100-SXM-80GB"],
                      workload={"rate_rps": rate, "input": "lognormal:mean=2000,p99=9000",
                                "output": "lognormal:mean=300,p99=1500"},
                      parallelism={"tp": [1, 2, 4, 8], "pp": [1]}))
        assert c >= prev - 1e-9, (rate, c, prev)
        prev = c
