"""Error bands from the hold-out calibration errors, and plans sized for a confidence level."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from planner.uncertainty import band

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["planner", *args], capture_output=True, text=True, timeout=300)


def test_bands_hold_the_point_and_flag_uncalibrated_groups():
    b = band("vllm", "hopper", "ttft_s", 0.9)
    assert b.calibrated and b.n > 0 and b.low <= 1.0 <= b.high
    narrow = band("vllm", "hopper", "ttft_s", 0.5)
    assert narrow.high <= b.high and narrow.low >= b.low
    none = band("vllm", "no-such-family", "tpot_s", 0.9)
    assert not none.calibrated and none.n == 0 and none.low <= 1.0 <= none.high


@pytest.mark.parametrize("example", ["deepseek_v3_h200_mi325x_ascend", "long_context_summarisation"])
def test_plan_json_has_bands_and_confidence_never_costs_less(example):
    scenario = str(ROOT / "examples" / f"{example}.yaml")
    r = run("plan", scenario, "--json", "-q")
    assert r.returncode == 0, r.stderr
    point = json.loads(r.stdout)
    for b in point["buckets"]:
        for m in ("ttft_s", "tpot_s"):
            assert b[f"{m}_low"] <= b[m] <= b[f"{m}_high"]
    for m in ("ttft_s", "tpot_s"):
        assert point["predicted"][f"{m}_low"] <= point["predicted"][m] <= point["predicted"][f"{m}_high"]
    assert point["output_tokens_per_s_low"] <= point["output_tokens_per_s"] <= point["output_tokens_per_s_high"]
    statuses = {s["status"] for g in point["uncertainty"]["groups"] for s in (g["ttft_s"], g["tpot_s"])}
    assert statuses <= {"calibrated", "uncalibrated"}
    r = run("plan", scenario, "--json", "-q", "--confidence", "0.9")
    assert r.returncode == 0, r.stderr
    conf = json.loads(r.stdout)
    assert conf["confidence"]["cost_per_hour_point"] == pytest.approx(point["cost_per_hour"])
    assert conf["cost_per_hour"] >= point["cost_per_hour"] - 1e-9
    assert conf["slo"]["tpot_s"] < point["slo"]["tpot_s"]


def test_bad_confidence_is_one_line_exit_2():
    r = run("plan", str(ROOT / "examples" / "budget_capped.yaml"), "-q", "--confidence", "0.95")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--confidence" in r.stderr


def test_shipped_table_is_what_the_script_generates(calibration_dir):
    import importlib.util

    import pandas as pd

    from planner.uncertainty import TABLE

    spec = importlib.util.spec_from_file_location("gen_uncertainty", ROOT / "scripts" / "gen_uncertainty.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fresh = mod.table(calibration_dir).reset_index(drop=True)
    shipped = pd.read_csv(TABLE, comment="#")
    assert list(fresh["n"]) == list(shipped["n"])
    pd.testing.assert_frame_equal(fresh.round(4), shipped, check_dtype=False, atol=2e-4)
