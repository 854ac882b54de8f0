"""Bad input met as users meet it, through the installed console script: outputs never replace the
files a scenario names, light rates still get an instance, odd traces and hand-edited plans get one
line naming the field, and names match regardless of case."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

EXE = str(Path(sys.executable).with_name("planner"))
DATA = Path(__file__).parent / "data"
SCENARIO = {"model": "llama-3.1-8b", "workload": {"rate_rps": 5, "input": 512, "output": 128},
            "slo": {"ttft_s": 1.0, "tpot_s": 0.05}, "accelerators": ["H100-SXM"],
            "buckets": {"isl": 1, "osl": 1}}


def planner(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=180, cwd=cwd)


def one_line_error(r: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and r.stderr.count("error:") == 1, r.stderr
    for n in needles:
        assert n in r.stderr, r.stderr


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture()
def trace_scenario(tmp_path: Path) -> Path:
    (tmp_path / "tr.csv").write_text((DATA / "traces" / "plain.csv").read_text())
    doc = {**SCENARIO, "workload": {"trace": "tr.csv"}}
    (tmp_path / "trs.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path / "trs.yaml"


def test_plan_csv_refuses_the_trace_the_scenario_names(trace_scenario: Path) -> None:
    trace = trace_scenario.parent / "tr.csv"
    before = digest(trace)
    r = planner("plan", str(trace_scenario), "-q", "--csv", str(trace))
    one_line_error(r, 2, "--csv", "is also an input")
    assert digest(trace) == before


def test_sweep_output_refuses_the_trace_of_its_base_scenario(trace_scenario: Path) -> None:
    trace = trace_scenario.parent / "tr.csv"
    sweep = trace_scenario.parent / "sw.yaml"
    sweep.write_text(yaml.safe_dump({"base": "trs.yaml", "axes": {"slo.ttft_s": [0.5, 1.0]}}))
    before = digest(trace)
    r = planner("sweep", str(sweep), "-o", str(trace), "-q", "--workers", "1")
    one_line_error(r, 2, "--output", "is also an input")
    assert digest(trace) == before


def test_plan_csv_refuses_a_hist_file(tmp_path: Path) -> None:
    hist = tmp_path / "h.csv"
    hist.write_text("tokens,count\n256,10\n512,30\n1024,5\n")
    doc = {**SCENARIO, "workload": {"rate_rps": 5, "input": "hist:h.csv", "output": 128}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    before = digest(hist)
    r = planner("plan", str(tmp_path / "s.yaml"), "-q", "--csv", str(hist))
    one_line_error(r, 2, "--csv", "is also an input")
    assert digest(hist) == before


@pytest.mark.parametrize("rate", ["1e-4", "1e-12"])
def test_a_very_light_rate_still_gets_one_instance(tmp_path: Path, rate: str) -> None:
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(SCENARIO))
    r = planner("plan", str(tmp_path / "s.yaml"), "-q", "--rate", rate, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["total_gpus"] >= 1 and d["cost_per_hour"] > 0 and d["groups"]


def test_a_trace_of_equal_timestamps_is_refused_by_plan_and_estimated_offline(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("input_tokens,output_tokens,timestamp\n512,128,0\n512,128,0\n512,128,0\n")
    r = planner("estimate", "-m", "llama-3.1-8b", "-g", "h100", "--workload", str(tmp_path / "t.csv"), "--json")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    doc = {**SCENARIO, "workload": {"trace": "t.csv"}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    one_line_error(planner("plan", str(tmp_path / "s.yaml"), "-q"), 2, "rate_rps", "no usable timestamps")


def test_pareto_checks_the_context_and_says_when_nothing_fits() -> None:
    one_line_error(planner("pareto", "-m", "llama-3.1-8b", "--gpu", "h100", "--isl", "200000"), 2,
                   "isl/osl", "131,072-token context")
    one_line_error(planner("pareto", "-m", "llama-3.1-405b", "--gpu", "l4"), 1, "no parallelism", "L4")
    one_line_error(planner("pareto", "-m", "llama-3.1-8b", "--gpu", "h100", "--png", "x.jpg"), 2, "--png")


@pytest.fixture(scope="module")
def saved_plan(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("plan")
    (tmp / "s.yaml").write_text(yaml.safe_dump(SCENARIO))
    r = planner("plan", str(tmp / "s.yaml"), "-q", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize(("field", "value", "expect"), [
    ("instances", -3, "instances: expected a whole number >= 1"),
    ("tp", 1.5, "tp: expected a whole number >= 1"),
    ("tp", "two", "tp: expected a whole number >= 1"),
    ("role", "Router", "role: expected one of colocated, prefill, decode"),
    ("memory_fraction", 1.5, "memory_fraction: expected a fraction"),
])
def test_emit_and_simulate_refuse_a_hand_edited_group(saved_plan: dict, tmp_path: Path, field: str, value: object,
                                                      expect: str) -> None:
    bad = json.loads(json.dumps(saved_plan))
    bad["groups"][0][field] = value
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    one_line_error(planner("emit", str(path), str(tmp_path / "out")), 2, "plan group 1", expect)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.yaml"))
    one_line_error(planner("simulate", "--plan", str(path)), 2, "plan group 1", expect)


def test_emit_names_a_folder_given_as_the_plan(tmp_path: Path) -> None:
    one_line_error(planner("emit", str(tmp_path), str(tmp_path / "out")), 2, "is a folder")


def test_calibrate_names_a_negative_seed(tmp_path: Path) -> None:
    r = planner("calibrate", str(DATA / "calibration" / "mlperf_llm_all.csv"), "-o", str(tmp_path / "c.yaml"),
                "--seed", "-1")
    assert r.returncode == 2 and "--seed" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_validate_refuses_a_row_with_both_a_concurrency_and_a_rate_and_a_repeated_column(tmp_path: Path) -> None:
    head = "model,accelerator,tp,engine,isl,osl,concurrency,rate_rps,tpot_s"
    (tmp_path / "both.csv").write_text(f"{head}\nllama-3.1-8b,H100-SXM,1,vllm,1024,128,64,5,0.02\n")
    one_line_error(planner("validate", str(tmp_path / "both.csv")), 2, "concurrency/rate_rps", "one of the two")
    (tmp_path / "dup.csv").write_text("model,accelerator,tp,engine,isl,isl,osl,concurrency,tpot_s\n"
                                      "llama-3.1-8b,H100-SXM,1,vllm,1024,99,128,64,0.02\n")
    one_line_error(planner("validate", str(tmp_path / "dup.csv")), 2, "column isl appears twice")


def test_a_written_nan_in_a_sheet_is_not_a_blank(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text("name,model,rate_rps,input,output,ttft_s,tpot_s,accelerators,percentile\n"
                                    "a,llama-3.1-8b,5,512,128,nan,0.05,H100-SXM,99\n"
                                    "b,llama-3.1-8b,5,512,128,1,0.05,H100-SXM,p99\n")
    r = planner("sheet", str(tmp_path / "s.csv"), "-o", str(tmp_path / "out.csv"), "-q", "--workers", "1")
    assert r.returncode == 0, r.stderr
    import pandas as pd

    status = dict(zip(*pd.read_csv(tmp_path / "out.csv")[["name", "status"]].T.to_numpy()))
    assert status == {"a": "invalid", "b": "optimal"}


def test_purchase_priced_devices_stay_out_of_the_default_set_and_are_noted_when_named(tmp_path: Path) -> None:
    doc = {k: v for k, v in SCENARIO.items() if k != "accelerators"}
    (tmp_path / "all.yaml").write_text(yaml.safe_dump(doc))
    r = planner("plan", str(tmp_path / "all.yaml"), "-q", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    chosen = {g["accelerator"] for g in d["groups"]} | {a.get("label", "") for a in d.get("alternatives", [])}
    assert not any("Arc-Pro" in c or "Jetson" in c for c in chosen)
    (tmp_path / "arc.yaml").write_text(yaml.safe_dump({**doc, "accelerators": ["Arc-Pro-B60-Dual-48GB"]}))
    r = planner("plan", str(tmp_path / "arc.yaml"), "-q", "--json")
    assert r.returncode == 0, r.stderr
    assert any("purchase price" in n for n in json.loads(r.stdout)["notes"])


def test_objective_role_and_disaggregation_match_regardless_of_case(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({**SCENARIO, "objective": "COST", "disaggregation": "OFF"}))
    assert planner("plan", str(tmp_path / "s.yaml"), "-q", "--objective", "GPUs").returncode == 0
    r = planner("estimate", "-m", "llama-3.1-8b", "-g", "h100", "--isl", "512", "--osl", "128", "--role", "Decode",
                "--rate", "1")
    assert r.returncode == 0, r.stderr


def test_validate_refuses_numeric_cells_holding_text_rather_than_reading_them_as_blank(tmp_path: Path) -> None:
    head = "model,accelerator,engine,isl,osl,count,tp,pp,concurrency,output_tokens_per_s,tpot_s"
    rows = ["llama-3.1-8b,H100-SXM,vllm,1024,256,,1,,32,3000,0.01",
            "llama-3.1-8b,H100-SXM,vllm,1024,256,,1,,thirty,3000,0.01",
            "llama-3.1-8b,H100-SXM,vllm,1024,256,3,2,,32,3000,0.01",
            "llama-3.1-8b,H100-SXM,vllm,1024,256,,1,two,32,3000,0.01",
            "llama-3.1-8b,H100-SXM,vllm,1024,256,,1,,32,-3000,0.01"]
    (tmp_path / "m.csv").write_text("\n".join([head, *rows]) + "\n")
    r = planner("validate", str(tmp_path / "m.csv"))
    assert r.returncode == 0, r.stderr
    for line, why in ((3, "concurrency: expected a number"), (4, "count: expected a whole number of instances"),
                      (5, "pp: expected a number"), (6, "output_tokens_per_s: expected a finite number >= 0")):
        assert f"skipped line {line}: {why}" in r.stdout + r.stderr


def test_a_bad_length_names_its_field(tmp_path: Path) -> None:
    doc = {**SCENARIO, "workload": {"rate_rps": 5, "input": "abc", "output": 128}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    one_line_error(planner("plan", str(tmp_path / "s.yaml"), "-q"), 2, "workload.input")


def test_a_scheduler_address_that_is_not_one_is_refused_at_once(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(SCENARIO))
    (tmp_path / "sw.yaml").write_text(yaml.safe_dump({"base": "s.yaml", "axes": {"slo.ttft_s": [0.5, 1.0]}}))
    for addr in ("foo", "inproc://x"):
        one_line_error(planner("sweep", str(tmp_path / "sw.yaml"), "--scheduler", addr, "-q"), 2, "--scheduler")


def test_two_user_hardware_files_with_one_id_are_refused_and_the_environment_path_reaches_the_workers(
        tmp_path: Path) -> None:
    shipped = yaml.safe_load((Path(__file__).resolve().parents[1] / "hardware_db" / "h100-sxm.yaml").read_text())
    cheap = {**shipped, "price": {**shipped["price"], "usd_per_gpu_hour": 1.0}}
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.yaml").write_text(yaml.safe_dump(cheap))
    (tmp_path / "a" / "y.yaml").write_text(yaml.safe_dump({**cheap, "id": cheap["id"].lower()}))
    one_line_error(planner("--hardware-path", str(tmp_path / "a"), "hardware", "show", "H100-SXM"), 2,
                   "both define accelerator")
    (tmp_path / "cheap.yaml").write_text(yaml.safe_dump(cheap))
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(SCENARIO))
    (tmp_path / "sw.yaml").write_text(yaml.safe_dump({"base": "s.yaml", "axes": {"workload.rate_rps": [5, 10]}}))
    import os

    env = {**os.environ, "PLANNER_HARDWARE_PATH": str(tmp_path / "cheap.yaml")}
    r = subprocess.run([EXE, "sweep", str(tmp_path / "sw.yaml"), "--workers", "2", "--json", "-q"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    rows = d["rows"] if isinstance(d, dict) else d
    assert all(row["cost_per_hour"] == pytest.approx(row["total_gpus"] * 1.0) for row in rows)


@pytest.mark.parametrize(("extra", "field"), [({"interleave_moe_layer_step": 2}, "interleave_moe_layer_step"),
                                              ({"kv_lora_rank": 512, "qk_rope_head_dim": 64,
                                                "qk_nope_head_dim": 128}, "v_head_dim")])
def test_configs_the_model_would_count_wrong_are_refused(tmp_path: Path, extra: dict, field: str) -> None:
    cfg = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
           "num_key_value_heads": 8, "vocab_size": 128256, "intermediate_size": 14336, **extra}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    one_line_error(planner("memory", "-m", str(tmp_path / "config.json"), "-g", "H100-SXM"), 2, field)


def test_the_plan_table_prints_costs_in_the_scenario_currency(tmp_path: Path) -> None:
    doc = {**SCENARIO, "pricing": {"currency": "EUR"}, "prices": {"H100-SXM": 2.5}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    r = planner("plan", str(tmp_path / "s.yaml"), "-q")
    assert r.returncode == 0, r.stderr
    assert "EUR/hour" in r.stdout and "EUR/day" in r.stdout and "$" not in r.stdout
    (tmp_path / "u.yaml").write_text(yaml.safe_dump(SCENARIO))
    usd = planner("plan", str(tmp_path / "u.yaml"), "-q")
    assert usd.returncode == 0 and "$/hour" in usd.stdout and "/day)" in usd.stdout
