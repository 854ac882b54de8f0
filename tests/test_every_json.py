"""Every command that prints a result takes ``--json`` and its whole standard output parses as JSON,
run through the installed console script (a C library writing below Python's stdout would break it)."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXE = str(Path(sys.executable).with_name("planner"))
# commands whose output is not a result to parse: example prints a scenario (YAML) for a pipe
NOT_JSON = {"example"}


def commands() -> set[str]:
    from typer.main import get_command

    from planner.cli import app

    group = get_command(app)
    out = set()
    for name, cmd in group.commands.items():
        sub = getattr(cmd, "commands", None)
        out |= {f"{name} {s}" for s in sub} if sub else {name}
    return out


def cases(tmp: Path) -> dict[str, list[str]]:
    measured = tmp / "m.csv"
    pd.DataFrame([{"model": "llama-3.1-8b", "accelerator": "H100-SXM", "tp": 1, "engine": "vllm", "isl": 1024,
                   "osl": 256, "concurrency": c, "tpot_s": 0.01 + 0.0002 * c, "ttft_s": 0.05 + 0.002 * c}
                  for c in (1, 8, 32)]).to_csv(measured, index=False)
    sheet = tmp / "s.csv"
    pd.DataFrame([{"name": "a", "model": "llama-3.1-8b", "rate_rps": 2, "input": "512", "output": "128",
                   "ttft_s": 1.0, "tpot_s": 0.05, "accelerators": "H100-SXM"}]).to_csv(sheet, index=False)
    budget = str(ROOT / "examples" / "budget_capped.yaml")
    plan_json = tmp / "plan.json"
    sweep = tmp / "sweep.yaml"
    sweep.write_text("base: " + budget + "\naxes: {workload.rate_rps: [1]}\n")
    return {
        "hardware list": ["hardware", "list"], "hardware show": ["hardware", "show", "h100"],
        "models list": ["models", "list"], "models show": ["models", "show", "llama-3.1-8b"],
        "memory": ["memory", "-m", "llama-3.1-8b", "-g", "h100"],
        "roofline": ["roofline", "-m", "llama-3.1-8b", "-g", "h100"],
        "estimate": ["estimate", "-m", "llama-3.1-8b", "-g", "h100", "--isl", "512", "--osl", "64", "--rate", "2"],
        "simulate": ["simulate", "-m", "llama-3.1-8b", "-g", "h100", "--isl", "256", "--osl", "32", "--rate", "2",
                     "--requests", "50"],
        "plan": ["plan", budget], "capacity": ["capacity", budget],
        "sheet": ["sheet", str(sheet), "-o", str(tmp / "out.csv")],
        "sweep": ["sweep", str(sweep)],
        "validate": ["validate", str(measured)],
        "calibrate": ["calibrate", str(measured), "-o", str(tmp / "p.yaml"), "--holdout", "0"],
        "pareto": ["pareto", "-m", "llama-3.1-8b", "--gpu", "h100", "--colocated-only"],
        "emit": ["emit", str(plan_json), str(tmp / "fleet")],
    }


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args, "--json"], capture_output=True, text=True, timeout=300)


def test_every_command_prints_json(tmp_path):
    table = cases(tmp_path)
    assert commands() - NOT_JSON == set(table), "a command without a --json case here"
    first = subprocess.run([EXE, "plan", table["plan"][1], "--json"], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    (tmp_path / "plan.json").write_text(first.stdout)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(zip(table, pool.map(run, table.values())))
    for name, res in results.items():
        assert res.returncode == 0, (name, res.stderr)
        json.loads(res.stdout)  # the whole of stdout
        assert "Traceback" not in res.stderr, name


@pytest.mark.parametrize("name", sorted(NOT_JSON))
def test_commands_without_json_say_so(name):
    res = subprocess.run([EXE, name, "--json"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
