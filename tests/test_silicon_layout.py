"""The silicon rows are read as they ran (planner.calib.silicon_layout): squared world sizes undone,
the benchmark's client count, InferenceX's mean lengths, and speculative runs kept out of fit and scores."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from planner.calib.silicon_layout import mean_length, repair, speculative_ids, squared_world

ROOT = Path(__file__).resolve().parents[1]


def _row(**kw) -> dict:
    base = {"id": "x", "system": "b200_sxm", "tp_size": 8.0, "attention_dp_size": 1.0, "moe_tp_size": 1.0,
            "moe_ep_size": 8.0, "batch_size": 16.0, "isl": 1000.0, "osl": 1000.0,
            "silicon_data_source": "source_file=/Users/x/aic-auto-gap-analysis/data.csv; silicon_concurrency=16"}
    base.update(kw)
    return base


def test_squared_world_is_read_as_the_node_it_ran_on():
    assert squared_world(64, 8, 8, 8) == 8
    assert squared_world(16, 4, 4, 8) == 4
    assert squared_world(16, 1, 16, 8) == 4  # tp 4 x attention DP 4, EP 16
    assert squared_world(8, 1, 8, 8) is None  # fits the node: as recorded
    assert squared_world(36, 36, 1, 72) is None  # an NVL72 domain holds 36 GPUs
    assert squared_world(48, 6, 8, 8) is None  # not a square
    assert squared_world(64, 4, 4, 8) is None  # MoE layout does not cover the recorded world
    s = repair(pd.DataFrame([_row(tp_size=64.0, moe_tp_size=8.0, moe_ep_size=8.0),
                             _row(tp_size=1.0, attention_dp_size=64.0, moe_tp_size=8.0, moe_ep_size=8.0,
                                  batch_size=2.0),
                             _row()]))
    assert s["gpus"].tolist() == [8, 8, 8] and s["ep"].tolist() == [8, 8, 8]
    assert s["tp_size"].tolist() == [8, 1, 8] and s["dp"].tolist() == [1, 8, 1]
    assert s["layout_repaired"].tolist() == [True, True, False]


def test_repaired_rows_match_the_runs_recorded_on_k_gpus(calibration_dir):
    """The evidence: a row recorded on k² GPUs has the TPOT of the same engine, system, model, precision,
    lengths and clients recorded as TP k x EP k."""
    raw = pd.read_csv(calibration_dir / "aiconfigurator_silicon_sample.csv")
    agg = raw[raw["mode"] == "agg"]
    s = repair(agg)
    key = ["backend", "system", "model_path", "precision", "isl", "osl", "clients", "gpus", "ep", "dp"]
    rep, plain = s[s["layout_repaired"]], s[~s["layout_repaired"]]
    assert len(rep) > 300
    pairs = rep.merge(plain, on=key, suffixes=("", "_k"))
    assert len(pairs) >= 100
    ratio = pairs["silicon_tpot_ms"] / pairs["silicon_tpot_ms_k"]
    assert abs(np.median(ratio) - 1.0) < 0.05


def test_clients_are_the_benchmarks_concurrency(calibration_dir):
    s = repair(pd.DataFrame([_row(batch_size=56.0, tp_size=4.0, moe_ep_size=4.0,
                                  silicon_data_source="gap; silicon_concurrency=224")]))
    assert s["clients"].iloc[0] == 224
    s = repair(pd.DataFrame([_row(batch_size=4.0, tp_size=1.0, attention_dp_size=8.0, silicon_data_source="")]))
    assert s["clients"].iloc[0] == 32  # no provenance: batch per attention rank x ranks
    from planner.calib.measured import from_aiconfigurator_silicon

    df = from_aiconfigurator_silicon(calibration_dir / "aiconfigurator_silicon_sample.csv")
    row = df[df["source"].str.contains("agg_4000x1000_c224_tp4_epnone_1", regex=False)]
    assert row["concurrency"].tolist() == [224]


def test_inferencex_rows_carry_their_mean_lengths(calibration_dir):
    """benchmark_serving draws lengths uniformly on floor(0.8 L)..L: mean (819 + 1024)/2 for L = 1024."""
    assert mean_length(pd.Series([1024.0, 8192.0])).tolist() == [921.5, (6553 + 8192) / 2]
    from planner.calib.measured import from_aiconfigurator_silicon

    df = from_aiconfigurator_silicon(calibration_dir / "aiconfigurator_silicon_sample.csv")
    raw = pd.read_csv(calibration_dir / "aiconfigurator_silicon_sample.csv").set_index("id")
    ids = df["source"].str.replace("aiconfigurator_silicon_sample.csv id=", "", regex=False)
    src = raw.loc[ids, "silicon_data_source"].astype(str).to_numpy()
    inferencex = df[pd.Series(src).str.startswith("db-dump").to_numpy()]
    assert len(inferencex) > 500 and set(inferencex["isl"]) <= {921.5, 7372.5}
    ours = df[pd.Series(src).str.contains("aic-auto-gap-analysis", regex=False).to_numpy()]
    assert len(ours) > 300 and {1000.0, 4096.0} <= set(ours["isl"])  # their own runs keep their lengths


def test_speculative_runs_are_neither_fitted_nor_scored(calibration_dir):
    from planner.calib.accuracy import holdout_validation, serving_rows

    ids = speculative_ids()
    raw = pd.read_csv(calibration_dir / "aiconfigurator_silicon_sample.csv")
    assert len(ids) > 80 and ids <= set(raw["id"])
    mtp = raw[raw["id"].isin(ids)]
    # TensorRT-LLM 1.2.0rc6.post3 was the image of InferenceX's MTP configs alone
    post3 = raw[(raw["backend"] == "trtllm") & (raw["backend_version"] == "1.2.0rc6.post3")
                & raw["model_path"].str.contains("DeepSeek-R1")]
    assert len(post3) > 80 and post3["id"].isin(ids).all()
    df = serving_rows(calibration_dir)
    listed = df["source"].str.replace("aiconfigurator_silicon_sample.csv id=", "", regex=False).isin(ids)
    assert listed.sum() == len(mtp[mtp["mode"] == "agg"])
    assert (~df.loc[listed, "plausible"]).all()
    assert df.loc[listed, "rejected"].isin(["speculative", "duplicate"]).all()
    assert (df.loc[listed, "rejected"] == "speculative").sum() > 50
    scored = holdout_validation(calibration_dir).rows
    assert not scored["source"].isin(df.loc[listed, "source"]).any()


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_spec", ROOT / "scripts" / "gen_silicon_speculative.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("conc, expect", [(4, ["mtp"]), (64, []), (8, [])])
def test_attribution_needs_every_matching_config_to_be_speculative(conc, expect):
    """A row is speculative only when every config that used its image and holds its point is: at 4
    clients only the MTP config does; at 64 both do; at 8 (not a doubling of 4 below 16) neither."""
    gen = _load_generator()
    point = {"isl": 1024, "osl": 1024, "tp": 8, "ep": 1, "dp": False, "list": None}
    snaps = [{"commit": "c" * 40, "date": "2026-01-01", "configs": {
        "dsr1-fp8-b200-trt-mtp": {"image": "nvcr.io/nvidia/tensorrt-llm/release:1.2.0rc6.post3", "precision": "fp8",
                                  "framework": "trt", "runner": "b200-trt", "prefix": "dsr1",
                                  "points": [{**point, "lo": 4, "hi": 64, "spec": "mtp"}]},
        "dsr1-fp8-b200-trt": {"image": "nvcr.io/nvidia/tensorrt-llm/release:1.2.0rc6.post3", "precision": "fp8",
                              "framework": "trt", "runner": "b200-trt", "prefix": "dsr1",
                              "points": [{**point, "lo": 32, "hi": 128, "spec": "none"}]}}}]
    if conc == 8:
        snaps[0]["configs"]["dsr1-fp8-b200-trt-mtp"]["points"][0].update(lo=3, hi=16)
    silicon = pd.DataFrame([{"id": "r", "mode": "agg", "model_path": "deepseek-ai/DeepSeek-R1", "system": "b200_sxm",
                             "backend": "trtllm", "precision": "fp8", "isl": 1024, "osl": 1024, "tp_size": 8.0,
                             "attention_dp_size": 1.0, "moe_ep_size": 1.0,
                             "silicon_data_source": f"x; silicon_concurrency={conc}; measured=2026-02-01; "
                                                    "image=nvcr.io#nvidia/tensorrt-llm/release:1.2.0rc6.post3"}])
    out = gen.attribute(silicon, snaps)
    assert out["spec_method"].tolist() == expect


def test_a_measurement_exported_twice_is_kept_once(calibration_dir):
    """The dated exports repeat each other's runs figure for figure; the repeats are neither fitted nor
    scored, so no measurement sits on both sides of the seeded split."""
    from planner.calib.accuracy import serving_rows

    raw = pd.read_csv(calibration_dir / "aiconfigurator_silicon_sample.csv")
    agg = raw[raw["mode"] == "agg"]
    s = repair(agg)
    assert 300 < s["duplicate"].sum() < 0.2 * len(s)
    from planner.calib.silicon_layout import DUPLICATE_KEY

    assert not s[~s["duplicate"]].duplicated(list(DUPLICATE_KEY)).any()
    assert s[s["duplicate"]]["silicon_data_source"].str.contains("source_file=2026-0|db-dump").all()
    df = serving_rows(calibration_dir)
    kept = df[df["origin"] == "silicon"]
    dup = kept["rejected"] == "duplicate"
    assert dup.sum() > 250 and (~kept.loc[dup, "plausible"]).all()
    scored = kept[kept["plausible"]]
    assert not scored.duplicated(["model", "accelerator", "engine", "isl", "osl", "concurrency", "tp", "ttft_s",
                                  "tpot_s"]).any()


def test_kv_dtype_is_the_launch_scripts(calibration_dir):
    """InferenceX's vLLM Llama-3.1-70B runs set --kv-cache-dtype fp8; its TensorRT-LLM gpt-oss runs on H200
    set no KV dtype (16-bit), though the weights are 4-bit; aiconfigurator's own runs keep the reader's rule."""
    from planner.calib.measured import from_aiconfigurator_silicon
    from planner.calib.silicon_layout import kv_dtypes

    table = kv_dtypes()
    raw = pd.read_csv(calibration_dir / "aiconfigurator_silicon_sample.csv")
    assert len(table) > 1500 and set(table) <= set(raw["id"]) and set(table.values()) == {"fp8", "bf16"}
    df = from_aiconfigurator_silicon(calibration_dir / "aiconfigurator_silicon_sample.csv")
    ids = df["source"].str.replace("aiconfigurator_silicon_sample.csv id=", "", regex=False)
    llama = df[df["model"].str.contains("Llama-3.1-70B") & (df["engine"] == "vllm") & ids.isin(table)]
    assert len(llama) > 100 and (llama["kv_dtype"] == "fp8").all()
    gpt = df[df["model"].str.contains("gpt-oss") & (df["engine"] == "trtllm") & (df["accelerator"] == "h200_sxm")
             & ids.isin(table)]
    assert len(gpt) > 50 and (gpt["kv_dtype"] == "bf16").all()
    gen = _load_generator_kv()
    assert gen.kv_of("vllm serve m --kv-cache-dtype fp8_e4m3 --tp 8", "vllm") == "fp8"
    assert gen.kv_of("kv_cache_config:\n  enable_block_reuse: false\n  dtype: fp8\n", "trtllm") == "fp8"
    assert gen.kv_of("trtllm-serve m --tp_size 8", "trtllm") == "auto"


def _load_generator_kv():
    spec = importlib.util.spec_from_file_location("gen_kv", ROOT / "scripts" / "gen_silicon_kv_dtype.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_validate_on_a_silicon_file_leaves_out_speculative_runs_and_repeats(calibration_dir, tmp_path):
    """planner validate (the console script) on an aiconfigurator silicon extract scores a measurement
    once and no MTP run: a file of one plain row, its exported repeat and one MTP row scores one row."""
    import json
    import subprocess
    import sys

    raw = pd.read_csv(calibration_dir / "aiconfigurator_silicon_sample.csv")
    s = repair(raw[raw["mode"] == "agg"])
    dup = s[s["duplicate"] & s["model_path"].str.contains("gpt-oss-120b")].iloc[0]
    same = ((s[["backend", "system", "precision"]] == dup[["backend", "system", "precision"]]).all(axis=1)
            & np.isclose(s["silicon_tpot_ms"], dup["silicon_tpot_ms"], rtol=1e-9)
            & np.isclose(s["silicon_ttft_ms"], dup["silicon_ttft_ms"], rtol=1e-9))
    first = s[~s["duplicate"] & same].iloc[0]
    mtp = raw[raw["id"].isin(speculative_ids()) & (raw["mode"] == "agg")].iloc[0]
    sample = raw[raw["id"].isin([first["id"], dup["id"], mtp["id"]])]
    assert len(sample) == 3
    path = tmp_path / "silicon.csv"
    sample.to_csv(path, index=False)
    exe = Path(sys.executable).with_name("planner")
    proc = subprocess.run([str(exe), "validate", str(path), "--json", "--quiet"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["rows"]
    assert {r["source"] for r in rows} == {f"aiconfigurator_silicon_sample.csv id={first['id']}"}
