"""``planner sweep`` and parallel ``planner sheet``: product order, axis-path checks, and results that
do not depend on where a plan ran (serial, a local process pool, a Dask LocalCluster the test starts),
all through the installed console script."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from planner.errors import PlannerError

ROOT = Path(__file__).resolve().parents[1]
EXE = str(Path(sys.executable).with_name("planner"))
# a tiny base: one small model, 1x1 bucket, TP1 only, colocated, one queueing tier: ~25 ms a plan
BASE = {"model": "llama-3.2-1b", "workload": {"rate_rps": 2, "input": 512, "output": 128},
        "buckets": {"isl": 1, "osl": 1}, "slo": {"ttft_s": 1.0, "tpot_s": 0.05}, "accelerators": ["H100-SXM"],
        "parallelism": {"tp": [1], "pp": [1]}, "disaggregation": "off", "queueing": {"pool": 1}}
RATES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
ACCS = [["H100-SXM"], ["A100-SXM-80GB"]]
TPOTS = [0.01, 0.02, 0.03, 0.05, 0.1]
TTFTS = [0.004, 1.0]  # 4 ms: below the engine overhead alone, so never met
AXES_200 = {"workload.rate_rps": RATES, "accelerators": ACCS, "slo.tpot_s": TPOTS, "slo.ttft_s": TTFTS}


def planner(*args: str, env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout, env=env)


def write_sweep(path: Path, axes: dict, zips: list | None = None, base: dict | str | None = None) -> Path:
    doc: dict = {"base": BASE if base is None else base, "axes": axes}
    if zips is not None:
        doc["zip"] = zips
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def sweep_200(tmp_path_factory) -> Path:
    return write_sweep(tmp_path_factory.mktemp("sweep") / "s200.yaml", AXES_200)


@pytest.fixture(scope="module")
def serial(sweep_200) -> list[dict]:
    res = planner("sweep", str(sweep_200), "--workers", "1", "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_points_follow_product_order_with_zip_groups(tmp_path):
    """N = 2 x 3 x 2 (the zip group counts once); point k has a = A[k // 6], b = B[(k // 2) % 3], the
    zip pair at k % 2 (strides worked out by hand)."""
    from planner.sweep import load_sweep, points

    sw = load_sweep(write_sweep(tmp_path / "s.yaml", {"workload.rate_rps": [1, 2], "slo.tpot_s": [0.1, 0.2, 0.3]},
                                [{"slo.ttft_s": [1, 2], "workload.arrival_cv": [1.0, 1.5]}]))
    pts = points(sw)
    assert sw.size == len(pts) == 12
    assert pts[7] == {"workload.rate_rps": 2, "slo.tpot_s": 0.1, "slo.ttft_s": 2, "workload.arrival_cv": 1.5}
    assert pts[0] == {"workload.rate_rps": 1, "slo.tpot_s": 0.1, "slo.ttft_s": 1, "workload.arrival_cv": 1.0}
    assert sw.paths == ("workload.rate_rps", "slo.tpot_s", "slo.ttft_s", "workload.arrival_cv")


def test_set_path_makes_missing_mappings_and_leaves_the_base_alone():
    from planner.sweep import set_path

    base = {"model": "m", "slo": {"ttft_s": 1}}
    out = set_path(base, "prices.H100-SXM", 3.5, "here")
    assert out["prices"] == {"H100-SXM": 3.5} and "prices" not in base
    with pytest.raises(PlannerError, match=r"axes\.model\.x: .*model is 'm'"):
        set_path(base, "model.x", 1, "here")


def test_200_points_on_a_dask_local_cluster_match_the_serial_run(sweep_200, serial):
    distributed = pytest.importorskip("distributed")
    # worker processes (no nanny: two fewer interpreters to start on a 2-core machine)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  worker_class=distributed.Worker) as lc:
        res = planner("sweep", str(sweep_200), "--scheduler", lc.scheduler_address, "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == serial  # same rows, same order, the same floats
    assert len(serial) == 200 and [r["point"] for r in serial] == list(range(200))
    k = 137  # product order: rate = RATES[137 // 20], accelerators = ACCS[(137 // 10) % 2], ...
    assert (serial[k]["workload.rate_rps"], serial[k]["accelerators"], serial[k]["slo.tpot_s"],
            serial[k]["slo.ttft_s"]) == (RATES[6], ACCS[1][0], TPOTS[3], TTFTS[1])


def test_sweep_rows_are_consistent_plans(serial):
    """More rate never costs less; a one-accelerator plan costs its GPU count times the list price."""
    from planner.hardware import default_hardware

    price = {a[0]: default_hardware().get(a[0]).price_per_hour for a in ACCS}
    by_rest: dict[tuple, list[dict]] = {}
    for r in serial:
        by_rest.setdefault((r["accelerators"], r["slo.tpot_s"], r["slo.ttft_s"]), []).append(r)
        if r["feasible"]:
            assert r["cost_per_hour"] == pytest.approx(r["total_gpus"] * price[r["accelerators"]], rel=1e-12)
            assert r["status"] in ("optimal", "feasible") and r["reason"] == ""
        else:
            assert r["status"] == "infeasible" and r["reason"] and r["cost_per_hour"] is None
    assert {r["feasible"] for r in serial} == {True, False}  # the sweep covers both
    for rows in by_rest.values():
        costs = [r["cost_per_hour"] for r in sorted(rows, key=lambda r: r["workload.rate_rps"]) if r["feasible"]]
        assert costs == sorted(costs)
    assert max(r["total_gpus"] or 0 for r in serial) > 1


def test_local_pool_matches_the_serial_rows_of_the_same_points(tmp_path, serial):
    """A smaller sweep on 2 local processes: each row equals the 200-point serial run's row with the
    same axis values (a plan does not depend on its neighbours or on the process it ran in)."""
    axes = {"workload.rate_rps": [4, 512], "accelerators": ACCS, "slo.tpot_s": [0.02, 0.05], "slo.ttft_s": TTFTS}
    out = tmp_path / "pool.csv"
    res = planner("sweep", str(write_sweep(tmp_path / "s16.yaml", axes)), "--workers", "2", "--json", "-o", str(out))
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert len(rows) == 16
    index = {(r["workload.rate_rps"], r["accelerators"], r["slo.tpot_s"], r["slo.ttft_s"]): r for r in serial}
    for r in rows:
        ref = index[(r["workload.rate_rps"], r["accelerators"], r["slo.tpot_s"], r["slo.ttft_s"])]
        assert {k: v for k, v in r.items() if k != "point"} == {k: v for k, v in ref.items() if k != "point"}
    df = pd.read_csv(out)
    assert list(df["cost_per_hour"].fillna(-1)) == [r["cost_per_hour"] if r["feasible"] else -1 for r in rows]
    assert str(df["total_gpus"].dtype) in ("int64", "float64") and not df["total_gpus"].dropna().mod(1).any()


@pytest.mark.parametrize(("axes", "zips", "needle"), [
    ({"workload.rate_rp": [1, 2]}, None, "unknown key workload.rate_rp (did you mean workload.rate_rps?)"),
    ({"slo.ttft": [1]}, None, "unknown key slo.ttft (did you mean slo.ttft_s?)"),
    ({"model.name": ["x"]}, None, "axes.model.name: expected a path through mappings"),
    ({"workload.rate_rps": 3}, None, "axes.workload.rate_rps: expected a non-empty list of values"),
    ({"workload.rate_rps": [1, -2]}, None, "point 1 (workload.rate_rps=-2): rate_rps"),
    ({}, [{"slo.ttft_s": [1, 2], "slo.tpot_s": [0.1]}], "zip[0]: expected lists of one length"),
    ({"slo.ttft_s": [1]}, [{"slo.ttft_s": [1, 2]}], "axes.slo.ttft_s: expected each path on one axis only"),
])
def test_bad_sweep_files_fail_naming_the_path(tmp_path, axes, zips, needle):
    from planner.sweep import load_sweep, scenario_docs

    with pytest.raises(PlannerError) as info:
        scenario_docs(load_sweep(write_sweep(tmp_path / "bad.yaml", axes, zips)))
    assert needle in str(info.value)


def test_unknown_axis_path_is_one_line_exit_2(tmp_path):
    res = planner("sweep", str(write_sweep(tmp_path / "bad.yaml", {"workload.rate_rp": [1, 2]})))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert "point 0 (workload.rate_rp=1): unknown key workload.rate_rp (did you mean workload.rate_rps?)" in res.stderr


def test_unknown_sweep_key_and_missing_base_file(tmp_path):
    (tmp_path / "a.yaml").write_text("base: {model: x}\naxis: {slo.ttft_s: [1]}\n")
    res = planner("sweep", str(tmp_path / "a.yaml"))
    assert res.returncode == 2 and "unknown key axis (did you mean axes?)" in res.stderr
    res = planner("sweep", str(write_sweep(tmp_path / "b.yaml", {"slo.ttft_s": [1]}, base="nothere.yaml")))
    assert res.returncode == 2 and "nothere.yaml: file not found" in res.stderr and res.stderr.count("\n") == 1


def test_base_from_a_file_xlsx_output_and_no_plan_exit_1(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    sw = write_sweep(tmp_path / "s.yaml", {"workload.rate_rps": [1, 4]}, base="base.yaml")
    res = planner("sweep", str(sw), "-o", str(tmp_path / "t.xlsx"), "-q", "--workers", "1")
    assert res.returncode == 0 and res.stderr.strip() == "2 points: 2 planned", res.stderr
    df = pd.read_excel(tmp_path / "t.xlsx")
    assert list(df["workload.rate_rps"]) == [1, 4] and list(df["status"]) == ["optimal", "optimal"]
    tight = write_sweep(tmp_path / "t.yaml", {"slo.ttft_s": [0.001, 0.002]})
    res = planner("sweep", str(tight), "--workers", "1")
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "no point" in res.stderr


def test_parquet_needs_pyarrow(tmp_path):
    sw = write_sweep(tmp_path / "s.yaml", {"workload.rate_rps": [1]})
    res = planner("sweep", str(sw), "-o", str(tmp_path / "t.parquet"), "--workers", "1")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        assert res.returncode == 2 and res.stderr.count("\n") == 1 and "pyarrow" in res.stderr
        assert not (tmp_path / "t.parquet").exists()
        return
    assert res.returncode == 0 and list(pd.read_parquet(tmp_path / "t.parquet")["workload.rate_rps"]) == [1]


def test_scheduler_without_dask_is_one_line(tmp_path):
    fake = tmp_path / "nodask" / "distributed"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'distributed'\")\n")
    env = {**os.environ, "PYTHONPATH": str(fake.parent)}
    sw = write_sweep(tmp_path / "s.yaml", {"workload.rate_rps": [1]})
    for cmd in (["sweep", str(sw)], ["sheet", str(ROOT / "examples" / "capacity_sheet.xlsx"), "-o",
                                      str(tmp_path / "o.csv")]):
        res = planner(*cmd, "--scheduler", "tcp://127.0.0.1:1", env=env)
        assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
        assert "Dask is not installed" in res.stderr and "[dask]" in res.stderr


def test_unreachable_scheduler_and_bad_worker_counts():
    pytest.importorskip("distributed")
    from planner.batch import run_jobs

    with pytest.raises(PlannerError, match="cannot reach a Dask scheduler"):
        run_jobs([{"doc": BASE}], scheduler="tcp://127.0.0.1:1", connect_timeout_s=0.5)
    res = planner("sweep", "whatever.yaml", "--workers", "0")
    assert res.returncode == 2 and "--workers: expected a whole number" in res.stderr
    res = planner("sweep", "whatever.yaml", "--workers", "2", "--scheduler", "tcp://x:1")
    assert res.returncode == 2 and "--workers" in res.stderr and "--scheduler" in res.stderr


def test_sheet_on_two_workers_matches_serial(tmp_path):
    from planner.sheet import plan_sheet

    rows = [{"name": f"r{i}", "model": "llama-3.2-1b", "rate_rps": rate, "input": "512", "output": "128",
             "ttft_s": ttft, "tpot_s": 0.05, "accelerators": "H100-SXM, A100-SXM-80GB", "buckets_isl": 1,
             "buckets_osl": 1} for i, (rate, ttft) in enumerate([(1, 1.0), (1000, 1.0), (4, 0.001), (8, "x")])]
    src = tmp_path / "in.csv"
    pd.DataFrame(rows).to_csv(src, index=False)
    res = planner("sheet", str(src), "-o", str(tmp_path / "out2.csv"), "--workers", "2", "--json")
    assert res.returncode == 0, res.stderr
    plan_sheet(src, tmp_path / "out1.csv", workers=1)  # serially, in this process
    assert (tmp_path / "out1.csv").read_bytes() == (tmp_path / "out2.csv").read_bytes()
    out = json.loads(res.stdout)
    assert [r["status"] for r in out] == ["optimal", "optimal", "infeasible", "invalid"]
    assert out[1]["total_gpus"] > out[0]["total_gpus"] >= 1 and "ttft_s" in out[3]["reason"]


def test_json_doc_lists_the_sweep_columns(serial):
    doc = (ROOT / "docs" / "json.md").read_text()
    block = doc.split("## `planner sweep --json`", 1)[1].split("\n## ", 1)[0]
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\([^)]*\)", "", block.split("\n", 1)[1])
    keys = {k.strip().strip("`") for k in text.replace("\n", " ").split(",") if k.strip().strip("`")}
    assert keys and all(keys <= set(r) for r in serial), keys - set(serial[0])
