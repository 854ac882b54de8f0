"""Every accelerator named in the shipped calibration data resolves in hardware_db, so no measured
row is lost to a missing entry (issue 11). Mixed-accelerator MLPerf systems are the one exception:
``from_mlperf`` leaves them out because a row must be one instance type."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from planner.calib.measured import _mixed, from_aiconfigurator_silicon, from_mlperf, read_measured
from planner.errors import PlannerError
from planner.hardware import default_hardware
from planner.validate import validate_frame

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "tests" / "data" / "calibration"
PUBLISHED = ("published_amd_ascend.csv", "published_ascend_disaggregated.csv")
# file -> columns that name an accelerator (vidur's all-reduce 'topology' names a system, not a device)
NAME_COLUMNS = {
    "mlperf_llm_all.csv": ("accelerator",),
    "aiconfigurator_silicon_sample.csv": ("system",),
    "aiconfigurator_gemm_sample.csv": ("system", "device"),
    "aiconfigurator_ctx_attention_sample.csv": ("system", "device"),
    "aiconfigurator_gen_attention_sample.csv": ("system", "device"),
    "aiconfigurator_allreduce_sample.csv": ("system", "device"),
    "ascend_measured_sample.csv": ("npu",),
    "distserve_a100_latency_fits.csv": ("gpu",),
    "vidur_mlp_sample.csv": ("gpu",),
    **{name: ("accelerator",) for name in PUBLISHED},
}


def _unknown(names) -> list[str]:
    db = default_hardware()
    bad = []
    for n in sorted({str(n) for n in names if isinstance(n, str) and n.strip()}):
        try:
            db.get(n)
        except PlannerError:
            bad.append(n)
    return bad


def _files(calibration_dir: Path) -> list[Path]:
    dirs = {Path(calibration_dir), BUNDLED}
    return sorted(p for d in dirs for p in d.glob("*.csv") if p.name in NAME_COLUMNS)


def test_every_named_accelerator_resolves(calibration_dir):
    files = _files(calibration_dir)
    assert any(p.name == "mlperf_llm_all.csv" for p in files)
    for path in files:
        df = pd.read_csv(path)
        for col in NAME_COLUMNS[path.name]:
            names = df[col].dropna()
            if path.name == "mlperf_llm_all.csv":
                names = names[~names.map(_mixed)]
            assert _unknown(names) == [], f"{path.name}:{col}"


@pytest.mark.parametrize("scenarios", [("Offline",), ("Server",)])
def test_readers_keep_every_row_with_a_known_accelerator(calibration_dir, scenarios):
    rows = from_mlperf(Path(calibration_dir) / "mlperf_llm_all.csv", scenarios=scenarios)
    assert len(rows) > 100 and _unknown(rows["accelerator"]) == []
    silicon = from_aiconfigurator_silicon(Path(calibration_dir) / "aiconfigurator_silicon_sample.csv")
    assert _unknown(silicon["accelerator"]) == []
    for name in PUBLISHED:
        assert _unknown(read_measured(BUNDLED / name)["accelerator"]) == [], name


def test_no_mlperf_row_skipped_for_an_unknown_accelerator(calibration_dir):
    v = validate_frame(from_mlperf(Path(calibration_dir) / "mlperf_llm_all.csv"))
    reasons = [r for _, r in v.skipped if "unknown accelerator" in r]
    assert reasons == []


def test_published_amd_ascend_rows_load_and_name_their_sources():
    df = read_measured(BUNDLED / "published_amd_ascend.csv")
    db = default_hardware()
    fam = df["accelerator"].map(lambda a: db.get(a).id)
    for acc in ("MI300X", "Ascend-910C", "Ascend-910B4"):
        assert (fam == acc).sum() >= 4, acc
    assert (df["accelerator"].map(lambda a: db.get(a).family) == "ascend-a2").sum() >= 5
    assert df["source"].fillna("").str.len().min() > 20


def test_mlperf_precision_placeholders_take_the_family_default(tmp_path):
    """v4.1 labels Hopper TensorRT runs "fp16" and v5.0 leaves the field blank; the calibration
    README records Hopper/AMD runs as FP8 and Blackwell as FP4. Quantised labels are kept."""
    from planner.calib.measured import _mlperf_precision

    assert _mlperf_precision("fp16", "NVIDIA H100-SXM-80GB") == "fp8"
    assert _mlperf_precision(None, "NVIDIA B200-SXM-180GB") == "fp4"
    assert _mlperf_precision("UNSET", "AMD Instinct MI325X") == "fp8"
    assert _mlperf_precision("mxfp4", "AMD Instinct MI355X") == "fp4"
    assert _mlperf_precision("int4", "NVIDIA H100-SXM-80GB") == "int4"
    assert _mlperf_precision("fp8", "NVIDIA GB200") == "fp8"


def test_mlperf_open_division_is_read_only_on_request(calibration_dir, tmp_path):
    """The Open division may change the model, its quantisation or its generation, so its rows are not
    of the reference workload: the reader leaves them out unless asked, and then says which is which."""
    src = pd.read_csv(Path(calibration_dir) / "mlperf_llm_all.csv")
    off = src[(src["scenario"] == "Offline") & src["tokens_per_s_per_accel"].notna()
              & src["model_norm"].astype(str).str.startswith("llama2-70b-99")]
    closed = off[off["division"] == "closed"].head(1)
    opened = off[off["division"] == "open"].head(1)
    assert len(closed) == 1 and len(opened) == 1
    path = tmp_path / "two.csv"
    pd.concat([closed, opened]).to_csv(path, index=False)
    default = from_mlperf(path)
    assert len(default) == 1 and (default["division"] == "closed").all()
    both = from_mlperf(path, divisions=None)
    assert sorted(both["division"]) == ["closed", "open"]
    # the hold-out rows the report scores hold no Open-division run
    from planner.calib.accuracy import serving_rows

    rows = serving_rows(Path(calibration_dir), published=False)
    def label(df: pd.DataFrame) -> set[str]:
        return {f"mlperf {r.version} {r.submitter} {r.system} {r.model_norm} {r.scenario}" for r in df.itertuples()}

    only_open = label(src[src["division"] == "open"]) - label(src[src["division"] == "closed"])
    assert only_open and not only_open & set(rows["source"])


def test_mlperf_server_rows_carry_their_p99_limits(calibration_dir):
    rows = from_mlperf(Path(calibration_dir) / "mlperf_llm_all.csv", scenarios=("Server",))
    l70 = rows[rows["model"].str.startswith("llama2-70b")]
    assert len(l70) > 20
    assert set(l70["ttft_limit_s"]) == {2.0} and set(l70["tpot_limit_s"]) == {0.2}  # LoadGen's Llama-2-70B limits
