"""Library-level checks behind the hostile-input fixes (issue 12, items 9-15)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from planner._yaml import MAX_DEPTH, load_json, load_yaml
from planner.errors import InputError, PlannerError
from planner.hardware import default_hardware, load_accelerator_file
from planner.models import parse_config
from planner.outputs import refuse_overwrite
from planner.scenario import load_scenario, parse_scenario
from planner.sheet import _read, row_to_scenario, write_sheet
from planner.workload import read_trace

ROOT = Path(__file__).resolve().parents[1]
GOOD = {"model": "llama-3.1-8b", "workload": {"rate_rps": 5, "input": "512", "output": "128"},
        "slo": {"ttft_s": 1.0, "tpot_s": 0.05}}


def test_billion_laughs_is_refused_fast(tmp_path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, n in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{n}: &{n} [" + ",".join([f"*{prev}"] * 9) + "]")
    p = tmp_path / "laughs.yaml"
    p.write_text("\n".join(lines) + "\nname: *i\n")
    start = time.monotonic()
    with pytest.raises(PlannerError, match="laughs.yaml.*aliases are expanded"):
        load_yaml(p, "scenario")
    assert time.monotonic() - start < 1.0


def test_small_aliases_still_work(tmp_path):
    p = tmp_path / "ok.yaml"
    p.write_text("base: &b {x: 1, y: [1, 2]}\nother: *b\n")
    assert load_yaml(p) == {"base": {"x": 1, "y": [1, 2]}, "other": {"x": 1, "y": [1, 2]}}


@pytest.mark.parametrize("loader,suffix,text", [
    (load_yaml, ".yaml", "a: " + "[" * 800 + "]" * 800),
    (load_json, ".json", "[" * 800 + "]" * 800),
])
def test_deep_nesting_is_refused_by_name(tmp_path, loader, suffix, text):
    p = tmp_path / f"deep{suffix}"
    p.write_text(text)
    with pytest.raises(PlannerError, match=f"deep{suffix}.*nested deeper than {MAX_DEPTH}"):
        loader(p)


def test_yaml_off_on_yes_no_stay_strings_and_disaggregation_off_loads(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(GOOD) + "disaggregation: off\n")
    assert load_scenario(p).disaggregation == "off"
    q = tmp_path / "flags.yaml"
    q.write_text("a: on\nb: yes\nc: no\nd: true\ne: False\n")
    assert load_yaml(q) == {"a": "on", "b": "yes", "c": "no", "d": True, "e": False}
    assert parse_scenario({**GOOD, "disaggregation": False}).disaggregation == "off"


def test_long_values_are_shortened_in_messages():
    msg = str(InputError("model", "a name", "m" * 1_000_000))
    assert len(msg) < 200 and "1,000,000 characters" in msg
    from planner.models import get_model

    with pytest.raises(PlannerError) as exc:
        get_model("x" * 1_000_000)
    assert len(str(exc.value)) < 300 and "unknown model" in str(exc.value)


@pytest.mark.parametrize("change,field", [
    ({"buckets": {"isl": 10000, "osl": 4}}, "buckets.isl"),
    ({"buckets": {"isl": 40, "osl": 40}}, "buckets"),
    ({"redundancy": {"spare_instances": 1_000_000}}, "redundancy.spare_instances"),
    ({"parallelism": {"tp": [4096]}}, "parallelism.tp"),
    ({"availability": {"H100-SXM": 10**9}}, "availability.H100-SXM"),
])
def test_caps(change, field):
    with pytest.raises(InputError, match=field):
        parse_scenario({**GOOD, **change})
    assert parse_scenario({**GOOD, "buckets": {"isl": 32, "osl": 32}}).n_isl == 32


def _hw_doc() -> dict:
    return yaml.safe_load(open(default_hardware().get("H100-SXM").path))


@pytest.mark.parametrize("path,value,pattern", [
    (("memory_gib",), 1e308, r"memory_gib: expected a number in \[1, 16384\] GiB"),
    (("mem_bw_tb_per_s",), 0, "mem_bw_tb_per_s"),
    (("peak_tflops_dense", "bf16"), 1e30, "peak_tflops_dense.bf16"),
    (("scaleup", "domain_size"), 10**9, "scaleup.domain_size"),
    (("price", "usd_per_gpu_hour"), 1e9, "price.usd_per_gpu_hour"),
])
def test_accelerator_ranges(tmp_path, path, value, pattern):
    doc = _hw_doc()
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(doc))
    with pytest.raises(PlannerError, match=pattern) as exc:
        load_accelerator_file(p)
    assert "bad.yaml" in str(exc.value)


@pytest.mark.parametrize("change,field", [
    ({"num_hidden_layers": 10**12}, "num_hidden_layers"),
    ({"vocab_size": 10**15}, "vocab_size"),
    ({"num_key_value_heads": 5}, "num_key_value_heads"),
    ({"max_position_embeddings": 1e30}, "max_position_embeddings"),
    ({"num_local_experts": 10**9, "num_experts_per_tok": 2}, "num_local_experts"),
    ({"_planner": "text"}, "_planner"),
])
def test_model_ranges(change, field):
    cfg = {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
           "vocab_size": 128256, "intermediate_size": 14336, "model_type": "llama"}
    assert parse_config(cfg, "ok.json").n_layers == 32
    with pytest.raises(InputError, match=field):
        parse_config({**cfg, **change}, "bad.json")


def test_rounded_poisson_trace_gets_cv_near_one_and_a_note(tmp_path):
    rng = np.random.default_rng(7)
    t = np.floor(np.cumsum(rng.exponential(1 / 5, 4000)))
    p = tmp_path / "burst.csv"
    rows = "".join(f"{int(x)},ChatGPT,100,50,150,Conversation log\n" for x in t)
    p.write_text("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n" + rows)
    tr = read_trace(p)
    assert tr.raw_interarrival_cv > 1.6
    assert tr.interarrival_cv == pytest.approx(1.0, abs=0.08)
    assert any("whole seconds" in n for n in tr.notes)
    from planner.workload import Workload
    wl = Workload.from_trace(tr)
    assert wl.arrival_cv == pytest.approx(1.0, abs=0.08) and wl.notes


def test_fractional_timestamps_are_left_alone(tmp_path):
    rng = np.random.default_rng(3)
    t = np.cumsum(rng.exponential(1 / 5, 2000))
    p = tmp_path / "plain.csv"
    p.write_text("input_tokens,output_tokens,timestamp\n" + "".join(f"10,5,{x:.4f}\n" for x in t))
    tr = read_trace(p)
    assert not tr.whole_second_timestamps and tr.interarrival_cv == tr.raw_interarrival_cv
    assert not any("whole seconds" in n for n in tr.notes)


SHEET = ("name,model,rate_rps,input,output,ttft_s,tpot_s\n"
         + "".join(f"r{i},llama-3.1-8b,2,512,128,{'1.0s' if i == 3 else '1.5'},0.05\n" for i in range(5)))


def _row_errors(df: pd.DataFrame) -> dict[int, str]:
    errors = {}
    for i, row in enumerate(df.to_dict("records")):
        try:
            parse_scenario(row_to_scenario(row, f"row {i + 2}"), f"row {i + 2}")
        except PlannerError as exc:
            errors[i + 2] = str(exc)
    return errors


def test_csv_and_xlsx_sheets_reject_only_the_bad_row(tmp_path):
    csv = tmp_path / "s.csv"
    csv.write_text(SHEET)
    xlsx = tmp_path / "s.xlsx"
    raw = pd.read_csv(csv, dtype=str)
    raw["rate_rps"] = raw["rate_rps"].astype(float)
    raw["tpot_s"] = raw["tpot_s"].astype(float)
    raw["ttft_s"] = [float(v) if v != "1.0s" else v for v in raw["ttft_s"]]
    raw.to_excel(xlsx, index=False)
    for path in (csv, xlsx):
        errors = _row_errors(_read(path))
        assert list(errors) == [5], (path, errors)
        assert "row 5: ttft_s: expected a number" in errors[5] and "'1.0s'" in errors[5]


def test_sheet_scenario_columns_and_unknown_column(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("model,rate_rps,input,output,ttft_s,arrival_cv,objective,availability,spare_instances\n"
                 "llama-3.1-8b,2,512,128,1.5,2.5,gpus,H100-SXM: 8; H200-SXM: 4,1\n")
    sc = parse_scenario(row_to_scenario(_read(p).to_dict("records")[0], "row 2"), "row 2")
    assert (sc.workload.arrival_cv, sc.objective, sc.spare_instances) == (2.5, "gpus", 1)
    assert sc.availability == {"H100-SXM": 8, "H200-SXM": 4}
    q = tmp_path / "typo.csv"
    q.write_text("model,rate_rps,input,output,ttft_s,arival_cv\nllama-3.1-8b,2,512,128,1.5,2\n")
    with pytest.raises(PlannerError, match="unknown column 'arival_cv' \\(did you mean arrival_cv"):
        _read(q)


def test_formula_text_is_written_as_text(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    df = pd.DataFrame({"model": ['=HYPERLINK("http://evil","x")', "+1+2", "@SUM(A1)", "-cmd", "llama"],
                       "rate": [1.0, 2.0, -3.0, 4.0, 5.0]})
    out = tmp_path / "o.xlsx"
    write_sheet(df, out)
    ws = openpyxl.load_workbook(out).active
    cells = [ws.cell(row=r, column=1) for r in range(2, 7)]
    assert [c.data_type for c in cells] == ["s"] * 5
    assert cells[0].value == '=HYPERLINK("http://evil","x")'
    assert ws.cell(row=4, column=2).value == -3.0
    csv = tmp_path / "o.csv"
    write_sheet(df, csv)
    back = pd.read_csv(csv)
    assert back["model"][0].startswith("'=") and back["rate"][2] == -3.0


def test_refuse_overwrite(tmp_path):
    a = tmp_path / "a.xlsx"
    a.write_text("x")
    link = tmp_path / "link.xlsx"
    link.symlink_to(a)
    with pytest.raises(PlannerError, match="--output: .*a.xlsx is also an input"):
        refuse_overwrite(a, a)
    with pytest.raises(PlannerError, match="also an input"):
        refuse_overwrite(link, tmp_path / "." / "a.xlsx")
    with pytest.raises(PlannerError, match="--junit"):
        refuse_overwrite(a, None, flag="--junit", extra_inputs=[tmp_path])
    refuse_overwrite(tmp_path / "new.xlsx", a, None)  # a new file is fine
    refuse_overwrite(None, a)


def test_calibrate_accepts_a_profile_file_as_engine(tmp_path):
    from planner.calibrate import calibrate

    rows = pd.DataFrame([{"model": "llama-3.1-8b", "accelerator": "H100-SXM", "engine": "vllm", "tp": 1,
                          "pp": 1, "ep": 1, "count": 1, "precision": "bf16", "isl": 512, "osl": 128,
                          "concurrency": c, "tpot_s": 0.01 + 0.0005 * c, "stat": "mean"} for c in (1, 4, 16)])
    report = calibrate(rows, engine=str(ROOT / "planner" / "profiles" / "vllm.yaml"), holdout=0.0, max_rows=3)
    assert report and report[0]["accelerators"] == ["H100-SXM"]
