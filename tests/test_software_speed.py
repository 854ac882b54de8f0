"""The software speed of an MLPerf round (planner.calib.software): an exact rescaling of time, fitted per
(engine, round) with a prior and bounds, and reproduced byte for byte from the shipped profiles."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from planner.calib.software import TABLE, fit_round_speeds, load_speeds, speed_table, with_software_speed
from planner.errors import PlannerError
from planner.validate import predict_row

ROOT = Path(__file__).resolve().parents[1]
BASE = {"model": "llama-3.1-8b", "accelerator": "H100-SXM", "engine": "vllm", "tp": 1, "count": 2,
        "precision": "fp8", "kv_dtype": "fp8", "isl": 1000, "osl": 200}


def test_a_faster_round_doubles_throughput_and_halves_latency_exactly():
    off = predict_row(dict(BASE))["output_tokens_per_s"]
    assert predict_row({**BASE, "software_speed": 2.0})["output_tokens_per_s"] == pytest.approx(2 * off, rel=1e-12)
    closed = predict_row({**BASE, "concurrency": 16, "stat": "mean"})
    fast = predict_row({**BASE, "concurrency": 16, "stat": "mean", "software_speed": 2.0})
    assert fast["tpot_s"] == pytest.approx(closed["tpot_s"] / 2, rel=1e-12)
    assert fast["ttft_s"] == pytest.approx(closed["ttft_s"] / 2, rel=1e-12)
    # at a rate: the same model at half the rate, on a clock twice as fast
    at = predict_row({**BASE, "rate_rps": 10.0, "stat": "p99", "software_speed": 2.0})
    slow = predict_row({**BASE, "rate_rps": 5.0, "stat": "p99"})
    assert at["tpot_s"] == pytest.approx(slow["tpot_s"] / 2, rel=1e-12)
    # tuned to p99 limits: twice the rate meeting them, as the slow model meets limits twice as loose
    lim = {"rate_rps": 10.0, "stat": "p99", "ttft_limit_s": 1.0, "tpot_limit_s": 0.04}
    a = predict_row({**BASE, **lim, "software_speed": 2.0})
    b = predict_row({**BASE, **lim, "ttft_limit_s": 2.0, "tpot_limit_s": 0.08})
    assert a["rate_rps"] == pytest.approx(2 * b["rate_rps"], rel=1e-12)
    assert a["tpot_s"] == pytest.approx(b["tpot_s"] / 2, rel=1e-12)


def test_a_speed_is_the_same_model_on_hardware_and_software_twice_as_fast():
    """The rescaling is exact because the model is homogeneous in time: an H100 with twice the FLOP/s,
    bandwidth and power, under a profile whose every time (launch, per kernel, per step, per sequence,
    per request, link latency) is halved, predicts what ``software_speed`` 2 predicts on the H100."""
    from dataclasses import replace

    from planner.hardware import HardwareDB, default_hardware
    from planner.profile import load_profile

    h100 = default_hardware().get("H100-SXM")
    fast = replace(h100, id="H100-FAST", aliases=(), peak_flops={k: 2 * v for k, v in h100.peak_flops.items()},
                   mem_bw_bytes_per_s=2 * h100.mem_bw_bytes_per_s, tdp_w=2 * h100.tdp_w,
                   scaleup_bw_bytes_per_s=2 * h100.scaleup_bw_bytes_per_s,
                   scaleout_bw_bytes_per_s=2 * h100.scaleout_bw_bytes_per_s)
    prof = load_profile("vllm")
    eff = prof.for_accelerator(h100.id, h100.family)
    halved = replace(eff, **{k: getattr(eff, k) / 2 for k in ("launch_s", "kernel_overhead_s", "step_overhead_s",
                                                              "seq_overhead_s", "ttft_overhead_s", "comm_latency_s")})
    fast_prof, fast_hw = prof.with_override(fast.id, halved), HardwareDB((fast,))
    for extra in ({}, {"concurrency": 16, "stat": "mean"}, {"rate_rps": 10.0, "stat": "p99"},
                  {"rate_rps": 10.0, "stat": "p99", "ttft_limit_s": 1.0, "tpot_limit_s": 0.04}):
        want = predict_row({**BASE, **extra, "accelerator": "H100-FAST"}, fast_prof, fast_hw)
        got = predict_row({**BASE, **extra, "software_speed": 2.0})
        assert set(got) == set(want)
        for k, v in want.items():
            if math.isnan(v):  # a metric the mode does not predict (offline TTFT)
                assert math.isnan(got[k]), (extra, k)
            else:
                assert got[k] == pytest.approx(v, rel=1e-9), (extra, k)


def test_a_speed_must_be_a_positive_number():
    with pytest.raises(PlannerError, match="software_speed"):
        predict_row({**BASE, "software_speed": -1.0})
    with pytest.raises(PlannerError, match="software_speed: expected a number"):
        predict_row({**BASE, "software_speed": "fast"})


def test_round_speed_fit_recovers_a_known_speed_within_its_bounds():
    n = 40
    rows = pd.DataFrame({"engine": ["trtllm"] * n + ["vllm"] * 3, "version": ["v5.1"] * n + ["v4.1"] * 3,
                         "output_tokens_per_s": [100.0] * (n + 3)})
    rng = np.random.default_rng(0)
    pred = np.concatenate([100.0 / 1.25 * np.exp(rng.normal(0, 0.02, n)), [100.0 / 3.0] * 3])
    fits = fit_round_speeds(rows, pred)
    t = fits[("trtllm", "v5.1")].factors[0]
    assert t.status == "fitted" and t.value == pytest.approx(1.25, rel=0.01) and 0 < t.se < 0.01
    v = fits[("vllm", "v4.1")].factors[0]  # the data want 3x: no round of software triples throughput
    assert v.status == "upper bound" and v.value == 2.0
    table = speed_table(fits)
    assert list(table["round"]) == ["v5.1", "v4.1"] and list(table["rows"]) == [n, 3]


def test_the_shipped_table_holds_every_round_and_rows_get_it():
    speeds = load_speeds()
    assert {("trtllm", "v4.1"), ("trtllm", "v5.1"), ("vllm", "v5.1")} <= set(speeds)
    assert all(0.5 <= s <= 2.0 for s in speeds.values())
    df = pd.DataFrame({"engine": ["trtllm", "trtllm", "vllm"], "version": ["v5.1", "v9.9", math.nan]})
    got = with_software_speed(df)["software_speed"].tolist()
    assert got[0] == speeds[("trtllm", "v5.1")] and math.isnan(got[1]) and math.isnan(got[2])


def test_refitting_the_round_speeds_from_the_shipped_profiles_gives_the_shipped_table(calibration_dir):
    import json

    from planner.calib.shipped import ENGINES, round_speed_fits

    docs = {e: yaml.safe_load((ROOT / "planner" / "profiles" / f"{e}.yaml").read_text()) for e in ENGINES}
    table, reports = round_speed_fits(calibration_dir, docs)
    assert table.to_csv(index=False, lineterminator="\n") == TABLE.read_text()
    shipped = json.loads((ROOT / "docs" / "fit_report.json").read_text())["software_rounds"]
    assert json.loads(json.dumps(reports)) == shipped
