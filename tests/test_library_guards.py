"""The library as a notebook meets it: wrong types give a PlannerError naming the field, numpy numbers
(read from a DataFrame) are numbers, ``planner.deployment`` stays the function, a day or a fleet is
not planned as one rate by accident, and groups that differ only in token budget keep apart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import planner
from planner.errors import PlannerError

EXE = str(Path(sys.executable).with_name("planner"))
ROOT = Path(__file__).resolve().parents[1]
M, H = "llama-3.1-8b", "H100-SXM"


@pytest.mark.parametrize(("call", "field"), [
    (lambda: planner.memory(M, H, precision=None), "precision"),
    (lambda: planner.memory(M, H, engine=None), "engine"),
    (lambda: planner.memory(M, H, kv_dtype=3), "kv_dtype"),
    (lambda: planner.memory(M, H, min_kv_tokens=2048.5), "min_kv_tokens"),
    (lambda: planner.memory(M, H, settings="x"), "settings"),
    (lambda: planner.roofline(M, H, batch=None), "batch"),
    (lambda: planner.roofline(M, H, context="1024"), "context"),
    (lambda: planner.roofline(M, H, chunk=0), "chunk"),
    (lambda: planner.roofline(M, H, batch=float("inf")), "batch"),
    (lambda: planner.estimate(M, H, workload=123), "workload"),
    (lambda: planner.plan(None), "scenario"),
    (lambda: planner.plan(5), "scenario"),
    (lambda: planner.load_scenario(None), "scenario"),
    (lambda: planner.plan_multi(None), "scenario"),
    (lambda: planner.validate_frame(None), "DataFrame"),
])
def test_wrong_types_name_the_field(call, field: str) -> None:
    with pytest.raises(PlannerError, match=field):
        call()


def test_numpy_numbers_are_numbers_and_phase_matches_any_case() -> None:
    assert planner.memory(M, H, tp=np.int64(2)).fits
    e = planner.estimate(M, H, isl=np.int64(512), osl=np.int64(128), rate_rps=np.float32(2.0), tp=np.int64(1),
                         slo={"ttft_s": 1.0, "tpot_s": 0.05})
    assert e.tpot_s["mean"] > 0
    sc = planner.parse_scenario({"model": M, "workload": {"rate_rps": np.int64(30), "input": 512, "output": 128},
                                 "slo": {"ttft_s": np.float32(1.0), "tpot_s": 0.05}, "accelerators": [H]})
    assert sc.workload.rate_rps == 30.0
    assert planner.roofline(M, H, phase="PREFILL").step_s > 0


def test_the_deployment_function_survives_the_deployment_module_being_imported() -> None:
    import importlib

    planner.memory(M, H)  # imports the module planner.deployment
    importlib.import_module("planner.deployment")
    from planner.deployment import Deployment

    assert isinstance(planner.deployment(M, H), Deployment)


def test_a_day_or_a_fleet_is_not_planned_as_one_rate(tmp_path: Path) -> None:
    day = ROOT / "examples" / "day_profile.yaml"
    with pytest.raises(PlannerError, match="rate_profile"):
        planner.plan(str(day))
    with pytest.raises(PlannerError, match="rate_profile"):
        planner.plan_multi(str(day))
    assert planner.plan_day(str(day)).cost_per_day > 0
    out = subprocess.run([EXE, "plan", str(day), "--json", "-q"], capture_output=True, text=True, timeout=300)
    (tmp_path / "day.json").write_text(out.stdout)
    r = subprocess.run([EXE, "simulate", "--plan", str(tmp_path / "day.json")], capture_output=True, text=True)
    assert r.returncode == 2 and "day plan" in r.stderr and "Traceback" not in r.stderr


def test_groups_differing_only_in_token_budget_keep_apart_in_routing_and_router(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "examples" / "chat_nvidia.yaml").read_text())
    doc = {**raw, "accelerators": ["H100-SXM"], "workload": {**raw["workload"], "rate_rps": 12}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    r = subprocess.run([EXE, "plan", str(tmp_path / "s.yaml"), "--json", "-q", "--emit", str(tmp_path / "e")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    labels = [g["label"] for g in d["groups"]]
    assert len(labels) == len(set(labels))
    routed = {k for route in d["routing"] for k in route["shares"]}
    assert routed == set(labels)  # every group gets the traffic the plan sized it for
    router = yaml.safe_load((tmp_path / "e" / "router.yaml").read_text())
    targets = {t["target"] for route in router["routes"] for t in route["targets"]}
    assert len(targets) == len(d["groups"])


def test_a_currency_without_prices_in_it_is_refused(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "examples" / "chat_nvidia.yaml").read_text())
    with pytest.raises(PlannerError, match="pricing.currency"):
        planner.plan({**raw, "pricing": {"currency": "EUR"}})
    p = planner.plan({**raw, "accelerators": ["H100-SXM"], "pricing": {"currency": "EUR"},
                      "prices": {"H100-SXM": 2.5}}, alternatives=False)
    assert p.currency == "EUR" and p.cost_per_hour == pytest.approx(2.5 * p.total_gpus)
