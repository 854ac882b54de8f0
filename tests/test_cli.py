"""The CLI: JSON schemas, tables, and bad input (one line, exit code 2, no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_hardware_list_json_schema():
    res = run("hardware", "list", "--json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    keys = {"id", "name", "vendor", "memory_bytes", "mem_bw_bytes_per_s", "peak_flops", "scaleup_bw_bytes_per_s",
            "scaleup_domain", "scaleout_bw_bytes_per_s", "tdp_w", "price_per_hour", "sources"}
    assert all(keys <= set(r) for r in rows)
    assert len(rows) >= 16


def test_models_list_json_schema():
    rows = json.loads(run("models", "list", "--json").stdout)
    assert all({"id", "aliases", "params", "active_params", "attention", "moe"} <= set(r) for r in rows)
    ds = next(r for r in rows if r["id"] == "deepseek-v3")
    assert ds["attention"] == "mla" and ds["moe"] is True


def test_memory_json():
    res = run("memory", "--model", "llama-3.1-70b", "--gpu", "H100-SXM", "--tp", "4", "--json")
    data = json.loads(res.stdout)
    for key in ("weights_bytes_per_gpu", "kv_bytes_per_token", "kv_bytes_per_token_per_gpu", "max_kv_tokens",
                "fits"):
        assert key in data
    assert data["kv_bytes_per_token"] == 327680 and data["fits"] is True


def test_roofline_table_and_json():
    res = run("roofline", "--model", "llama-3.1-8b", "--gpu", "h100", "--phase", "prefill", "--context", "2048")
    assert res.exit_code == 0 and "attention_prefill" in res.stdout
    data = json.loads(run("roofline", "-m", "mixtral-8x7b", "-g", "h100", "--tp", "2", "--json").stdout)
    names = {r["op"] for r in data["ops"]}
    assert {"moe_experts", "router", "tp_all_reduce", "attention_decode"} <= names
    assert all(r["bound"] in ("compute", "memory", "communication", "overhead") for r in data["ops"])


def test_show_commands():
    assert "H100" in run("hardware", "show", "h100").stdout
    assert "kv_lora_rank" in run("models", "show", "deepseek-r1").stdout


@pytest.mark.parametrize(
    "args,pattern",
    [
        (["memory", "--model", "llama-3.1-70b", "--gpu", "H900"], "unknown accelerator"),
        (["memory", "--model", "llama-9", "--gpu", "H100-SXM"], "unknown model"),
        (["memory", "--model", "llama-3.1-70b", "--gpu", "H100-SXM", "--tp", "3"], "does not divide"),
        (["memory", "--model", "llama-3.1-70b", "--gpu", "H100-SXM", "--precision", "fp3"], "precision"),
        (["roofline", "--model", "llama-3.1-8b", "--gpu", "h100", "--phase", "both"], "phase"),
        (["roofline", "--model", "llama-3.1-8b", "--gpu", "h100", "--batch", "0"], "batch"),
        (["memory", "--model", "llama-3.1-70b", "--gpu", "H100-SXM", "--engine", "foo"], "engine"),
        (["hardware", "show", "nope"], "unknown accelerator"),
    ],
)
def test_bad_input_one_line_exit_2(args, pattern):
    res = run(*args)
    assert res.exit_code == 2, res.output
    assert pattern in res.output
    assert "Traceback" not in res.output


def test_malformed_files_through_the_cli(tmp_path):
    bad_json = tmp_path / "config.json"
    bad_json.write_text("{oops")
    res = run("memory", "--model", str(bad_json), "--gpu", "H100-SXM")
    assert res.exit_code == 2 and "malformed JSON" in res.output
    bad_yaml = tmp_path / "gpu.yaml"
    bad_yaml.write_text("id: [x\n")
    res = run("--hardware-path", str(bad_yaml), "hardware", "list")
    assert res.exit_code == 2 and "malformed YAML" in res.output


def test_console_script_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "planner.cli", "memory", "--model", "x", "--gpu", "y"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_estimate_and_simulate_cli(tmp_path):
    res = run("estimate", "-m", "llama-3.1-8b", "-g", "h100", "--isl", "1024", "--osl", "256", "--rate", "5",
              "--ttft", "1", "--tpot", "0.05", "--json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["max_goodput_rps"] > 0 and "p99" in d["ttft_s"]
    res = run("simulate", "-m", "llama-3.1-8b", "-g", "h100", "--isl", "512", "--osl", "64", "--rate", "4",
              "--requests", "200", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n_requests"] == 200


@pytest.mark.parametrize("content,pattern", [
    ("", "empty"),
    ("foo,bar\n1,2\n", "columns"),
    ("input_tokens,output_tokens\n-5,10\n", "input_tokens"),
])
def test_estimate_bad_trace(tmp_path, content, pattern):
    p = tmp_path / "trace.csv"
    p.write_text(content)
    res = run("estimate", "-m", "llama-3.1-8b", "-g", "h100", "--workload", str(p), "--rate", "1")
    assert res.exit_code == 2, res.output
    assert pattern in res.output and "Traceback" not in res.output


@pytest.mark.parametrize("pct", ["150", "0", "p100", "abc"])
def test_estimate_bad_percentile(pct):
    res = run("estimate", "-m", "llama-3.1-8b", "-g", "h100", "--isl", "100", "--osl", "10", "--rate", "1",
              "--ttft", "1", "--percentile", pct)
    assert res.exit_code == 2 and "percentile" in res.output


def test_calibrate_cli_writes_profile(tmp_path):
    import pandas as pd

    rows = [{"model": "llama-3.1-8b", "accelerator": "H100-SXM", "tp": 1, "engine": "vllm", "isl": 1024,
             "osl": 256, "concurrency": c, "tpot_s": 0.01 + 0.0002 * c, "ttft_s": 0.05 + 0.002 * c}
            for c in (1, 4, 8, 16, 32, 64)]
    src = tmp_path / "m.csv"
    pd.DataFrame(rows).to_csv(src, index=False)
    out = tmp_path / "prof.yaml"
    res = run("calibrate", str(src), "-o", str(out), "--engine", "vllm", "--holdout", "0")
    assert res.exit_code == 0, res.output
    assert out.is_file() and "H100-SXM" in out.read_text()
    res = run("estimate", "-m", "llama-3.1-8b", "-g", "h100", "--isl", "1024", "--osl", "256", "--concurrency", "8",
              "--engine", str(out), "--json")
    assert res.exit_code == 0, res.output


def test_a_reader_that_goes_away_is_exit_141_not_1():
    """`planner plan S | head` must not look like "no plan meets the constraints" (exit 1): a closed
    pipe stops quietly with 141, as SIGPIPE would, and nothing on stderr."""
    import shutil

    exe = shutil.which("planner", path=str(Path(sys.executable).parent)) or shutil.which("planner")
    proc = subprocess.Popen([exe, "models", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first write
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 141, (proc.returncode, stderr)
    assert b"Traceback" not in stderr and not stderr.strip()
