"""Several models in one fleet: the joint ILP equals a brute-force optimum over instance counts read
off the capacity tables, the shared quota couples the models, the ``models:`` format inherits and
checks its keys, and ``planner plan`` prints, writes JSON and fails as documented."""

from __future__ import annotations

import itertools
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from planner.errors import InfeasibleError, PlannerError
from planner.multi_planning import plan_multi, prepare_all
from planner.multi_scenario import MultiScenario, load_any, parse_multi
from planner.planning import plan
from planner.scenario import Scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[1]
EXE = str(Path(sys.executable).with_name("planner"))


def _w(rate: float, isl: str, osl: str) -> dict:
    return {"rate_rps": rate, "input": isl, "output": osl}


# one input class (buckets isl: 1), colocated only, TP1, one fleet tier, no spares: the ILP's only
# integers are the counts, and a count vector serves a model iff sum_c n_c / L_c >= 1 (below); one
# fixed token budget, so each instance type is one candidate and the brute force stays small
SMALL = {"accelerators": ["H100-SXM", "L40S"], "disaggregation": "off", "parallelism": {"tp": [1], "pp": [1]},
         "queueing": {"pool": 1}, "engine_settings": {"token_budget": 8192}, "buckets": {"isl": 1, "osl": 2},
         "availability": {"H100-SXM": 3},
         "models": [
             {"name": "chat", "model": "llama-3.1-8b",
              "workload": _w(40, "lognormal:mean=800,p99=3000", "lognormal:mean=200,p99=800"),
              "slo": {"ttft_s": 1.0, "tpot_s": 0.03, "percentile": 95}},
             {"name": "small", "model": "qwen2.5-7b",
              "workload": _w(20, "lognormal:mean=1500,p99=4000", "lognormal:mean=300,p99=900"),
              "slo": {"ttft_s": 1.0, "tpot_s": 0.025, "percentile": 95}}]}


def _with(**kw) -> dict:
    return {**SMALL, **kw}


@pytest.fixture(scope="module")
def small_preps():
    return prepare_all(parse_multi(SMALL))


def _options(prep) -> list[tuple[float, dict[str, int], float]]:
    """Every instance-count vector that serves the model, by brute force over the capacity table:
    candidate c carrying a share s of the one input class is busy s·L_c, L_c = Σ_b λ_b / cap_cb, so
    counts n serve it iff Σ_c n_c / L_c ≥ 1; n_c beyond ⌈L_c⌉ is never needed. (cost, GPUs per type, GPUs)."""
    table, rates = prep.table, prep.rates
    cands = []
    for i, c in enumerate(table.candidates):
        caps = table.capacity_rps[i]
        if all(caps[b] > 0 for b in range(len(rates)) if rates[b] > 0):
            cands.append((c, sum(r / caps[b] for b, r in enumerate(rates) if r > 0)))
    out = []
    for counts in itertools.product(*(range(math.ceil(load) + 1) for _, load in cands)):
        if sum(n / load for n, (_, load) in zip(counts, cands)) >= 1 - 1e-9:
            gpus: dict[str, int] = {}
            for n, (c, _) in zip(counts, cands):
                gpus[c.accelerator] = gpus.get(c.accelerator, 0) + n * c.gpus
            out.append((sum(n * c.price_per_hour for n, (c, _) in zip(counts, cands)), gpus, sum(gpus.values())))
    return out


def _brute_force(preps, availability: dict[str, int]) -> float:
    best = math.inf
    for combo in itertools.product(*(_options(p) for p in preps)):
        used: dict[str, int] = {}
        for _, gpus, _ in combo:
            for a, g in gpus.items():
                used[a] = used.get(a, 0) + g
        if all(used.get(a, 0) <= limit for a, limit in availability.items()):
            best = min(best, sum(cost for cost, _, _ in combo))
    return best


@pytest.mark.parametrize("h100", [2, 3, 8])
def test_joint_plan_equals_brute_force_optimum(small_preps, h100):
    from dataclasses import replace

    preps = [replace(p, limits=replace(p.limits, availability={"H100-SXM": h100}, gap_rel=0.0)) for p in small_preps]
    mp = plan_multi(parse_multi(_with(availability={"H100-SXM": h100})), prepared=preps)
    assert mp.status == "optimal"
    assert mp.cost_per_hour == pytest.approx(_brute_force(preps, {"H100-SXM": h100}), rel=1e-9)
    assert mp.gpus_by_accelerator.get("H100-SXM", 0) <= h100
    assert mp.cost_per_hour == pytest.approx(sum(s.plan.cost_per_hour for s in mp.models))
    # each section costs at least the model planned alone with the whole quota
    for s in mp.models:
        assert s.plan.cost_per_hour >= s.alone_cost_per_hour - 1e-9


def test_the_shared_quota_couples_the_models(small_preps):
    """Alone, each model wants 2 H100s; with 3 for both, one of them pays for L40S instead."""
    tight = plan_multi(parse_multi(SMALL), prepared=small_preps)
    alone = sum(s.alone_cost_per_hour for s in tight.models)
    assert tight.cost_per_hour > alone + 1
    assert tight.gpus_by_accelerator["H100-SXM"] == 3
    assert any("H100-SXM" in b for b in tight.binding)
    assert any("more than planned alone" in n for n in tight.notes)
    # with the quota lifted the fleet is the sum of the models planned alone
    from dataclasses import replace

    free = [replace(p, limits=replace(p.limits, availability={})) for p in small_preps]
    loose = plan_multi(parse_multi(_with(availability={})), prepared=free)
    assert loose.cost_per_hour == pytest.approx(alone)
    assert not loose.binding


def test_more_quota_never_costs_more(small_preps):
    from dataclasses import replace

    costs = []
    for h100 in (2, 3, 4):
        preps = [replace(p, limits=replace(p.limits, availability={"H100-SXM": h100})) for p in small_preps]
        costs.append(plan_multi(parse_multi(_with(availability={"H100-SXM": h100})), prepared=preps).cost_per_hour)
    assert costs[0] >= costs[1] >= costs[2]


def test_one_model_fleet_is_the_one_model_plan():
    one = _with(models=SMALL["models"][:1])
    mp = plan_multi(parse_multi(one))
    single = {k: v for k, v in one.items() if k != "models"} | {
        k: v for k, v in SMALL["models"][0].items() if k != "name"}
    p = plan(single, alternatives=False)
    assert mp.cost_per_hour == pytest.approx(p.cost_per_hour)
    assert [(g.label, g.instances) for g in mp.models[0].plan.groups] == [(g.label, g.instances) for g in p.groups]


def test_infeasible_names_the_model_and_why(small_preps):
    from dataclasses import replace

    # budget below what both need: each fits alone, the second cannot be added beside the first
    budget = 5.5
    preps = [replace(p, limits=replace(p.limits, budget_per_hour=budget)) for p in small_preps]
    with pytest.raises(InfeasibleError, match=r"models\[1\] 'small' cannot be served beside 'chat'.*budget"):
        plan_multi(parse_multi(_with(budget_per_hour=budget)), prepared=preps)
    # no H100 at all: 'small' alone would need hundreds of L40S, still feasible; a TPOT no one meets is not
    bad = _with(models=[SMALL["models"][0], {**SMALL["models"][1], "slo": {"ttft_s": 1.0, "tpot_s": 0.0001}}])
    with pytest.raises(InfeasibleError, match=r"models\[1\] 'small'.*cannot be served.*TPOT"):
        plan_multi(parse_multi(bad))


def test_models_inherit_defaults_and_merge_mappings():
    raw = {"engine": "sglang", "slo": {"percentile": 90, "ttft_s": 3.0}, "availability": {"L40S": 4},
           "budget_per_hour": 50, "models": [
               {"model": "llama-3.1-8b", "workload": _w(1, "100", "10"), "slo": {"tpot_s": 0.05}},
               {"name": "b", "model": "llama-3.1-8b", "engine": "vllm", "workload": _w(2, "200", "20"),
                "slo": {"ttft_s": 1.0}}]}
    ms = parse_multi(raw)
    a, b = ms.models
    assert ms.names == ("llama-3.1-8b", "b")
    assert (a.engine, a.slo.percentile, a.slo.ttft_s, a.slo.tpot_s) == ("sglang", 90, 3.0, 0.05)
    assert (b.engine, b.slo.ttft_s, b.slo.tpot_s) == ("vllm", 1.0, None)
    assert a.availability == b.availability == {"L40S": 4} and a.budget_per_hour == b.budget_per_hour == 50


@pytest.mark.parametrize("raw,pattern", [
    ({"models": []}, r"models: expected a non-empty list"),
    ({"models": [{"model": "llama-3.1-8b", "budget_per_hour": 3}]}, r"models\[0\]\.budget_per_hour: shared"),
    ({"models": [{"model": "llama-3.1-8b", "worklaod": {}}]}, r"did you mean models\[0\]\.workload"),
    ({"models": [{"model": "llama-3.1-8b", "workload": _w(1, "10", "10"), "slo": {"ttft_s": 1}}] * 2},
     r"models\[1\]\.name: expected a name no other entry has"),
    ({"models": [{"model": "llama-3.1-8b", "workload": _w(1, "10", "10"), "slo": {"ttft_s": "x"}}]},
     r"models\[0\] \(llama-3.1-8b\): ttft_s: expected a finite number"),
    ({"modles": []}, r"did you mean models"),
    ({"models": [{"name": "a", "workload": _w(1, "10", "10")}]}, r"models\[0\]\.model: expected a model name"),
    ({"models": [{"model": "llama-3.1-8b", "workload": {"rate_profile": [1, 2], "input": "10", "output": "10"},
                  "slo": {"ttft_s": 1}}]}, r"models\[0\]\.workload\.rate_profile: expected a single rate"),
])
def test_bad_fleet_scenarios(raw, pattern):
    with pytest.raises(PlannerError, match=pattern):
        parse_multi(raw) if "models" in raw else parse_scenario(raw)


def test_files_load_as_one_model_or_a_fleet():
    ms = load_any(ROOT / "examples" / "two_models.yaml")
    assert isinstance(ms, MultiScenario) and ms.names == ("chat", "code")
    assert ms.source == str((ROOT / "examples" / "two_models.yaml").resolve())
    assert ms.shared.availability == {"H100-SXM": 2} and ms.models[1].precision == "fp8"
    one = load_any(ROOT / "examples" / "budget_capped.yaml")
    assert isinstance(one, Scenario) and one.model == "llama-3.1-8b"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=300)


def test_example_plans_and_json_has_a_section_per_model(tmp_path):
    csv = tmp_path / "groups.csv"
    res = _run("plan", str(ROOT / "examples" / "two_models.yaml"), "--json", "--csv", str(csv))
    assert res.returncode == 0, res.stderr
    import pandas as pd

    rows = pd.read_csv(csv)
    assert list(rows.columns[:3]) == ["name", "model", "accelerator"] and set(rows["name"]) <= {"chat", "code"}
    data = json.loads(res.stdout)
    doc = (ROOT / "docs" / "json.md").read_text().split("## `planner plan FLEET --json`", 1)[1].split("\n## ")[0]
    keys_block = doc.split("\n", 1)[1].split("\n\n", 1)[0]  # the key list, up to the first blank line
    top = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\([^)]*\)", "", keys_block)
    keys = {k.strip().strip("`") for k in top.replace("\n", " ").split(",") if k.strip().strip("`")}
    assert keys and keys <= set(data), keys - set(data)
    names = [m["name"] for m in data["models"]]
    raw = yaml.safe_load((ROOT / "examples" / "two_models.yaml").read_text())
    assert names == [m["name"] for m in raw["models"]]
    one = (ROOT / "docs" / "json.md").read_text().split("## `planner plan --json`", 1)[1].split("\n## ")[0]
    one = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\([^)]*\)", "", one.split("\n", 1)[1])
    one_keys = {k.strip().strip("`") for k in one.replace("\n", " ").split(",") if k.strip().strip("`")}
    for m in data["models"]:  # each section is a one-model plan document
        assert one_keys | {"name", "alone_cost_per_hour"} <= set(m), one_keys - set(m)
    assert data["cost_per_hour"] == pytest.approx(sum(m["cost_per_hour"] for m in data["models"]))
    for acc, limit in data["availability"].items():
        assert data["gpus_by_accelerator"].get(acc, 0) <= limit


def test_printed_plan_and_exit_codes(tmp_path):
    sc = tmp_path / "fleet.yaml"
    sc.write_text(yaml.safe_dump(SMALL))
    res = _run("plan", str(sc))
    assert res.returncode == 0, res.stderr
    assert "2 models in one fleet" in res.stdout and "shared quota" in res.stdout
    assert "model chat" in res.stdout and "model small" in res.stdout
    assert re.search(r"H100-SXM\s*│\s*3\s*│\s*3", res.stdout)
    bad = tmp_path / "broke.yaml"
    bad.write_text(yaml.safe_dump(_with(budget_per_hour=5.5)))
    res = _run("plan", str(bad), "--json")
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and "models[1] 'small'" in res.stderr and "Traceback" not in res.stderr
    res = _run("plan", str(sc), "--rate", "3")
    assert res.returncode == 2 and "--rate: not available for a scenario with models:" in res.stderr
    res = _run("capacity", str(sc))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "several models" in res.stderr
    assert sc.read_text() == yaml.safe_dump(SMALL)  # the input is never written


def test_an_error_in_one_model_names_its_entry():
    bad = _with(models=[SMALL["models"][0], {**SMALL["models"][1], "accelerators": ["H100x"]}])
    with pytest.raises(PlannerError, match=r"models\[1\] 'small': unknown accelerator 'H100x'; did you mean"):
        plan_multi(bad)


def test_fleet_entries_take_speculative_and_the_fleet_shares_pricing(tmp_path):
    """Speculative decoding per entry lowers that model's cost; ``pricing`` is a shared key."""
    import yaml

    from planner.multi_planning import plan_multi
    from planner.multi_scenario import load_any

    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "examples" / "two_models.yaml").read_text())
    base = plan_multi(load_any(_write(tmp_path / "base.yaml", raw)))
    raw["models"][0]["speculative"] = {"method": "eagle", "draft_tokens": 3, "acceptance": 0.7}
    raw["pricing"] = {"price_per_kwh": 0.1}
    spec = plan_multi(load_any(_write(tmp_path / "spec.yaml", raw)))
    assert spec.models[0].plan.cost_per_hour < base.models[0].plan.cost_per_hour
    assert spec.cost_per_hour <= base.cost_per_hour
    raw["models"][1]["pricing"] = {"price_per_kwh": 0.1}
    with pytest.raises(PlannerError, match="pricing"):
        load_any(_write(tmp_path / "bad.yaml", raw))


def _write(path, raw):
    import yaml

    path.write_text(yaml.safe_dump(raw))
    return path
