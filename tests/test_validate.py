"""validate and calibrate: the measured schema, bad rows, gates and exit codes, JUnit, scope of a calibration."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree as ET

import pandas as pd
import pytest
from typer.testing import CliRunner

from planner.calib.measured import read_measured
from planner.calibrate import calibrate
from planner.cli import app
from planner.errors import PlannerError
from planner.profile import load_profile
from planner.validate import predict_row, validate_frame

runner = CliRunner()
FAMILIES_CSV = Path(__file__).parent / "data" / "validate_families.csv"

GOOD = {"model": "llama-3.1-70b", "accelerator": "H200-SXM", "count": 4, "tp": 4, "pp": 1, "ep": 1,
        "precision": "fp8", "kv_dtype": "fp8", "engine": "trtllm", "isl": 1024, "osl": 1024, "concurrency": 32,
        "rate_rps": "", "output_tokens_per_s": "", "ttft_s": 0.368, "tpot_s": 0.0106, "stat": "mean",
        "source": "aiconfigurator silicon (H200, TP4, c32)"}


def write_csv(tmp_path, rows, name="measured.csv"):
    p = tmp_path / name
    pd.DataFrame(rows).to_csv(p, index=False)
    return p


def test_bad_rows_are_named_and_the_rest_evaluated(tmp_path):
    rows = [GOOD,
            {**GOOD, "model": "no-such-model"},
            {**GOOD, "accelerator": "H900"},
            {**GOOD, "tpot_s": "fast", "ttft_s": ""},
            {**GOOD, "isl": "abc"}]
    p = write_csv(tmp_path, rows)
    res = runner.invoke(app, ["validate", str(p)])
    assert res.exit_code == 0, res.output
    assert "line 3" in res.output and "unknown model" in res.output
    assert "line 4" in res.output and "unknown accelerator" in res.output
    assert "line 5" in res.output and "tpot_s: expected a number, got 'fast'" in res.output
    assert "line 6" in res.output and "isl" in res.output
    assert "4 of 5 rows skipped" in res.output


def test_gate_exit_codes_and_junit(tmp_path):
    p = write_csv(tmp_path, [GOOD])
    ok = runner.invoke(app, ["validate", str(p), "--max-mdape", "0.99", "--json"])
    assert ok.exit_code == 0
    data = json.loads(ok.stdout)
    assert data["passed"] is True and data["summary"]
    junit = tmp_path / "out.xml"
    bad = runner.invoke(app, ["validate", str(p), "--max-mdape", "0.0001", "--junit", str(junit)])
    assert bad.exit_code == 1
    suite = ET.parse(junit).getroot()
    assert int(suite.get("failures")) >= 1


def test_missing_columns_and_empty_file(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("model,accelerator\nx,y\n")
    res = runner.invoke(app, ["validate", str(p)])
    assert res.exit_code == 2 and "missing column" in res.output
    e = tmp_path / "e.csv"
    e.write_text("")
    res = runner.invoke(app, ["validate", str(e)])
    assert res.exit_code == 2 and "empty" in res.output
    with pytest.raises(PlannerError, match="missing column"):
        read_measured(p)


def test_prediction_is_close_for_a_measured_row():
    pred = predict_row(GOOD)
    assert pred["tpot_s"] == pytest.approx(GOOD["tpot_s"], rel=0.35)


def test_calibration_changes_only_that_accelerator_and_engine(tmp_path):
    # Pretend measurements 30% slower than predicted on H200 with trtllm
    base = predict_row(GOOD)
    rows = []
    for c in (4, 8, 16, 32, 64):
        r = {**GOOD, "concurrency": c}
        pr = predict_row(r)
        rows.append({**r, "tpot_s": pr["tpot_s"] * 1.3, "ttft_s": pr["ttft_s"] * 1.3})
    out = tmp_path / "prof.yaml"
    report = calibrate(pd.DataFrame(rows), engine="trtllm", output=out, holdout=0.0)
    assert report[0]["accelerators"] == ["H200-SXM"]
    prof = load_profile(str(out))
    after = predict_row(GOOD, profile=prof)
    assert after["tpot_s"] > base["tpot_s"] * 1.1
    # another accelerator of the same family, and another engine, are unchanged
    other = {**GOOD, "accelerator": "H100-SXM"}
    assert predict_row(other, profile=prof)["tpot_s"] == pytest.approx(predict_row(other)["tpot_s"])
    # the engine the fit did not touch keeps its shipped factors (the file on disk is not rewritten)
    from planner.profile import PROFILE_DIR, parse_profile

    shipped = parse_profile(__import__("yaml").safe_load((PROFILE_DIR / "vllm.yaml").read_text()), "vllm")
    assert load_profile("vllm").for_accelerator("H200-SXM", "hopper") == shipped.for_accelerator("H200-SXM", "hopper")
    assert prof.for_accelerator("H200-SXM", "hopper") != load_profile("trtllm").for_accelerator("H200-SXM", "hopper")
    v = validate_frame(pd.DataFrame(rows), profile=prof)
    assert v.rows["ape"].median() < 0.15


def test_stat_column_selects_the_statistic():
    mean = predict_row({**GOOD, "stat": "mean"})
    p99 = predict_row({**GOOD, "stat": "p99"})
    assert p99["ttft_s"] > mean["ttft_s"]
    with pytest.raises(PlannerError, match="stat"):
        predict_row({**GOOD, "stat": "p42"})


@pytest.mark.skipif(shutil.which("planner") is None, reason="console script not installed")
def test_validate_reports_each_accelerator_family():
    """The installed command summarises errors per hardware family (the hardware_db entry's ``family``),
    in the table and in --json, over the same comparisons as the per-group summary."""
    proc = subprocess.run(["planner", "validate", str(FAMILIES_CSV), "--json"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    fams = data["families"]
    assert {f["family"] for f in fams} == {"hopper", "cdna3", "ascend-a2", "ascend-a3"}
    assert all(set(f) == {"family", "metric", "n", "mdape", "p90_ape", "bias"} for f in fams)
    assert sum(f["n"] for f in fams) == sum(r["n"] for r in data["summary"]) == len(data["rows"])
    rows = pd.DataFrame(data["rows"])
    for f in fams:  # each figure is that family's own rows
        ape = rows[(rows["family"] == f["family"]) & (rows["metric"] == f["metric"])]["ape"]
        assert f["n"] == len(ape) and f["mdape"] == pytest.approx(ape.median())
        assert f["p90_ape"] == pytest.approx(ape.quantile(0.9)) and f["mdape"] <= f["p90_ape"] + 1e-12
    # Ascend-910B4 and -910C are two families (A2, A3) in the per-family table, one row each per metric
    table = subprocess.run(["planner", "validate", str(FAMILIES_CSV)], capture_output=True, text=True, timeout=300)
    assert table.returncode == 0, table.stderr
    assert "per accelerator family" in table.stdout
    assert all(name in table.stdout for name in ("hopper", "cdna3", "ascend-a2", "ascend-a3"))


@pytest.mark.skipif(shutil.which("planner") is None, reason="console script not installed")
def test_validate_bad_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("model,accelerator\nllama-3.1-8b\n")
    proc = subprocess.run(["planner", "validate", str(bad), "--json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
