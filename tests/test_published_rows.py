"""The published AMD/Ascend rows (issue 11): read, split without moving the older rows, fitted per
family on at least five training rows, and scored per family in docs/accuracy.md."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from planner.calib.accuracy import holdout_validation, serving_rows
from planner.calib.kernels import KERNEL_FACTORS, with_split
from planner.calib.published import BUNDLED, from_published, published_path
from planner.calib.shipped import serving_fits
from planner.errors import InputError
from planner.hardware import default_hardware
from planner.speculative import acceptance_for, tokens_per_step
from planner.validate import predict_row

ROOT = Path(__file__).resolve().parents[1]
REPORT = json.loads((ROOT / "docs" / "fit_report.json").read_text())
GROUPS = {"MI300X": ("MI300X",), "MI325X": ("MI325X",), "Ascend 910B": ("Ascend-910B3", "Ascend-910B4"),
          "Ascend 910C": ("Ascend-910C",)}
# hold-out MdAPE over every metric but MLPerf Server's, with headroom over the figures in docs/accuracy.md
# (15.6%, 14.8%, 17.2%, 26.6%) so that a real regression fails here
MAX_MDAPE = {"MI300X": 0.25, "MI325X": 0.25, "Ascend 910B": 0.30, "Ascend 910C": 0.40}


@pytest.fixture(scope="module")
def rows(calibration_dir) -> pd.DataFrame:
    df = serving_rows(calibration_dir)
    hw = default_hardware()
    df["acc_id"] = [hw.get(a).id for a in df["accelerator"]]
    df["family"] = [hw.get(a).family for a in df["accelerator"]]
    return df


def test_published_rows_load_with_their_engines_and_speculative_settings():
    df = from_published(BUNDLED)
    assert len(df) == 40  # every row kept, none dropped
    assert set(df["engine"]) == {"vllm", "sglang"}
    assert df["engine_reported"].value_counts().to_dict() == {"vllm": 15, "sglang": 17, "vllm-ascend": 4, "mindie": 4}
    sg = df[df["engine_reported"] == "sglang"]
    assert sg["spec_method"].isin(["eagle", "mtp"]).all() and (sg["spec_draft_tokens"] >= 1).all()
    # the accept length column repeats what each row's notes quote from the benchmark output
    for r in sg.to_dict("records"):
        assert f"accept length {r['spec_accept_length']:.2f}" in r["notes"]
    assert df[df["engine_reported"] != "sglang"]["spec_method"].isna().all()
    hw = default_hardware()
    assert {hw.get(a).id for a in df["accelerator"]} == {"MI300X", "Ascend-910C", "Ascend-910B4", "Ascend-910B3"}


def test_published_file_is_found_next_to_the_calibration_or_bundled(tmp_path):
    assert published_path(tmp_path) == BUNDLED
    (tmp_path / "published_amd_ascend.csv").write_text(BUNDLED.read_text())
    assert published_path(tmp_path) == tmp_path / "published_amd_ascend.csv"


def test_split_of_the_older_rows_is_unchanged(calibration_dir, rows):
    old = serving_rows(calibration_dir, published=False)
    assert len(rows) == len(old) + 40
    mine = rows[rows["origin"] != "published"].reset_index(drop=True)
    assert mine["train"].tolist() == old["train"].tolist()
    assert mine["source"].tolist() == old["source"].tolist()
    # the published rows have a split of their own, drawn with the same seed
    pub = rows[rows["origin"] == "published"]
    assert pub["train"].tolist() == with_split(from_published(BUNDLED), 0)["train"].tolist()


def test_every_family_has_five_training_rows(rows):
    fit = rows[rows["train"] & rows["rate_rps"].isna()]
    for fam in ("cdna3", "ascend-a2", "ascend-a3"):
        assert (fit["family"] == fam).sum() >= 5, fam
    for ids in GROUPS.values():  # and hold-out rows to score
        assert (~rows["train"] & rows["acc_id"].isin(ids)).sum() >= 5, ids


def test_families_without_kernel_tables_are_fitted_from_serving_rows():
    for fam in ("cdna3", "ascend-a2", "ascend-a3"):
        rep = REPORT["kernel_from_serving"][fam]
        assert sum(rep["rows_per_engine"].values()) >= 5
        got = {f["name"]: f for f in rep["factors"]}
        # CDNA3 also fits the power-limited clock exponent: MI300X and MI325X are one die at 750 and 1000 W
        assert set(got) == {"mem_eff_max", "gemm_eff_max"} | ({"power_beta"} if fam == "cdna3" else set())
        for f in got.values():
            assert f["lo"] <= f["value"] <= f["hi"]
            assert f["status"] in ("fitted", "held") or f["status"].endswith("bound")
            if f["status"] == "fitted":
                assert f["se"] is not None and f["se"] > 0
    for engine in ("vllm", "sglang", "trtllm"):  # one physical set, the same in every engine's profile
        doc = yaml.safe_load((ROOT / "planner" / "profiles" / f"{engine}.yaml").read_text())
        for fam in ("ascend-a2", "ascend-a3"):
            assert {k: doc["families"][fam][k] for k in ("mem_eff_max", "gemm_eff_max")} == \
                {f["name"]: f["value"] for f in REPORT["kernel_from_serving"][fam]["factors"]}, (engine, fam)


def test_ascend_refit_reproduces_shipped_values(calibration_dir):
    shipped = yaml.safe_load((ROOT / "planner" / "profiles" / "sglang.yaml").read_text())
    kvals = {fam: {k: v for k, v in block.items() if k in KERNEL_FACTORS}
             for fam, block in shipped["families"].items() if "launch_s" in block}
    docs, reports = serving_fits(calibration_dir, kvals, engines=("sglang",), families=("ascend-a3",),
                                 log=lambda _: None)
    assert docs["sglang"]["families"]["ascend-a3"] == shipped["families"]["ascend-a3"]
    assert json.loads(json.dumps(reports["kernel_from_serving"]["ascend-a3"])) == \
        REPORT["kernel_from_serving"]["ascend-a3"]


def test_holdout_error_per_family_is_finite_and_reported(calibration_dir):
    v = holdout_validation(calibration_dir)
    r = v.rows[v.rows["mode"] != "rate"]
    text = (ROOT / "docs" / "accuracy.md").read_text()
    for label, ids in GROUPS.items():
        sub = r[r["accelerator"].isin(ids)]
        assert len(sub) >= 5, label
        assert np.isfinite(sub["ape"]).all() and math.isfinite(sub["ape"].median())
        assert sub["ape"].median() <= MAX_MDAPE[label], (label, sub["ape"].median())
        line = next(x for x in text.splitlines() if x.startswith(f"| {label} |"))
        assert f"{100 * sub['ape'].median():.1f}% ({len(sub)})" in line, (label, line)


def test_accept_length_gives_the_per_token_acceptance():
    for k, e in ((3, 2.83), (4, 4.03), (3, 1.69), (1, 1.8)):
        a = acceptance_for(k, e)
        assert 0 <= a <= 1 and tokens_per_step(k, a) == pytest.approx(e, rel=1e-9)
    with pytest.raises(InputError):
        acceptance_for(3, 4.5)  # more than k + 1 tokens per step


def test_speculative_and_num_prompts_columns_change_the_prediction():
    df = from_published(BUNDLED)
    sg = df[(df["engine_reported"] == "sglang") & (df["model"] == "qwen3-32b")]
    one = sg[sg["concurrency"] == 1].iloc[0].to_dict()
    # EAGLE-3 at accept length ~2 on one sequence: a verify step costs little more than a plain one
    # (memory bound) but yields ~2 tokens
    assert predict_row(one)["tpot_s"] < 0.8 * predict_row({**one, "spec_method": float("nan")})["tpot_s"]
    row = sg[sg["concurrency"] > 1].iloc[0].to_dict()
    one_wave = predict_row({**row, "num_prompts": row["concurrency"]})
    four_waves = predict_row({**row, "num_prompts": 4 * row["concurrency"]})
    assert one_wave["ttft_s"] != four_waves["ttft_s"]


def test_validate_predicts_engines_without_a_profile_with_the_nearest_one():
    """`planner validate` on the published file skips no row: vllm-ascend and mindie rows are predicted with
    the vllm profile (planner.calib.published) and keep their own engine name in the summary."""
    import subprocess
    import sys

    exe = str(Path(sys.executable).with_name("planner"))
    proc = subprocess.run([exe, "validate", str(BUNDLED), "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["skipped"] == []
    assert {"vllm-ascend", "mindie"} <= {r["engine"] for r in out["summary"]}
