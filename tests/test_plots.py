"""Each plot kind renders a PNG (and SVG); bad plot paths fail cleanly before any work."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from planner.cli import app

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


def run(*args):
    return CliRunner().invoke(app, list(args))


def test_roofline_and_latency_plots(tmp_path):
    r = tmp_path / "r.png"
    assert run("roofline", "-m", "llama-3.1-8b", "-g", "h100", "--plot", str(r)).exit_code == 0
    assert r.read_bytes().startswith(PNG)
    lat = tmp_path / "l.svg"
    assert run("estimate", "-m", "llama-3.1-8b", "-g", "h100", "--isl", "512", "--osl", "128", "--plot",
               str(lat)).exit_code == 0
    assert b"<svg" in lat.read_bytes()[:500]


def test_plan_and_slo_plots(tmp_path):
    p, s = tmp_path / "p.png", tmp_path / "s.png"
    small = tmp_path / "small.yaml"  # the plots sweep the rate and the SLO: a small scenario keeps it quick
    small.write_text((ROOT / "examples" / "budget_capped.yaml").read_text().replace(
        "accelerators: [L4, L40S, A10G, H100-SXM]", "accelerators: [L40S, H100-SXM]\nbuckets: {isl: 2, osl: 2}"))
    assert small.read_text() != (ROOT / "examples" / "budget_capped.yaml").read_text()
    res = run("plan", str(small), "-q", "--plot", str(p), "--plot-slo", str(s))
    assert res.exit_code == 0, res.output
    assert p.read_bytes().startswith(PNG) and s.read_bytes().startswith(PNG)


def test_bad_plot_path(tmp_path):
    res = run("roofline", "-m", "llama-3.1-8b", "-g", "h100", "--plot", str(tmp_path / "x.jpg"))
    assert res.exit_code == 2 and ".png or .svg" in res.output
    res = run("plan", str(ROOT / "examples" / "budget_capped.yaml"), "--plot", str(tmp_path / "no" / "x.png"))
    assert res.exit_code == 2 and "does not exist" in res.output
    assert not (tmp_path / "x.jpg").exists()


def test_doc_images_exist_and_are_referenced():
    doc = (ROOT / "docs" / "plots.md").read_text()
    for name in ("roofline", "latency", "plan", "slo"):
        img = ROOT / "docs" / "img" / f"{name}.png"
        assert img.read_bytes().startswith(PNG)
        assert f"img/{name}.png" in doc
