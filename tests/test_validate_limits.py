"""Rows tuned to p99 limits (MLPerf Server): predicted at the model's own highest rate meeting them."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from planner.errors import PlannerError
from planner.serving.estimate import estimate
from planner.validate import predict_row, validate_frame
from planner.workload import SLO

ROW = {"model": "llama-3.1-8b", "accelerator": "H100-SXM", "engine": "vllm", "tp": 1, "count": 4,
       "precision": "fp8", "kv_dtype": "fp8", "isl": 1000, "osl": 200, "rate_rps": 30.0,
       "ttft_s": 0.5, "tpot_s": 0.03, "stat": "p99", "ttft_limit_s": 2.0, "tpot_limit_s": 0.05}


def test_the_rate_predicted_is_the_goodput_of_the_instances_as_one_queue():
    pred = predict_row(dict(ROW))
    per = estimate(model="llama-3.1-8b", accelerator="H100-SXM", tp=1, precision="fp8", kv_dtype="fp8",
                   engine="vllm", isl=1000, osl=200, rate_rps=1.0, slo=SLO(ttft_s=2.0, tpot_s=0.05), pool=4)
    assert pred["rate_rps"] == pytest.approx(4 * per.max_goodput_rps, rel=1e-6)
    # the latencies are those at that rate: at the limits to the goodput grid's linear interpolation
    assert pred["tpot_s"] <= 0.05 * 1.01 and pred["ttft_s"] <= 2.0 * 1.01
    assert pred["tpot_s"] > 0 and pred["ttft_s"] > 0


def test_a_tighter_limit_never_predicts_a_higher_rate():
    loose = predict_row(dict(ROW))["rate_rps"]
    tight = predict_row({**ROW, "tpot_limit_s": 0.02})["rate_rps"]
    assert 0 < tight < loose


def test_the_submitted_rate_is_scored_and_a_rate_beyond_capacity_is_not_skipped():
    far = {**ROW, "rate_rps": 1e5}  # far beyond what 4 GPUs serve: still scored at the model's own rate
    v = validate_frame(pd.DataFrame([ROW, far]))
    assert v.skipped == ()
    rate = v.rows[v.rows["metric"] == "rate_rps"]
    assert list(rate["measured"]) == [30.0, 1e5] and rate["predicted"].nunique() == 1
    # without the limits the same row is predicted at its rate, and that one is beyond capacity
    plain = validate_frame(pd.DataFrame([{k: v for k, v in far.items() if not k.endswith("_limit_s")}]))
    assert plain.rows.empty and "exceeds this instance's capacity" in plain.skipped[0][1]


def test_limits_must_be_two_positive_numbers():
    with pytest.raises(PlannerError, match="ttft_limit_s/tpot_limit_s: expected positive"):
        predict_row({**ROW, "tpot_limit_s": -1.0})
    with pytest.raises(PlannerError, match="expected both limits"):
        predict_row({**ROW, "tpot_limit_s": math.nan})
    with pytest.raises(PlannerError, match="ttft_limit_s: expected a number"):
        predict_row({**ROW, "ttft_limit_s": "two seconds"})
    plain = predict_row({k: v for k, v in ROW.items() if not k.endswith("_limit_s")})
    assert "rate_rps" not in plain  # without limits: predicted at its rate, as any rate row


def test_a_limit_row_beyond_the_models_context_says_so():
    with pytest.raises(PlannerError, match="context"):
        predict_row({**ROW, "isl": 200_000})
