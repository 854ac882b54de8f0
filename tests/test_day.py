"""Day plans end to end (planner/day.py, pricing, energy): the installed ``planner`` on 24-hour
profiles, price tiers and owned hardware, price files, bad input. Small scenarios: one bucket, TP1."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from planner.day import plan_day
from planner.hardware import default_hardware
from planner.planning import accelerators_of, plan, prepare
from planner.scenario import parse_scenario

ROOT = Path(__file__).resolve().parents[1]
EXE = str(Path(sys.executable).with_name("planner"))
# 24 hourly rates, night 30 req/s, peak 120 req/s (4:1)
DAY = [30.0 + 90.0 * max(0.0, math.sin(math.pi * (h - 6) / 16)) ** 2 if 6 <= h <= 22 else 30.0 for h in range(24)]


def scenario(**over) -> dict:
    doc = {"model": "llama-3.1-8b", "workload": {"input": 512, "output": 128, "rate_profile": {"rates": DAY}},
           "buckets": {"isl": 1, "osl": 1}, "slo": {"ttft_s": 1.0, "tpot_s": 0.05},
           "accelerators": ["H100-SXM", "L40S"], "parallelism": {"tp": [1], "pp": [1]},
           "solver": {"time_limit_s": 30, "gap": 0.0}}
    for k, v in over.items():
        doc[k] = v
    return doc


def run(doc: dict, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    path = tmp / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    return subprocess.run([EXE, "plan", str(path), "-q", *args], capture_output=True, text=True, timeout=300)


def test_day_profile_cheaper_than_peak_and_never_short(tmp_path):
    assert max(DAY) / min(DAY) == pytest.approx(4.0)
    res = run(scenario(), tmp_path, "--json")
    assert res.returncode == 0, res.stderr
    day = json.loads(res.stdout)
    assert day["cost_per_day"] < day["peak_sized_cost_per_day"] and day["saving_pct"] > 0
    assert len(day["cost_per_period"]) == 24 and sum(day["cost_per_period"]) == pytest.approx(day["cost_per_day"])
    # never short: bought capacity (spot at its surviving share) covers each period's rate
    prep = prepare(parse_scenario(scenario()))
    cap = {c.label: max(prep.table.capacity_rps[i]) for i, c in enumerate(prep.table.candidates)}
    for p, rate in enumerate(day["planned_rates_rps"]):
        assert rate >= DAY[p]
        supply = sum(cap[r["label"]] * (r["fixed"] + r["on_demand"][p]) for r in day["schedule"])
        assert supply >= rate * (1 - 1e-9)
    assert day["kwh_per_day"] > 0 and day["joules_per_output_token"] > 0


def test_printed_day_table(tmp_path):
    res = run(scenario(), tmp_path)
    assert res.returncode == 0, res.stderr
    for text in ("USD/day", "kWh/day", "J/token", "sized for the peak all day", "prices used", "reserved 1y",
                 "idle power = 15% of TDP"):
        assert text in res.stdout, text


def test_shipped_example_runs():
    res = subprocess.run([EXE, "plan", str(ROOT / "examples" / "day_profile.yaml"), "-q", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    day = json.loads(res.stdout)
    assert day["saving_per_day"] > 0 and day["currency"] == "USD"


def _fixed(day) -> int:
    return sum(r.fixed for r in day.schedule)


def _spot(day) -> int:
    return sum(sum(r.spot) for r in day.schedule)


def test_reserved_and_spot_prices_move_the_choice():
    only_h100 = {"accelerators": ["H100-SXM"]}
    cheap = plan_day(parse_scenario(scenario(**only_h100, prices={"H100-SXM": {"reserved_1y": 1.0}})))
    dear = plan_day(parse_scenario(scenario(**only_h100, prices={"H100-SXM": {"reserved_1y": 2.6}})))
    assert _fixed(cheap) > _fixed(dear)
    no_spot = plan_day(parse_scenario(scenario(**only_h100)))
    spot = plan_day(parse_scenario(scenario(**only_h100, prices={"H100-SXM": {"spot": 0.8,
                                                                              "spot_interruption": 0.2}})))
    assert _spot(no_spot) == 0 < _spot(spot) and spot.cost_per_day < no_spot.cost_per_day
    # a shipped spot price without a stated interruption rate is not used
    assert all(p["spot"] is None for p in no_spot.prices)


def test_owned_hardware_price_and_direction():
    bad = scenario(prices={"H100-SXM": 0})
    with pytest.raises(Exception, match="price_per_kwh"):
        parse_scenario(bad)
    owned = parse_scenario(scenario(prices={"H100-SXM": 0}, pricing={"price_per_kwh": 0.1, "pue": 1.2}))
    h100 = {a.id: a for a in accelerators_of(owned, default_hardware())}
    # by hand: (0.15·700 + 0.9·(700 − 105)) W = 640.5 W; × 1.2 PUE × 0.1 $/kWh / 1000 = 0.07686 $/h
    assert h100["H100-SXM"].price_per_hour == pytest.approx(0.07686)
    one = {"workload": {"input": 512, "output": 128, "rate_rps": 60}}
    cloud = plan(parse_scenario(scenario(**one)), alternatives=False)
    mine = plan(parse_scenario(scenario(**one, prices={"L40S": {"capex_per_gpu": 2000, "amortise_years": 4}},
                                        pricing={"price_per_kwh": 0.1})), alternatives=False)
    def share(p) -> float:  # share of the plan's capacity on L40S
        return sum(g.gpus for g in p.groups if g.accelerator == "L40S") / max(sum(g.gpus for g in p.groups), 1)

    assert share(mine) > share(cloud) and share(mine) == 1.0
    assert mine.energy["kwh_per_day"] > 0 and mine.energy["joules_per_output_token"] > 0


def test_energy_objective_never_draws_more():
    one = {"workload": {"input": 512, "output": 128, "rate_rps": 60}}
    by_cost = plan(parse_scenario(scenario(**one)), alternatives=False)
    by_energy = plan(parse_scenario(scenario(**one, objective="energy")), alternatives=False)
    assert by_energy.energy["power_w"] <= by_cost.energy["power_w"] + 1e-6
    assert by_energy.cost_per_hour >= by_cost.cost_per_hour - 1e-6


def test_price_file_currency_and_trace_profile(tmp_path):
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"currency": "EUR", "date": "2026-05", "source": "our quote",
                                                     "prices": {"H100-SXM": {"on_demand": 2.0, "reserved_1y": 1.2}}}))
    rows = ["timestamp,input_tokens,output_tokens"]
    rows += [f"{t / 20:.3f},512,128" for t in range(20 * 3600)]  # 20 req/s for an hour
    rows += [f"{3600 + t / 60:.3f},512,128" for t in range(60 * 3600)]  # then 60 req/s for an hour
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    doc = scenario(pricing={"file": "p.yaml"}, accelerators=["H100-SXM"])
    doc["workload"] = {"trace": "t.csv", "rate_profile": {"from_trace": True}}
    res = run(doc, tmp_path, "--json")
    assert res.returncode == 0, res.stderr
    day = json.loads(res.stdout)
    assert day["currency"] == "EUR" and day["rates_rps"] == pytest.approx([20.0, 60.0], rel=1e-3)
    assert day["prices"][0]["fixed"] == 1.2 and "our quote" in day["prices"][0]["source"]


@pytest.mark.parametrize("over, field", [
    ({"workload": {"input": 512, "output": 128, "rate_rps": 5, "rate_profile": [1, 2]}}, "workload.rate_rps"),
    ({"workload": {"input": 512, "output": 128, "rate_profile": [1, "x"]}}, "rate_profile.rates[1]"),
    ({"prices": {"H100-SXM": {"spot": 1, "spot_interruption": 1.5}}}, "spot_interruption"),
    ({"prices": {"H100-SXM": {"spto": 1}}}, "did you mean prices.H100-SXM.spot"),
    ({"pricing": {"pue": 0.5}}, "pricing.pue"),
    ({"pricing": {"curency": "EUR"}}, "did you mean pricing.currency"),
    ({"pricing": {"reserved_term": "2y"}}, "pricing.reserved_term"),
    ({"prices": {"H100-SXM": -1}}, "prices.H100-SXM"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, over, field):
    res = run(scenario(**over), tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    assert field in res.stderr and "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
