"""Hardware database: every file valid and sourced, SI conversion, lookups, user files, bad files."""

from __future__ import annotations

import pytest
import yaml

from planner.errors import PlannerError, UnknownNameError
from planner.hardware import GIB, default_hardware, load_accelerator_file, load_hardware

REQUIRED = ["A100-SXM-40GB", "A100-SXM-80GB", "H100-SXM", "H100-PCIe", "H200-SXM", "B200", "GB200", "L4", "L40S",
            "A10G", "MI300X", "MI325X", "MI355X", "Ascend-910B3", "Ascend-910B4", "Ascend-910C"]


def test_required_accelerators_present_and_sourced():
    db = default_hardware()
    ids = set(db.ids())
    assert set(REQUIRED) <= ids
    for acc in db:
        for key in ("memory_gib", "mem_bw_tb_per_s", "peak_tflops_dense", "scaleup", "scaleout_bw_gb_per_s",
                    "tdp_w"):
            assert acc.sources.get(key), (acc.id, key)
        assert acc.price_source and acc.price_per_hour > 0


def test_si_conversion_h100():
    h = default_hardware().get("h100")
    assert h.id == "H100-SXM"
    assert h.memory_bytes == 80 * GIB
    assert h.mem_bw_bytes_per_s == pytest.approx(3.35e12)
    assert h.peak_flops["bf16"] == pytest.approx(989e12)
    assert h.peak_flops["fp8"] == pytest.approx(1979e12, rel=1e-3)
    assert h.scaleup_bw_bytes_per_s == pytest.approx(450e9)
    assert h.scaleup_domain == 8


def test_ampere_has_no_fp8_and_hopper_no_fp4():
    db = default_hardware()
    assert not db.get("A100-SXM-80GB").supports("fp8")
    assert not db.get("H100-SXM").supports("fp4")
    assert db.get("B200").supports("fp4")


@pytest.mark.parametrize("alias", ["NVIDIA H200-SXM-141GB", "h200_sxm", "H200", "h200-sxm"])
def test_aliases(alias):
    assert default_hardware().get(alias).id == "H200-SXM"


def test_unknown_gpu_suggests():
    with pytest.raises(UnknownNameError, match="did you mean"):
        default_hardware().get("H10O-SXM")


def _valid_doc() -> dict:
    return yaml.safe_load(open(default_hardware().get("H100-SXM").path))


def test_user_file_adds_and_overrides(tmp_path):
    doc = _valid_doc()
    doc.update(id="MyGPU", name="My GPU", aliases=["mine"])
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(doc))
    db = load_hardware([tmp_path])
    assert db.get("mine").id == "MyGPU"
    assert len(db) == len(default_hardware()) + 1


@pytest.mark.parametrize(
    "mutate,pattern",
    [
        (lambda d: d.pop("mem_bw_tb_per_s"), "mem_bw_tb_per_s: expected a value"),
        (lambda d: d.update(memory_gib="eighty"), "memory_gib: expected a number"),
        (lambda d: d.update(tdp_w=-5), r"tdp_w: expected a number in \[1, 100000\] W"),
        (lambda d: d["peak_tflops_dense"].update(fp7=3), "peak_tflops_dense.fp7"),
        (lambda d: d["sources"].pop("tdp_w"), "sources.tdp_w"),
        (lambda d: d.update(memry_gib=3), "did you mean memory_gib"),
        (lambda d: d.update(family="volta"), "family: expected one of"),
    ],
)
def test_bad_fields_name_file_and_field(tmp_path, mutate, pattern):
    doc = _valid_doc()
    mutate(doc)
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(doc))
    with pytest.raises(PlannerError, match=pattern) as exc:
        load_accelerator_file(p)
    assert "bad.yaml" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_malformed_yaml(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("id: [unclosed\nname: x\n")
    with pytest.raises(PlannerError, match="broken.yaml.*malformed YAML"):
        load_accelerator_file(p)


def test_yaml_reads_exponents_and_rejects_duplicate_keys(tmp_path):
    doc = _valid_doc()
    p = tmp_path / "e.yaml"
    p.write_text(yaml.safe_dump(doc).replace("tdp_w: 700", "tdp_w: 7e2"))
    assert load_accelerator_file(p).tdp_w == 700
    p.write_text(yaml.safe_dump(doc) + "tdp_w: 800\n")
    with pytest.raises(PlannerError, match="appears twice"):
        load_accelerator_file(p)
