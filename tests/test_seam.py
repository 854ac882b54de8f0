"""The serving/optimising seam: the import graph, one meaning of the SLO percentile, checks that do
not depend on list order, engine settings a scenario can set, and the capacity table as a product."""

from __future__ import annotations

import ast
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from planner.capacity import CapacityTable
from planner.errors import PlannerError
from planner.planning import plan, prepare
from planner.scenario import parse_scenario
from planner.serving.estimate import estimate

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "planner"


def imports_of(path: Path) -> set[str]:
    """Every planner module a file imports (module level or inside functions)."""
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("planner"):
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("planner"))
    return out


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return ".".join(rel.parts).removesuffix(".__init__")


MODULES = {module_name(p): imports_of(p) for p in PKG.rglob("*.py")}


def test_optimise_imports_nothing_from_serving():
    for mod, deps in MODULES.items():
        if mod.startswith("planner.optimise"):
            assert not {d for d in deps if d.startswith("planner.serving")}, mod


def test_nothing_below_the_cli_imports_the_facade():
    top = {"planner", "planner.api", "planner.cli", "planner.cli_plan"}
    for mod, deps in MODULES.items():
        if mod not in top:
            assert "planner.api" not in deps and not any(d.startswith("planner.api.") for d in deps), mod


def test_no_module_over_450_lines():
    long = {p.name: n for p in PKG.rglob("*.py") if (n := len(p.read_text().splitlines())) > 450}
    assert not long, long


BASE = {"model": "llama-3.1-8b", "engine": "vllm", "accelerators": ["H100-SXM"], "disaggregation": "off",
        "workload": {"rate_rps": 6, "input": "lognormal:mean=900,p99=5000", "output": "lognormal:mean=200,p99=800"},
        "buckets": {"isl": 1, "osl": 1}, "slo": {"ttft_s": 2.0, "tpot_s": 0.05, "percentile": 95},
        "parallelism": {"tp": [1], "pp": [1]}, "target_utilisation": 0.9}


def test_slo_percentile_means_the_same_in_plan_and_estimate():
    """Plan one bucket, then estimate the same workload on the chosen instance at the rate each
    instance carries: the TTFT at the SLO percentile agrees (both read the prompt length at that
    percentile from the same bucket statistics)."""
    sc = parse_scenario({**BASE, "queueing": {"pool": 1}})  # estimate models one instance's own queue
    p = plan(sc, alternatives=False)
    (g,) = p.groups
    per_instance = sc.workload.rate_rps / g.instances
    est = estimate("llama-3.1-8b", "H100-SXM", tp=g.tp, engine="vllm", workload=sc.workload,
                   rate_rps=per_instance, slo=sc.slo)
    assert p.buckets[0].ttft_s == pytest.approx(est.ttft_s["p95"], rel=0.03)
    assert p.buckets[0].tpot_s == pytest.approx(est.tpot_s["p95"], rel=0.03)
    prep = prepare(sc)
    # the tail prompt is the bucket's 95th percentile, not its p90
    b = prep.buckets.buckets[0]
    assert b.isl_tail > b.isl_p90  # one cell: its own 95th percentile, the whole workload's too


def test_engine_checks_do_not_depend_on_accelerator_order():
    def run(accs):
        raw = {**BASE, "engine": "trtllm", "accelerators": accs}
        return plan(parse_scenario(raw))

    a, b = run(["H100-SXM", "MI300X"]), run(["MI300X", "H100-SXM"])
    assert a.cost_per_hour == pytest.approx(b.cost_per_hour)
    assert [g.accelerator for g in a.groups] == [g.accelerator for g in b.groups] == ["H100-SXM"]
    assert any("MI300X" in alt.name and "does not run" in alt.detail for alt in a.alternatives)
    with pytest.raises(PlannerError, match="TensorRT-LLM"):
        from planner.api import deployment

        deployment("llama-3.1-8b", "MI300X", engine="trtllm")


def capacity(**settings) -> CapacityTable:
    raw = {**BASE, "engine_settings": settings} if settings else BASE
    return prepare(parse_scenario(raw)).table


def test_engine_settings_move_the_predictions():
    base = capacity()
    assert base.candidates[0].token_budget == 8192
    few = capacity(max_seqs=4)
    assert few.candidates[0].max_seqs == 4
    assert 0 < few.capacity_rps[0, 0] < 0.5 * base.capacity_rps[0, 0]
    small = capacity(memory_fraction=0.5)
    assert small.candidates[0].max_kv_tokens < 0.5 * base.candidates[0].max_kv_tokens
    budget = capacity(token_budget=1024)
    assert budget.candidates[0].token_budget == 1024
    # smaller chunks: the prompt takes more steps, so the TTFT at a given load is longer
    assert budget.ttft_s[0, 0, 3] > base.ttft_s[0, 0, 3]


def test_engine_settings_are_checked():
    with pytest.raises(PlannerError, match="engine_settings.memory_fraction"):
        capacity(memory_fraction=1.5)
    with pytest.raises(PlannerError, match="engine_settings.token_buget|did you mean"):
        parse_scenario({**BASE, "engine_settings": {"token_buget": 4096}})


def test_capacity_table_round_trips_as_plain_data():
    t = capacity()
    back = CapacityTable.from_dict(t.to_dict())
    assert back.candidates == t.candidates
    np.testing.assert_allclose(back.capacity_rps, t.capacity_rps)
    np.testing.assert_allclose(back.ttft_s, t.ttft_s)
    frame = t.to_frame()
    assert len(frame) == len(t.candidates) * len(t.buckets)
    assert {"accelerator", "role", "capacity_rps", "binds", "price_per_hour", "watts", "gpus"} <= set(frame.columns)


def test_capacity_command_prints_csv(tmp_path):
    import yaml

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**BASE, "disaggregation": "auto", "accelerators": ["H100-SXM", "L40S"]}))
    exe = Path(sys.executable).with_name("planner")
    res = subprocess.run([str(exe), "capacity", str(path), "--csv"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    df = pd.read_csv(io.StringIO(res.stdout))
    assert set(df["role"]) == {"colocated", "prefill", "decode"}
    assert set(df["accelerator"]) == {"H100-SXM", "L40S"}
    assert (df["capacity_rps"] > 0).all()
    pivot = df.pivot_table(index="accelerator", columns="role", values="capacity_rps", aggfunc="max")
    assert pivot.loc["H100-SXM", "colocated"] > pivot.loc["L40S", "colocated"]


def test_layers_hold_and_the_architecture_diagram_is_current():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gen_architecture as arch
    finally:
        sys.path.pop(0)
    assert arch.upward_imports() == []
    doc = (ROOT / "docs" / "architecture.md").read_text()
    assert arch.diagram() in doc, "docs/architecture.md is stale: run python scripts/gen_architecture.py"
