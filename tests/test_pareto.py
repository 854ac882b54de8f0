"""`planner pareto`: the CSV's front is non-dominated and covers every other point; the PNG opens."""

from __future__ import annotations

import json
import subprocess

import pandas as pd

from planner.pareto import ParetoPoint, dominates, mark_front


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["planner", *args], capture_output=True, text=True, timeout=300)


def test_pareto_writes_a_non_dominated_front_and_a_readable_png(tmp_path):
    png, csv = tmp_path / "front.png", tmp_path / "front.csv"
    r = run("pareto", "--model", "llama-3.1-70b", "--gpu", "H100-SXM", "-p", "fp8", "--isl", "2048", "--osl", "256",
            "--tpot", "0.05", "--png", str(png), "--csv", str(csv))
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(csv)
    assert {"colocated", "disaggregated"} <= set(df["mode"])
    front, rest = df[df["on_front"]], df[~df["on_front"]]
    assert len(front) >= 3
    x, y = "tokens_per_s_per_user", "tokens_per_s_per_gpu"
    for _, a in front.iterrows():  # no front point is dominated by any point
        better = (df[x] >= a[x]) & (df[y] >= a[y]) & ((df[x] > a[x]) | (df[y] > a[y]))
        assert not better.any(), a.to_dict()
    for _, b in rest.iterrows():  # every other point is dominated by (or equal to) a front point
        assert ((front[x] >= b[x]) & (front[y] >= b[y])).any(), b.to_dict()
    import matplotlib.image as mpimg

    img = mpimg.imread(png)
    assert img.shape[0] > 300 and img.shape[1] > 500 and img.std() > 0.05
    r = run("pareto", "--model", "llama-3.1-8b", "--gpu", "L40S", "--json", "--tpot", "0.02")
    data = json.loads(r.stdout)
    assert r.returncode == 0 and data["front"]
    best = data["best_under_slo"]
    assert best is None or best["tpot_s"] <= 0.02


def test_pareto_bad_input_is_one_line_exit_2(tmp_path):
    for args in (["--model", "nope", "--gpu", "H100-SXM"], ["--model", "llama-3.1-8b", "--gpu", "H100-SXM",
                                                            "--isl", "0"],
                 ["--model", "llama-3.1-8b", "--gpu", "H100-SXM", "--png", str(tmp_path / "x.jpg")]):
        r = run("pareto", *args)
        assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_mark_front_against_brute_force():
    import random

    rnd = random.Random(3)
    pts = [ParetoPoint("colocated", "TP1", "", 1.0, 0.01, rnd.random() * 100, rnd.random() * 1000, 1.0)
           for _ in range(300)]
    marked = mark_front(pts)
    for p in marked:
        assert p.on_front == (not any(dominates(q, p) for q in marked))
